"""Whole-network passes of LeNet-5 in one compiled call.

At small batches the time of a training step goes to calling ~30 kernels from
Python, not to arithmetic. A plan binds, once per batch size, raw pointers to the
model's parameters, gradients and activation buffers, and runs the forward pass,
the loss and the backward pass layer after layer without returning to Python. It
calls the same kernels as the per-layer API (`lf_conv`, `lf_pool`, `lf_dense`), so
results equal the per-layer path bit for bit, whatever the thread count.

The plan holds references to every array it points into; the model must only
write into those arrays (it does: parameters are views of one flat vector that
assignments copy into).
"""

from libc.math cimport expf, logf, tanhf
from libc.stdint cimport int64_t
from lf_conv cimport conv_forward_raw, conv_backward_raw
from cython.parallel cimport prange
from lf_pool cimport (maxpool_forward_raw, maxpool_backward_raw, subsample_forward_raw,
                     subsample_backward_raw)
from lf_dense cimport dense_forward, dense_backward
from lf_simd cimport lf_v8, lf_load, lf_store, lf_bcast, lf_mul, lf_add, lf_tanh
from lf_update cimport scaled_sgd, scaled_sgd_compensated

import numpy as np

# LeCun's squashing function f(a) = A tanh(S a) (model.TANH_A, model.TANH_S).
cdef float TANH_A = 1.7159
cdef float TANH_S = 2.0 / 3.0


cdef inline float* _f(object a):
    # Raw pointer of a C-contiguous float32 array (checked by the caller).
    cdef float[::1] v = a.reshape(-1)
    return &v[0]


cdef inline const float* _cf(object a):
    # As _f, for a read-only array.
    cdef const float[::1] v = a.reshape(-1)
    return &v[0]


cdef inline int* _i(object a):
    cdef int[::1] v = a
    return &v[0] if v.shape[0] > 0 else NULL


cdef class _Conn:
    # The index lists of one convolution (lenet_fast.ops.Connections), as pointers.
    cdef int nnz
    cdef int* cptr
    cdef int* cidx
    cdef int* pco
    cdef int* fptr
    cdef int* fidx
    cdef int* fflag
    cdef int* bptr
    cdef int* bidx
    cdef int* bflag

    def __init__(self, conn):
        self.nnz = conn.cidx.shape[0]
        self.cptr = _i(conn.cptr)
        self.cidx = _i(conn.cidx)
        self.pco = _i(conn.pco)
        self.fptr = _i(conn.fptr)
        self.fidx = _i(conn.fidx)
        self.fflag = _i(conn.fflag)
        self.bptr = _i(conn.bptr)
        self.bidx = _i(conn.bidx)
        self.bflag = _i(conn.bflag)


cdef inline void _conv_fwd(float* y, const float* x, const float* w, const float* b, int N,
                           int Cin, int H, int W, int Cout, _Conn c, int nt) noexcept nogil:
    conv_forward_raw(y, x, w, b, N, Cin, H, W, Cout, c.cptr, c.cidx, c.fptr, c.fidx, c.fflag, nt)


cdef inline void _conv_bwd(float* dx, float* dw, float* db, const float* dy, const float* x,
                           const float* w, int N, int Cin, int H, int W, int Cout, _Conn c,
                           float* scratch, int nt, bint accumulate=False) noexcept nogil:
    conv_backward_raw(dx, dw, db, dy, x, w, N, Cin, H, W, Cout, c.nnz, c.cidx, c.pco, c.bptr,
                      c.bidx, c.bflag, scratch, nt, accumulate)


# The modern plan runs its convolutional layers on chunks of this many samples, one
# chunk through all of them before the next, so that a chunk's activations stay in
# cache; weight gradients add up chunk after chunk. A fixed number: results must not
# depend on the thread count, so neither may the chunking.
cdef int CHUNK = 32


cdef class _Plan:
    """What both presets' plans share: the batch size, the three convolutions' index
    lists, pointers to the common parameters, gradients and buffers, and the calls
    from Python. A preset implements `_forward`, `_loss` and `_backward`.
    """
    cdef object keep
    cdef int N
    cdef _Conn c1, c3, c5
    cdef float* w1
    cdef float* b1
    cdef float* w3
    cdef float* b3
    cdef float* w5
    cdef float* b5
    cdef float* w6
    cdef float* b6
    cdef float* gw1
    cdef float* gb1
    cdef float* gw3
    cdef float* gb3
    cdef float* gw5
    cdef float* gb5
    cdef float* gw6
    cdef float* gb6
    cdef float* x
    cdef float* a1
    cdef float* p1
    cdef float* a3
    cdef float* p3
    cdef float* a5
    cdef float* h5
    cdef float* a6
    cdef float* h6
    cdef float* out
    cdef float* g_out
    cdef float* g_h6
    cdef float* g_h5
    cdef float* g_a5
    cdef float* g_p3
    cdef float* g_h3
    cdef float* g_p1
    cdef float* g_h1
    cdef float* scratch
    cdef bint lowest_wins   # the predicted class is the argmin of the output (RBF)

    def __init__(self, params, grads, buf, conns, *keep):
        self.keep = (params, grads, buf, conns) + keep
        self.N = buf.n
        self.c1, self.c3, self.c5 = _Conn(conns["c1"]), _Conn(conns["c3"]), _Conn(conns["c5"])
        p, g = params, grads
        self.w1, self.b1 = _f(p["c1.weight"]), _f(p["c1.bias"])
        self.w3, self.b3 = _f(p["c3.weight"]), _f(p["c3.bias"])
        self.w5, self.b5 = _f(p["c5.weight"]), _f(p["c5.bias"])
        self.w6, self.b6 = _f(p["f6.weight"]), _f(p["f6.bias"])
        self.gw1, self.gb1 = _f(g["c1.weight"]), _f(g["c1.bias"])
        self.gw3, self.gb3 = _f(g["c3.weight"]), _f(g["c3.bias"])
        self.gw5, self.gb5 = _f(g["c5.weight"]), _f(g["c5.bias"])
        self.gw6, self.gb6 = _f(g["f6.weight"]), _f(g["f6.bias"])
        self.x, self.a1, self.p1 = _f(buf.x), _f(buf.a1), _f(buf.p1)
        self.a3, self.p3, self.a5 = _f(buf.a3), _f(buf.p3), _f(buf.a5)
        self.h5, self.a6, self.h6, self.out = _f(buf.h5), _f(buf.a6), _f(buf.h6), _f(buf.out)
        self.g_out, self.g_h6, self.g_h5 = _f(buf.g_out), _f(buf.g_h6), _f(buf.g_h5)
        self.g_a5, self.g_p3, self.g_h3 = _f(buf.g_a5), _f(buf.g_p3), _f(buf.g_h3)
        self.g_p1, self.g_h1, self.scratch = _f(buf.g_p1), _f(buf.g_h1), _f(buf.scratch)

    cdef void _forward(self, int nt) noexcept nogil:
        pass

    cdef float _loss(self, const int64_t* labels) noexcept nogil:
        return 0

    cdef void _backward(self, int nt) noexcept nogil:
        pass

    def forward(self, int n_threads):
        """Forward pass on the bound input buffer; fills the output buffer."""
        with nogil:
            self._forward(n_threads)

    def train_pass(self, const int64_t[::1] labels, int n_threads):
        """Forward, mean loss, backward; returns the loss.

        The gradients are written into the bound gradient arrays (not accumulated).
        A non-finite loss skips the backward pass and is returned as is.
        """
        cdef float loss
        with nogil:
            self._forward(n_threads)
            loss = self._loss(&labels[0])
            if loss == loss and loss - loss == 0:
                self._backward(n_threads)
        return loss

    def loss(self, const int64_t[::1] labels):
        """Mean loss of the output buffer (after `forward`); also fills its gradient."""
        cdef float loss
        with nogil:
            loss = self._loss(&labels[0])
        return loss

    cdef int _correct(self, const int64_t* labels) noexcept nogil:
        # Samples whose prediction (numpy's argmax, or argmin for the RBF: the first
        # extreme, or the first NaN) equals the label.
        cdef int n, k, best, count = 0
        cdef float v, b
        cdef const float* z
        for n in range(self.N):
            z = self.out + n * 10
            best = 0
            b = z[0]
            if b == b:
                for k in range(1, 10):
                    v = z[k]
                    if v != v:
                        best = k
                        break
                    if (v < b) if self.lowest_wins else (v > b):
                        best = k
                        b = v
            count = count + (best == labels[n])
        return count

    def train_steps(self, const unsigned char[:, :, ::1] images, const int64_t[::1] labels,
                    const float[::1] lrs, const float[::1] scale, float[::1] params,
                    const float[::1] grads, float[::1] residual, const float[::1] lut,
                    int n_threads):
        """Training steps without returning to Python: for each step s, load digits
        ``images[s*N:(s+1)*N]`` (uint8, 28x28) through `lut` (256 grey-level values) into
        the 32x32 input buffer (padded with lut[0]), run forward, loss and backward, and
        update ``params -= lrs[s] * (scale * grads)`` (with a non-empty `residual`, on
        the double-precision weights ``params + residual``: `lf_update`).

        `params` and `grads` must be the flat vectors the plan's parameter and gradient
        arrays are views of (the caller checks). A step whose loss is not finite makes no
        update and ends the loop.

        Returns
        -------
        (steps done, sum over those steps of loss * N (float), correct predictions)
        """
        cdef Py_ssize_t steps = lrs.shape[0], P = params.shape[0], s, done = 0
        cdef int N = self.N
        cdef float loss
        cdef double loss_sum = 0
        cdef long correct = 0
        if images.shape[0] != steps * N or images.shape[1] != 28 or images.shape[2] != 28:
            raise ValueError(f"images must have shape ({steps * N}, 28, 28) for {steps} steps "
                             f"of {N}, got ({images.shape[0]}, {images.shape[1]}, {images.shape[2]})")
        if labels.shape[0] != steps * N:
            raise ValueError(f"labels must have {steps * N} entries, got {labels.shape[0]}")
        if grads.shape[0] != P or scale.shape[0] != P:
            raise ValueError("params, grads and scale must have the same length")
        if residual.shape[0] not in (0, P):
            raise ValueError("residual must be empty or as long as params")
        cdef bint compensated = residual.shape[0] == P
        if lut.shape[0] != 256:
            raise ValueError("lut must have 256 entries")
        if steps == 0:
            return 0, 0.0, 0
        with nogil:
            for s in range(steps):
                _load_digits(self.x, &images[s * N, 0, 0], N, &lut[0])
                self._forward(n_threads)
                loss = self._loss(&labels[s * N])
                if not (loss == loss and loss - loss == 0):
                    break
                correct = correct + self._correct(&labels[s * N])
                self._backward(n_threads)
                if compensated:
                    scaled_sgd_compensated(&params[0], &residual[0], &grads[0], &scale[0],
                                           lrs[s], P)
                else:
                    scaled_sgd(&params[0], &grads[0], &scale[0], lrs[s], P)
                loss_sum = loss_sum + <double>loss * N
                done = s + 1
        return done, loss_sum, correct


cdef void _load_digits(float* x, const unsigned char* img, int N, const float* lut) noexcept nogil:
    # x (N, 1, 32, 32) <- 28x28 digits through lut, with a 2-pixel border of lut[0].
    cdef int n, r, c
    cdef float bg = lut[0]
    cdef float* xr
    cdef const unsigned char* ir
    for n in range(N):
        for r in range(32):
            xr = x + (n * 32 + r) * 32
            if r < 2 or r >= 30:
                for c in range(32):
                    xr[c] = bg
            else:
                ir = img + (n * 28 + r - 2) * 28
                xr[0] = bg
                xr[1] = bg
                for c in range(28):
                    xr[c + 2] = lut[ir[c]]
                xr[30] = bg
                xr[31] = bg


cdef class ModernPlan(_Plan):
    """Forward, softmax cross-entropy and backward of the modern preset for one batch
    size.

    Parameters
    ----------
    params, grads : dict of float32 arrays (the model's views)
    buf : the model's buffers for this batch size
    conns : dict of lenet_fast.ops.Connections for "c1", "c3", "c5"
    """
    cdef float* wo
    cdef float* bo
    cdef float* gwo
    cdef float* gbo

    def __init__(self, params, grads, buf, conns):
        super().__init__(params, grads, buf, conns)
        self.wo, self.bo = _f(params["out.weight"]), _f(params["out.bias"])
        self.gwo, self.gbo = _f(grads["out.weight"]), _f(grads["out.bias"])

    cdef void _forward(self, int nt) noexcept nogil:
        cdef int N = self.N, i, n0 = 0, nb
        while n0 < N:
            nb = min(CHUNK, N - n0)
            _conv_fwd(self.a1 + n0 * 4704, self.x + n0 * 1024, self.w1, self.b1, nb, 1, 32, 32,
                      6, self.c1, nt)
            maxpool_forward_raw(self.p1 + n0 * 1176, self.a1 + n0 * 4704, nb, 6, 28, 28, True, nt)
            _conv_fwd(self.a3 + n0 * 1600, self.p1 + n0 * 1176, self.w3, self.b3, nb, 6, 14, 14,
                      16, self.c3, nt)
            maxpool_forward_raw(self.p3 + n0 * 400, self.a3 + n0 * 1600, nb, 16, 10, 10, True, nt)
            _conv_fwd(self.a5 + n0 * 120, self.p3 + n0 * 400, self.w5, self.b5, nb, 16, 5, 5,
                      120, self.c5, nt)
            n0 = n0 + nb
        for i in range(N * 120):
            self.h5[i] = _relu(self.a5[i])
        dense_forward(self.a6, self.h5, self.w6, self.b6, N, 120, 84, nt)
        for i in range(N * 84):
            self.h6[i] = _relu(self.a6[i])
        dense_forward(self.out, self.h6, self.wo, self.bo, N, 84, 10, nt)

    cdef void _backward(self, int nt) noexcept nogil:
        cdef int N = self.N, i, n0 = 0, nb
        cdef bint acc
        dense_backward(self.g_h6, self.gwo, self.gbo, self.g_out, self.h6, self.wo, N, 84, 10, nt)
        for i in range(N * 84):
            if not self.a6[i] > 0:
                self.g_h6[i] = 0
        dense_backward(self.g_h5, self.gw6, self.gb6, self.g_h6, self.h5, self.w6, N, 120, 84, nt)
        for i in range(N * 120):
            self.g_a5[i] = self.g_h5[i] if self.h5[i] > 0 else 0
        while n0 < N:
            nb = min(CHUNK, N - n0)
            acc = n0 > 0
            _conv_bwd(self.g_p3 + n0 * 400, self.gw5, self.gb5, self.g_a5 + n0 * 120,
                      self.p3 + n0 * 400, self.w5, nb, 16, 5, 5, 120, self.c5, self.scratch, nt,
                      acc)
            maxpool_backward_raw(self.g_h3 + n0 * 1600, self.g_p3 + n0 * 400, self.a3 + n0 * 1600,
                                 nb, 16, 10, 10, True, nt)
            _conv_bwd(self.g_p1 + n0 * 1176, self.gw3, self.gb3, self.g_h3 + n0 * 1600,
                      self.p1 + n0 * 1176, self.w3, nb, 6, 14, 14, 16, self.c3, self.scratch, nt,
                      acc)
            maxpool_backward_raw(self.g_h1 + n0 * 4704, self.g_p1 + n0 * 1176, self.a1 + n0 * 4704,
                                 nb, 6, 28, 28, True, nt)
            _conv_bwd(NULL, self.gw1, self.gb1, self.g_h1 + n0 * 4704, self.x + n0 * 1024,
                      self.w1, nb, 1, 32, 32, 6, self.c1, NULL, nt, acc)
            n0 = n0 + nb

    cdef float _loss(self, const int64_t* labels) noexcept nogil:
        return _softmax_xent(self.out, labels, self.g_out, self.N)


cdef inline float _relu(float a) noexcept nogil:
    # max(a, 0) that keeps NaN, as np.maximum(a, 0).
    return a if (a > 0 or a != a) else 0


cdef float _softmax_xent(const float* logits, const int64_t* labels, float* grad,
                         int N) noexcept nogil:
    # Mean over the batch of -log softmax(logits)[label]; grad = its gradient (N, 10).
    cdef int n, k
    cdef float m, s, total = 0
    cdef const float* z
    cdef float* g
    for n in range(N):
        z = logits + n * 10
        g = grad + n * 10
        m = z[0]
        for k in range(1, 10):
            if z[k] > m or z[k] != z[k]:
                m = z[k]
        s = 0
        for k in range(10):
            g[k] = expf(z[k] - m)
            s = s + g[k]
        total = total + (logf(s) - (z[labels[n]] - m))
        for k in range(10):
            g[k] = g[k] / s / N
        g[labels[n]] = g[labels[n]] - 1.0 / N
    return total / N


cdef void _squash(float* out, const float* a, int n, int nt) noexcept nogil:
    # out = A tanh(S a), elementwise (chunks of 1024 in parallel; any thread count gives
    # the same values).
    cdef int c, i, end
    cdef int nchunk = (n + 1023) // 1024
    for c in prange(nchunk, num_threads=nt, schedule="static"):
        i = c * 1024
        end = min(n, i + 1024)
        while i + 8 <= end:
            lf_store(out + i, lf_mul(lf_bcast(TANH_A), lf_tanh(lf_mul(lf_bcast(TANH_S),
                                                                     lf_load(a + i)))))
            i = i + 8
        while i < end:
            out[i] = TANH_A * tanhf(TANH_S * a[i])
            i = i + 1


cdef void _squash_grad(float* g, const float* h, int n, int nt) noexcept nogil:
    # g *= f'(a) from the output h = f(a): f'(a) = S / A (A^2 - h^2).
    cdef int c, i, end
    cdef int nchunk = (n + 1023) // 1024
    cdef float k = TANH_S / TANH_A, a2 = TANH_A * TANH_A
    for c in prange(nchunk, num_threads=nt, schedule="static"):
        end = min(n, c * 1024 + 1024)
        for i in range(c * 1024, end):
            g[i] = g[i] * (k * (a2 - h[i] * h[i]))


cdef float _map_loss(const float* y, const int64_t* labels, float* grad, int N,
                     float j) noexcept nogil:
    # LeCun eq. 9: mean of y[label] + log(e^-j + sum_i e^-y_i); grad w.r.t. y (N, 10).
    cdef int n, k
    cdef float m, s, total = 0
    cdef const float* z
    cdef float* g
    for n in range(N):
        z = y + n * 10
        g = grad + n * 10
        m = -j
        for k in range(10):
            if -z[k] > m or z[k] != z[k]:
                m = -z[k]
        s = expf(-j - m)
        for k in range(10):
            g[k] = expf(-z[k] - m)
            s = s + g[k]
        total = total + (z[labels[n]] + logf(s) + m)
        for k in range(10):
            g[k] = -g[k] / s / N
        g[labels[n]] = g[labels[n]] + 1.0 / N
    return total / N


cdef class LeCunPlan(_Plan):
    """Forward, MAP loss and backward of the lecun98 preset for one batch size.

    Parameters
    ----------
    params, grads : dict of float32 arrays (the model's views)
    centers : float32 (10, 84), the fixed RBF codes
    buf : the model's buffers for this batch size
    conns : dict of lenet_fast.ops.Connections for "c1", "c3", "c5"
    map_j : the constant j of the MAP loss
    """
    cdef float map_j
    cdef const float* rbf
    cdef float* sc2
    cdef float* sb2
    cdef float* sc4
    cdef float* sb4
    cdef float* gsc2
    cdef float* gsb2
    cdef float* gsc4
    cdef float* gsb4
    cdef float* h1
    cdef float* q1
    cdef float* h3
    cdef float* q3

    def __init__(self, params, grads, centers, buf, conns, float map_j):
        super().__init__(params, grads, buf, conns, centers)
        self.map_j = map_j
        self.rbf = _cf(centers)
        self.sc2, self.sb2 = _f(params["s2.coef"]), _f(params["s2.bias"])
        self.sc4, self.sb4 = _f(params["s4.coef"]), _f(params["s4.bias"])
        self.gsc2, self.gsb2 = _f(grads["s2.coef"]), _f(grads["s2.bias"])
        self.gsc4, self.gsb4 = _f(grads["s4.coef"]), _f(grads["s4.bias"])
        self.h1, self.q1, self.h3, self.q3 = _f(buf.h1), _f(buf.q1), _f(buf.h3), _f(buf.q3)
        self.lowest_wins = True

    cdef void _forward(self, int nt) noexcept nogil:
        cdef int N = self.N, n, i, k
        cdef float s, d
        _conv_fwd(self.a1, self.x, self.w1, self.b1, N, 1, 32, 32, 6, self.c1, nt)
        _squash(self.h1, self.a1, N * 6 * 784, nt)
        subsample_forward_raw(self.p1, self.h1, self.sc2, self.sb2, N, 6, 28, 28, nt)
        _squash(self.q1, self.p1, N * 6 * 196, nt)
        _conv_fwd(self.a3, self.q1, self.w3, self.b3, N, 6, 14, 14, 16, self.c3, nt)
        _squash(self.h3, self.a3, N * 16 * 100, nt)
        subsample_forward_raw(self.p3, self.h3, self.sc4, self.sb4, N, 16, 10, 10, nt)
        _squash(self.q3, self.p3, N * 16 * 25, nt)
        _conv_fwd(self.a5, self.q3, self.w5, self.b5, N, 16, 5, 5, 120, self.c5, nt)
        _squash(self.h5, self.a5, N * 120, nt)
        dense_forward(self.a6, self.h5, self.w6, self.b6, N, 120, 84, nt)
        _squash(self.h6, self.a6, N * 84, nt)
        for n in range(N):          # RBF: out[n, i] = sum_j (h6[n, j] - c[i, j])^2
            for i in range(10):
                s = 0
                for k in range(84):
                    d = self.h6[n * 84 + k] - self.rbf[i * 84 + k]
                    s = s + d * d
                self.out[n * 10 + i] = s

    cdef void _backward(self, int nt) noexcept nogil:
        cdef int N = self.N, n, i, k
        cdef float s
        for n in range(N):          # d/dh6 of sum_i g_i (h6 - c_i)^2
            for k in range(84):
                s = 0
                for i in range(10):
                    s = s + self.g_out[n * 10 + i] * (self.h6[n * 84 + k] - self.rbf[i * 84 + k])
                self.g_h6[n * 84 + k] = 2 * s
        _squash_grad(self.g_h6, self.h6, N * 84, nt)
        dense_backward(self.g_h5, self.gw6, self.gb6, self.g_h6, self.h5, self.w6, N, 120, 84, nt)
        _squash_grad(self.g_h5, self.h5, N * 120, nt)
        _conv_bwd(self.g_p3, self.gw5, self.gb5, self.g_h5, self.q3, self.w5, N, 16, 5, 5, 120,
                  self.c5, self.scratch, nt)
        _squash_grad(self.g_p3, self.q3, N * 16 * 25, nt)
        subsample_backward_raw(self.g_h3, self.gsc4, self.gsb4, self.g_p3, self.h3, self.sc4,
                               N, 16, 10, 10, nt)
        _squash_grad(self.g_h3, self.h3, N * 16 * 100, nt)
        _conv_bwd(self.g_p1, self.gw3, self.gb3, self.g_h3, self.q1, self.w3, N, 6, 14, 14, 16,
                  self.c3, self.scratch, nt)
        _squash_grad(self.g_p1, self.q1, N * 6 * 196, nt)
        subsample_backward_raw(self.g_h1, self.gsc2, self.gsb2, self.g_p1, self.h1, self.sc2,
                               N, 6, 28, 28, nt)
        _squash_grad(self.g_h1, self.h1, N * 6 * 784, nt)
        _conv_bwd(NULL, self.gw1, self.gb1, self.g_h1, self.x, self.w1, N, 1, 32, 32, 6,
                  self.c1, NULL, nt)

    cdef float _loss(self, const int64_t* labels) noexcept nogil:
        return _map_loss(self.out, labels, self.g_out, self.N, self.map_j)

    def curvature(self, hv, int n_threads):
        """SDLM's second-derivative pass (`lenet_fast.sdlm`) over the bound batch, after
        `forward`: back-propagates Gauss-Newton second derivatives from the RBF data
        term (d2E/dx^2 = 2 at the F6 outputs) and writes, for every parameter, the sum
        over the batch and every connection sharing it of ``x^2 d2E/da^2`` (weights;
        ``s^2 d2E/da^2`` for subsampling coefficients, s the 2x2 block sum) or
        ``d2E/da^2`` (biases) into `hv`, a dict of float32 arrays shaped and keyed like
        the parameters. Overwrites the gradient buffers of the activations.

        The layers run on the backward kernels with squared weights and inputs, so no
        new arithmetic path is involved; d2E/dx^2 for a unit's inputs is
        ``sum w^2 d2E/da^2``, and ``d2E/da^2 = f'(a)^2 d2E/dx^2`` (f'' dropped).
        """
        p = self.keep[0]
        cdef int N = self.N
        for name, a in p.items():
            if hv[name].shape != a.shape or hv[name].dtype != np.float32:
                raise ValueError(f"hv[{name!r}] must be float32 of shape {a.shape}")
        f32 = np.float32
        keep = [np.empty(k, f32) for k in (150, 2400, 48000, 10080, 6, 16, 16,
                                           N * 1024, N * 1176, N * 400, N * 120)]
        cdef float* xsq = _f(keep[7])
        cdef float* q1sq = _f(keep[8])
        cdef float* q3sq = _f(keep[9])
        cdef float* h5sq = _f(keep[10])
        cdef float* w1sq = _f(keep[0])
        cdef float* w3sq = _f(keep[1])
        cdef float* w5sq = _f(keep[2])
        cdef float* w6sq = _f(keep[3])
        cdef float* c2sq = _f(keep[4])
        cdef float* c4sq = _f(keep[5])
        cdef float* unused = _f(keep[6])
        cdef float* hw1 = _f(hv["c1.weight"])
        cdef float* hb1 = _f(hv["c1.bias"])
        cdef float* hc2 = _f(hv["s2.coef"])
        cdef float* hb2 = _f(hv["s2.bias"])
        cdef float* hw3 = _f(hv["c3.weight"])
        cdef float* hb3 = _f(hv["c3.bias"])
        cdef float* hc4 = _f(hv["s4.coef"])
        cdef float* hb4 = _f(hv["s4.bias"])
        cdef float* hw5 = _f(hv["c5.weight"])
        cdef float* hb5 = _f(hv["c5.bias"])
        cdef float* hw6 = _f(hv["f6.weight"])
        cdef float* hb6 = _f(hv["f6.bias"])
        cdef int i, nt = n_threads
        with nogil:
            for i in range(N * 84):                   # F6 outputs: d2 y_D / dx^2 = 2
                self.g_h6[i] = 2
            _squash_second(self.g_h6, self.h6, N * 84)
            _square(h5sq, self.h5, N * 120)
            _square(w6sq, self.w6, 10080)
            dense_backward(self.g_h5, hw6, hb6, self.g_h6, h5sq, w6sq, N, 120, 84, nt)
            _squash_second(self.g_h5, self.h5, N * 120)
            _square(q3sq, self.q3, N * 400)
            _square(w5sq, self.w5, 48000)
            _conv_bwd(self.g_p3, hw5, hb5, self.g_h5, q3sq, w5sq, N, 16, 5, 5, 120, self.c5,
                      self.scratch, nt)
            _squash_second(self.g_p3, self.q3, N * 400)
            _square(c4sq, self.sc4, 16)
            subsample_backward_raw(self.g_h3, unused, hb4, self.g_p3, self.h3, c4sq,
                                   N, 16, 10, 10, nt)
            _subsample_curvature(hc4, self.g_p3, self.h3, N, 16, 10, 10)
            _squash_second(self.g_h3, self.h3, N * 1600)
            _square(q1sq, self.q1, N * 1176)
            _square(w3sq, self.w3, 2400)
            _conv_bwd(self.g_p1, hw3, hb3, self.g_h3, q1sq, w3sq, N, 6, 14, 14, 16, self.c3,
                      self.scratch, nt)
            _squash_second(self.g_p1, self.q1, N * 1176)
            _square(c2sq, self.sc2, 6)
            subsample_backward_raw(self.g_h1, unused, hb2, self.g_p1, self.h1, c2sq,
                                   N, 6, 28, 28, nt)
            _subsample_curvature(hc2, self.g_p1, self.h1, N, 6, 28, 28)
            _squash_second(self.g_h1, self.h1, N * 4704)
            _square(xsq, self.x, N * 1024)
            _square(w1sq, self.w1, 150)
            _conv_bwd(NULL, hw1, hb1, self.g_h1, xsq, w1sq, N, 1, 32, 32, 6, self.c1, NULL, nt)


cdef void _square(float* out, const float* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = a[i] * a[i]


cdef void _squash_second(float* d, const float* h, Py_ssize_t n) noexcept nogil:
    # d *= f'(a)^2 from the output h = f(a): f'(a) = S / A (A^2 - h^2) (f'' dropped).
    cdef Py_ssize_t i
    cdef float k = TANH_S / TANH_A, a2 = TANH_A * TANH_A, fp
    for i in range(n):
        fp = k * (a2 - h[i] * h[i])
        d[i] = d[i] * (fp * fp)


cdef void _subsample_curvature(float* hc, const float* dy, const float* x, int N, int C, int H,
                               int W) noexcept nogil:
    # hc[c] = sum over the batch and map c of s^2 dy, s the 2x2 block sum of x; serial,
    # in a fixed order (the result must not depend on the thread count).
    cdef int OH = H // 2, OW = W // 2, n, c, i, j
    cdef const float* xr
    cdef double acc
    cdef float s
    for c in range(C):
        acc = 0
        for n in range(N):
            for i in range(OH):
                xr = x + ((n * C + c) * H + 2 * i) * W
                for j in range(OW):
                    s = (xr[2 * j] + xr[2 * j + 1]) + (xr[W + 2 * j] + xr[W + 2 * j + 1])
                    acc = acc + <double>(s * s) * dy[((n * C + c) * OH + i) * OW + j]
        hc[c] = <float>acc
