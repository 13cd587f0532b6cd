"""Optimizer updates in one pass over the flat parameter vector.

The NumPy form of an update is 5 (SGD with momentum) to 13 (Adam) passes over the
parameters, each a separate call; at batch 1 that is a fifth of a training step.
These loops do the same float32 arithmetic, element by element, in one pass (the
compiler vectorizes them). Elementwise, so any thread count gives the same result.
"""

from libc.math cimport sqrtf
from lf_update cimport scaled_sgd as _scaled_sgd, scaled_sgd_compensated
from lf_fpu cimport lf_ftz_on, lf_ftz_restore


def sgd(float[::1] p, const float[::1] g, float[::1] buf, float lr, float momentum,
        float weight_decay, bint nesterov, bint first):
    """SGD step, torch.optim.SGD semantics (dampening 0).

    d = g + weight_decay * p; with momentum: buf = d on the first step, else
    buf = momentum * buf + d; d = d + momentum * buf (nesterov) or buf;
    p -= lr * d. `buf` may be empty when momentum is 0.
    """
    cdef Py_ssize_t i, n = p.shape[0]
    cdef float d, b
    cdef unsigned int fpu
    with nogil:
        fpu = lf_ftz_on()    # subnormal gradients and momenta (lf_fpu.h)
        for i in range(n):
            d = g[i] + weight_decay * p[i] if weight_decay != 0 else g[i]
            if momentum != 0:
                b = d if first else momentum * buf[i] + d
                buf[i] = b
                d = d + momentum * b if nesterov else b
            p[i] = p[i] - lr * d
        lf_ftz_restore(fpu)


def adam(float[::1] p, const float[::1] g, float[::1] m, float[::1] v, float step_size,
         float bc2_sqrt, float beta1, float beta2, float eps, float weight_decay):
    """Adam step, torch.optim.Adam semantics (amsgrad off, L2 weight decay).

    d = g + weight_decay * p; m = beta1 m + (1 - beta1) d; v = beta2 v + (1 - beta2) d^2;
    p -= step_size * m / (sqrt(v) / bc2_sqrt + eps), with step_size = lr / (1 - beta1^t)
    and bc2_sqrt = sqrt(1 - beta2^t).
    """
    cdef Py_ssize_t i, n = p.shape[0]
    cdef float d, mi, vi
    cdef float c1 = 1 - beta1, c2 = 1 - beta2
    cdef unsigned int fpu
    with nogil:
        fpu = lf_ftz_on()
        for i in range(n):
            d = g[i] + weight_decay * p[i] if weight_decay != 0 else g[i]
            mi = beta1 * m[i] + c1 * d
            vi = beta2 * v[i] + (c2 * d) * d
            m[i] = mi
            v[i] = vi
            p[i] = p[i] - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps))
        lf_ftz_restore(fpu)


def scaled_sgd(float[::1] p, const float[::1] g, const float[::1] scale, float lr,
               float[::1] residual=None):
    """p -= lr * (scale * g): SGD with a fixed step size per parameter (SDLM's
    ``scale = 1 / (mu + h)``). With `residual`, the step is made on the double-precision
    weights ``p + residual`` and both are updated (`lf_update.scaled_sgd_compensated`)."""
    cdef unsigned int fpu
    if g.shape[0] != p.shape[0] or scale.shape[0] != p.shape[0]:
        raise ValueError("p, g and scale must have the same length")
    if residual is not None:
        if residual.shape[0] != p.shape[0]:
            raise ValueError("residual must be as long as p")
        if p.shape[0]:
            with nogil:
                fpu = lf_ftz_on()
                scaled_sgd_compensated(&p[0], &residual[0], &g[0], &scale[0], lr, p.shape[0])
                lf_ftz_restore(fpu)
        return
    with nogil:
        fpu = lf_ftz_on()
        _scaled_sgd(&p[0] if p.shape[0] else NULL, &g[0] if g.shape[0] else NULL,
                    &scale[0] if scale.shape[0] else NULL, lr, p.shape[0])
        lf_ftz_restore(fpu)
