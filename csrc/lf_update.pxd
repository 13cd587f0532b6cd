# The diagonally scaled SGD step shared by _optim.pxi (one update from Python)
# and _net.pxi (updates inside the compiled training loop): one source, so the
# two paths give the same float32 results.

cdef inline void scaled_sgd(float* p, const float* g, const float* scale, float lr,
                            Py_ssize_t n) noexcept nogil:
    # p -= lr * (scale * g), element by element.
    cdef Py_ssize_t i
    for i in range(n):
        p[i] = p[i] - lr * (scale[i] * g[i])


cdef inline void scaled_sgd_compensated(float* p, float* r, const float* g, const float* scale,
                                        float lr, Py_ssize_t n) noexcept nogil:
    # The same step on the double-precision weights p + r (r: a float32 residual
    # that holds what float32 p cannot): v = p + r - lr * (scale * g) in double,
    # then p = float(v), r = float(v - p). Steps far below p's float32 resolution
    # (late SDLM passes: lr * scale * g ~ 1e-9 against weights ~ 1e-2) add up
    # instead of being rounded away. Measured on a trained lecun98 model (init
    # fanin-sqrt) at SDLM's last-pass rate: 75% of the nonzero per-sample steps are
    # below half a float32 ulp of their weight, so plain float32 updates would freeze
    # passes 13-20. It costs ~15% of a batch-1 step.
    cdef Py_ssize_t i
    cdef double v
    cdef float q
    for i in range(n):
        v = (<double>p[i] + <double>r[i]) - <double>(lr * (scale[i] * g[i]))
        q = <float>v
        p[i] = q
        r[i] = <float>(v - <double>q)
