"""2x2, stride-2 subsampling: LeCun's trainable average (coef * block sum + bias) and max.

Thin wrappers over the raw kernels in `lf_pool.pxd` (no validation, no allocation, no
GIL); the checked API is `lenet_fast.ops`.
Input gradients run parallel over (sample, map); per-map parameter gradients run
parallel over maps, each summed by one thread in sample order, so results do not
depend on the thread count.
"""

from lf_pool cimport (subsample_forward_raw, subsample_backward_raw, maxpool_forward_raw,
                     maxpool_backward_raw)


def subsample_forward(float[:, :, :, ::1] y, const float[:, :, :, ::1] x,
                      const float[::1] coef, const float[::1] bias, int n_threads):
    """y (N, C, H/2, W/2) <- coef[c] * (2x2 block sums of x (N, C, H, W)) + bias[c]."""
    with nogil:
        subsample_forward_raw(&y[0, 0, 0, 0], &x[0, 0, 0, 0], &coef[0], &bias[0], x.shape[0],
                              x.shape[1], x.shape[2], x.shape[3], n_threads)


def subsample_backward(float[:, :, :, ::1] dx, float[::1] dcoef, float[::1] dbias,
                       const float[:, :, :, ::1] dy, const float[:, :, :, ::1] x,
                       const float[::1] coef, int n_threads, bint need_dx=True):
    """dx (N, C, H, W), dcoef (C,), dbias (C,) <- dy (N, C, H/2, W/2)."""
    cdef float* pdx = &dx[0, 0, 0, 0] if need_dx else NULL
    with nogil:
        subsample_backward_raw(pdx, &dcoef[0], &dbias[0], &dy[0, 0, 0, 0], &x[0, 0, 0, 0],
                               &coef[0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                               n_threads)


def maxpool_forward(float[:, :, :, ::1] y, const float[:, :, :, ::1] x, int n_threads,
                    bint relu=False):
    """y (N, C, H/2, W/2) <- max of each 2x2 block of x (N, C, H, W); NaN propagates.

    With relu, y = max(block max, 0): the same as pooling after a ReLU, on a quarter
    of the values.
    """
    with nogil:
        maxpool_forward_raw(&y[0, 0, 0, 0], &x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2],
                            x.shape[3], relu, n_threads)


def maxpool_backward(float[:, :, :, ::1] dx, const float[:, :, :, ::1] dy,
                     const float[:, :, :, ::1] x, int n_threads, bint relu=False):
    """dx (N, C, H, W) <- dy (N, C, H/2, W/2), routed to each block's first maximum in
    row-major order (a NaN counts as the maximum, as np.argmax). With relu, blocks
    whose maximum is not > 0 pass no gradient (the ReLU before the pooling)."""
    with nogil:
        maxpool_backward_raw(&dx[0, 0, 0, 0], &dy[0, 0, 0, 0], &x[0, 0, 0, 0], x.shape[0],
                             x.shape[1], x.shape[2], x.shape[3], relu, n_threads)
