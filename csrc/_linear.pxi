"""Fully connected layer y = x w^T + b: F6 and the modern output layer.

Raw kernels (`lf_dense.pxd`): no validation, no allocation, no GIL.
"""

from lf_dense cimport dense_forward, dense_backward


def linear_forward(float[:, ::1] y, const float[:, ::1] x, const float[:, ::1] w,
            const float[::1] b, int n_threads):
    """y (N, O) <- x (N, I) @ w (O, I)^T + b (O,)."""
    with nogil:
        dense_forward(&y[0, 0], &x[0, 0], &w[0, 0], &b[0], x.shape[0], x.shape[1],
                      w.shape[0], n_threads)


def linear_backward(float[:, ::1] dx, float[:, ::1] dw, float[::1] db, const float[:, ::1] dy,
             const float[:, ::1] x, const float[:, ::1] w, int n_threads, bint need_dx=True):
    """dx (N, I), dw (O, I), db (O,) <- dy (N, O); dx untouched when need_dx is False."""
    cdef float* pdx = &dx[0, 0] if need_dx else NULL
    with nogil:
        dense_backward(pdx, &dw[0, 0], &db[0], &dy[0, 0], &x[0, 0], &w[0, 0],
                       x.shape[0], x.shape[1], w.shape[0], n_threads)
