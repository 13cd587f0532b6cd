"""2x2, stride-2 subsampling: LeCun's trainable average (coef * block sum + bias) and max.

Raw kernels: no validation, no allocation, no GIL. The checked API is `lenet_fast.ops`.
Input gradients run parallel over (sample, map); per-map parameter gradients run
parallel over maps, each summed by one thread in sample order, so results do not
depend on the thread count.
"""

from cython.parallel cimport prange


def subsample_forward(float[:, :, :, ::1] y, const float[:, :, :, ::1] x,
                      const float[::1] coef, const float[::1] bias, int n_threads):
    """y (N, C, H/2, W/2) <- coef[c] * (2x2 block sums of x (N, C, H, W)) + bias[c]."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int OH = H // 2, OW = W // 2
    cdef int job, c, i, j
    cdef const float* xr
    cdef float* yr
    cdef float a, bb
    cdef float* py = &y[0, 0, 0, 0]
    cdef const float* px = &x[0, 0, 0, 0]
    cdef const float* pc = &coef[0]
    cdef const float* pb = &bias[0]
    with nogil:
        for job in prange(N * C, num_threads=n_threads, schedule="static"):
            c = job % C
            a = pc[c]
            bb = pb[c]
            for i in range(OH):
                xr = px + (job * H + 2 * i) * W
                yr = py + (job * OH + i) * OW
                for j in range(OW):
                    yr[j] = a * ((xr[2 * j] + xr[2 * j + 1]) + (xr[W + 2 * j] + xr[W + 2 * j + 1])) + bb


def subsample_backward(float[:, :, :, ::1] dx, float[::1] dcoef, float[::1] dbias,
                       const float[:, :, :, ::1] dy, const float[:, :, :, ::1] x,
                       const float[::1] coef, int n_threads, bint need_dx=True):
    """dx (N, C, H, W), dcoef (C,), dbias (C,) <- dy (N, C, H/2, W/2)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int OH = H // 2, OW = W // 2
    cdef int job, n, c, i, j
    cdef const float* xr
    cdef const float* dyr
    cdef float* dxr
    cdef float a, g, sc, sb, pcs, pbs
    cdef float* pdx = &dx[0, 0, 0, 0] if need_dx else NULL
    cdef float* pdc = &dcoef[0]
    cdef float* pdb = &dbias[0]
    cdef const float* pdy = &dy[0, 0, 0, 0]
    cdef const float* px = &x[0, 0, 0, 0]
    cdef const float* pc = &coef[0]
    with nogil:
        for c in prange(C, num_threads=n_threads, schedule="static"):
            sc = 0
            sb = 0
            for n in range(N):
                pcs = 0
                pbs = 0
                for i in range(OH):
                    xr = px + ((n * C + c) * H + 2 * i) * W
                    dyr = pdy + ((n * C + c) * OH + i) * OW
                    for j in range(OW):
                        g = dyr[j]
                        pbs = pbs + g
                        pcs = pcs + g * ((xr[2 * j] + xr[2 * j + 1]) + (xr[W + 2 * j] + xr[W + 2 * j + 1]))
                sc = sc + pcs
                sb = sb + pbs
            pdc[c] = sc
            pdb[c] = sb
        if need_dx:
            for job in prange(N * C, num_threads=n_threads, schedule="static"):
                a = pc[job % C]
                for i in range(OH):
                    dyr = pdy + (job * OH + i) * OW
                    dxr = pdx + (job * H + 2 * i) * W
                    for j in range(OW):
                        g = a * dyr[j]
                        dxr[2 * j] = g
                        dxr[2 * j + 1] = g
                        dxr[W + 2 * j] = g
                        dxr[W + 2 * j + 1] = g


cdef inline int _argmax4(float v0, float v1, float v2, float v3) noexcept nogil:
    # First maximum in row-major order; a NaN counts as the maximum (as np.argmax).
    cdef int idx = 0
    cdef float m = v0
    if m == m:
        if v1 > m or v1 != v1:
            m = v1
            idx = 1
    if m == m:
        if v2 > m or v2 != v2:
            m = v2
            idx = 2
    if m == m:
        if v3 > m or v3 != v3:
            idx = 3
    return idx


def maxpool_forward(float[:, :, :, ::1] y, const float[:, :, :, ::1] x, int n_threads):
    """y (N, C, H/2, W/2) <- max of each 2x2 block of x (N, C, H, W); NaN propagates."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int OH = H // 2, OW = W // 2
    cdef int job, i, j, idx
    cdef const float* xr
    cdef float* yr
    cdef float* py = &y[0, 0, 0, 0]
    cdef const float* px = &x[0, 0, 0, 0]
    with nogil:
        for job in prange(N * C, num_threads=n_threads, schedule="static"):
            for i in range(OH):
                xr = px + (job * H + 2 * i) * W
                yr = py + (job * OH + i) * OW
                for j in range(OW):
                    idx = _argmax4(xr[2 * j], xr[2 * j + 1], xr[W + 2 * j], xr[W + 2 * j + 1])
                    yr[j] = xr[(idx >> 1) * W + 2 * j + (idx & 1)]


def maxpool_backward(float[:, :, :, ::1] dx, const float[:, :, :, ::1] dy,
                     const float[:, :, :, ::1] x, int n_threads):
    """dx (N, C, H, W) <- dy (N, C, H/2, W/2), routed to each block's first maximum."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int OH = H // 2, OW = W // 2
    cdef int job, i, j, idx
    cdef const float* xr
    cdef const float* dyr
    cdef float* dxr
    cdef float* pdx = &dx[0, 0, 0, 0]
    cdef const float* pdy = &dy[0, 0, 0, 0]
    cdef const float* px = &x[0, 0, 0, 0]
    with nogil:
        for job in prange(N * C, num_threads=n_threads, schedule="static"):
            for i in range(OH):
                xr = px + (job * H + 2 * i) * W
                dxr = pdx + (job * H + 2 * i) * W
                dyr = pdy + (job * OH + i) * OW
                for j in range(OW):
                    idx = _argmax4(xr[2 * j], xr[2 * j + 1], xr[W + 2 * j], xr[W + 2 * j + 1])
                    dxr[2 * j] = 0
                    dxr[2 * j + 1] = 0
                    dxr[W + 2 * j] = 0
                    dxr[W + 2 * j + 1] = 0
                    dxr[(idx >> 1) * W + 2 * j + (idx & 1)] = dyr[j]
