# The diagonally scaled SGD step shared by lenet_fast._optim (one update from Python)
# and lenet_fast._net (updates inside the compiled training loop): one source, so the
# two paths give the same float32 results.

cdef inline void scaled_sgd(float* p, const float* g, const float* scale, float lr,
                            Py_ssize_t n) noexcept nogil:
    # p -= lr * (scale * g), element by element.
    cdef Py_ssize_t i
    for i in range(n):
        p[i] = p[i] - lr * (scale[i] * g[i])

