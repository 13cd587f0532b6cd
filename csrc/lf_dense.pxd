# The dense (fully connected) layers, shared by _linear.pxi (F6, output layer), lf_conv.pxd
# (C5: a 5x5 convolution over a 5x5 map) and _net.pxi, on the kernels of lf_kernels.h: y in
# dot-product tiles of 4 or 2 samples x 4 outputs (lf_dot_job), dw and dx as rank-K updates with the
# output columns in the lanes (lf_outer_job). Inline definitions in a .pxd are compiled
# into each module that cimports them. Each output element is summed by one thread in
# an order fixed by the code, the same in every tile, so results depend neither on the
# thread count nor on the batch around a sample.

from cython.parallel cimport prange

cdef extern from "lf_kernels.h" nogil:
    int lf_dot_jobs(int N, int O)
    void lf_dot_job(float* y, const float* x, const float* w, const float* b, int N, int I,
                    int O, int job)
    int lf_outer_jobs(int rows, int cols)
    void lf_outer_job(float* out, int ldo, const float* a, int sk, int sr, const float* bm,
                      int ldb, int K, const float* init, int ldi, int rows, int cols, int job)


cdef inline void dense_forward(float* y, const float* x, const float* w, const float* b,
                               int N, int I, int O, int n_threads) noexcept nogil:
    # y is (N, O), x is (N, I), w is (O, I), b is (O,).
    cdef int job
    for job in prange(lf_dot_jobs(N, O), num_threads=n_threads, schedule="static"):
        lf_dot_job(y, x, w, b, N, I, O, job)


cdef inline float dense_bias_grad(float s, const float* dy, int N, int O,
                                 int o) noexcept nogil:
    # s + the sum over the N rows of column o of dy (N, O), in row order.
    cdef int n
    for n in range(N):
        s = s + dy[n * O + o]
    return s


cdef inline void dense_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                                const float* w, int N, int I, int O, int n_threads,
                                bint accumulate=False) noexcept nogil:
    # dx is (N, I) (skipped when NULL), dw is (O, I), db is (O,); dy is (N, O).
    # dw[o, i] = sum_n dy[n, o] x[n, i];  dx[n, i] = sum_o dy[n, o] w[o, i].
    # With accumulate, dw and db are added to (batch chunks, in chunk order). With dw
    # NULL, dx only (dw and db untouched).
    cdef int job, o
    if dw != NULL:
        for job in prange(lf_outer_jobs(O, I), num_threads=n_threads, schedule="static"):
            lf_outer_job(dw, I, dy, O, 1, x, I, N, dw if accumulate else NULL, I, O, I, job)
        for o in prange(O, num_threads=n_threads, schedule="static"):
            db[o] = dense_bias_grad(db[o] if accumulate else 0, dy, N, O, o)
    if dx != NULL:
        for job in prange(lf_outer_jobs(N, I), num_threads=n_threads, schedule="static"):
            lf_outer_job(dx, I, dy, 1, O, w, I, O, NULL, I, N, I, job)
