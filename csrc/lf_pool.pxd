# 2x2 subsampling kernels (LeCun's trainable average, and max pooling), forward and
# backward; max pooling on lf_kernels.h's rows. Inline definitions in a .pxd are compiled
# into the module that cimports them (_kernels_<path>: the per-layer API of _pool.pxi and
# the whole-network passes of _net.pxi).

from cython.parallel cimport prange

cdef extern from "lf_kernels.h" nogil:
    void lf_maxpool_row(float* y, const float* r0, const float* r1, int OW, int relu)
    void lf_maxpool_grad_row(float* d0, float* d1, const float* r0, const float* r1,
                             const float* dyr, int OW, int relu)



cdef inline void subsample_forward_raw(float* py, const float* px, const float* pc,
                                       const float* pb, int N, int C, int H, int W,
                                       int n_threads) noexcept nogil:
    # y (N, C, H/2, W/2) <- coef[c] * (2x2 block sums of x (N, C, H, W)) + bias[c].
    cdef int OH = H // 2, OW = W // 2
    cdef int job, c, i, j
    cdef const float* xr
    cdef float* yr
    cdef float a, bb
    for job in prange(N * C, num_threads=n_threads, schedule="static"):
        c = job % C
        a = pc[c]
        bb = pb[c]
        for i in range(OH):
            xr = px + (job * H + 2 * i) * W
            yr = py + (job * OH + i) * OW
            for j in range(OW):
                yr[j] = a * ((xr[2 * j] + xr[2 * j + 1]) + (xr[W + 2 * j] + xr[W + 2 * j + 1])) + bb


cdef inline void subsample_backward_raw(float* pdx, float* pdc, float* pdb, const float* pdy,
                                        const float* px, const float* pc, int N, int C,
                                        int H, int W, int n_threads) noexcept nogil:
    # dx (N, C, H, W) (skipped when NULL), dcoef (C,), dbias (C,) <- dy (N, C, H/2, W/2).
    cdef int OH = H // 2, OW = W // 2
    cdef int job, n, c, i, j
    cdef const float* xr
    cdef const float* dyr
    cdef float* dxr
    cdef float a, g, sc, sb, pcs, pbs
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
    if pdx == NULL:
        return
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


cdef inline void maxpool_forward_raw(float* py, const float* px, int N, int C, int H, int W,
                                     bint relu, int n_threads) noexcept nogil:
    # y (N, C, H/2, W/2) <- max of each 2x2 block (then max(., 0) with relu).
    cdef int OH = H // 2, OW = W // 2
    cdef int job, i
    for job in prange(N * C, num_threads=n_threads, schedule="static"):
        for i in range(OH):
            lf_maxpool_row(py + (job * OH + i) * OW, px + (job * H + 2 * i) * W,
                           px + (job * H + 2 * i + 1) * W, OW, relu)


cdef inline void maxpool_backward_raw(float* pdx, const float* pdy, const float* px, int N,
                                      int C, int H, int W, bint relu,
                                      int n_threads) noexcept nogil:
    # dx (N, C, H, W) <- dy (N, C, H/2, W/2), routed to each block's first maximum.
    cdef int OH = H // 2, OW = W // 2
    cdef int job, i
    for job in prange(N * C, num_threads=n_threads, schedule="static"):
        for i in range(OH):
            lf_maxpool_grad_row(pdx + (job * H + 2 * i) * W, pdx + (job * H + 2 * i + 1) * W,
                                px + (job * H + 2 * i) * W, px + (job * H + 2 * i + 1) * W,
                                pdy + (job * OH + i) * OW, OW, relu)
