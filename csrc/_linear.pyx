"""Fully connected layer (F6 and the modern output layer): y = x w^T + b.

Raw kernels: no validation, no allocation, no GIL. Each output element is summed by
one thread in a fixed order, so results do not depend on the thread count.
"""

from cython.parallel cimport prange


def forward(float[:, ::1] y, const float[:, ::1] x, const float[:, ::1] w,
            const float[::1] b, int n_threads):
    """y (N, O) <- x (N, I) @ w (O, I)^T + b (O,)."""
    cdef int N = x.shape[0], I = x.shape[1], O = w.shape[0]
    cdef int job, n, o, i
    cdef float s
    cdef const float* xr
    cdef const float* wr
    cdef float* py = &y[0, 0]
    cdef const float* px = &x[0, 0]
    cdef const float* pw = &w[0, 0]
    cdef const float* pb = &b[0]
    with nogil:
        for job in prange(N * O, num_threads=n_threads, schedule="static"):
            n = job // O
            o = job - n * O
            xr = px + n * I
            wr = pw + o * I
            s = 0
            for i in range(I):
                s = s + xr[i] * wr[i]
            py[job] = s + pb[o]


def backward(float[:, ::1] dx, float[:, ::1] dw, float[::1] db, const float[:, ::1] dy,
             const float[:, ::1] x, const float[:, ::1] w, int n_threads, bint need_dx=True):
    """dx (N, I), dw (O, I), db (O,) <- dy (N, O)."""
    cdef int N = x.shape[0], I = x.shape[1], O = w.shape[0]
    cdef int n, o, i
    cdef float g, sb
    cdef const float* xr
    cdef const float* wr
    cdef float* dxr
    cdef float* dwr
    cdef float* pdx = &dx[0, 0] if need_dx else NULL
    cdef float* pdw = &dw[0, 0]
    cdef float* pdb = &db[0]
    cdef const float* pdy = &dy[0, 0]
    cdef const float* px = &x[0, 0]
    cdef const float* pw = &w[0, 0]
    with nogil:
        for o in prange(O, num_threads=n_threads, schedule="static"):
            dwr = pdw + o * I
            for i in range(I):
                dwr[i] = 0
            sb = 0
            for n in range(N):
                g = pdy[n * O + o]
                sb = sb + g
                xr = px + n * I
                for i in range(I):
                    dwr[i] = dwr[i] + g * xr[i]
            pdb[o] = sb
        if need_dx:
            for n in prange(N, num_threads=n_threads, schedule="static"):
                dxr = pdx + n * I
                for i in range(I):
                    dxr[i] = 0
                for o in range(O):
                    g = pdy[n * O + o]
                    wr = pw + o * I
                    for i in range(I):
                        dxr[i] = dxr[i] + g * wr[i]
