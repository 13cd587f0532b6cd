"""Whole-network passes of LeNet-5: one parallel region per pass, over blocks of samples.

A pass splits the batch into blocks (`block_size`: 8 samples in batches of up to 32, 16
in larger ones, so that a small batch still has a block per thread and a larger one does
not spend its time summing gradient slots: at batch 64 on 2 threads, 16-sample blocks
train 7% faster than 8-sample ones, measured). A thread takes one block at a
time (dynamic scheduling: a thread the OS has descheduled holds up only the block it is
on, not a barrier per layer) and runs it through every layer: input, forward, loss,
backward, with the block's weight gradients written into the block's own slot. A second
parallel loop, over chunks of the parameter vector, then sums the slots in block order.
A block's arithmetic is the same whichever thread runs it and the order of the sum is
fixed, so results do not depend on the thread count.

Activations live in workspaces of up to `BLOCK` samples, one per thread (about 1.4 MB:
one core's L2 cache), which the caller passes in with the call. A plan holds only pointers
to the parameters and the connection lists, so calls from several Python threads at once
are safe when each brings its own workspace (the model keeps a pool of them).

Every kernel is the same as in the per-layer API (`lf_conv`, `lf_pool`, `lf_dense`), run
on one block with one thread.
"""

from libc.math cimport expf, logf
from libc.stdint cimport int64_t
from cython.parallel cimport prange, threadid
from lf_conv cimport conv_forward_raw, conv_backward_raw, padded_map
from lf_pool cimport (maxpool_forward_raw, maxpool_backward_raw, subsample_forward_raw,
                     subsample_backward_raw)
from lf_dense cimport dense_forward, dense_backward, dense_bias_grad

cdef extern from "lf_kernels.h" nogil:
    int lf_outer_jobs(int rows, int cols)
    void lf_outer_job(float* out, int ldo, const float* a, int sk, int sr, const float* bm,
                      int ldb, int K, const float* init, int ldi, int rows, int cols, int job)
from lf_simd cimport lf_scaled_tanh
from lf_update cimport scaled_sgd as lf_scaled_sgd, scaled_sgd_compensated
from lf_fpu cimport lf_ftz_on, lf_ftz_restore

import numpy as np
cimport numpy as cnp

cnp.import_array()

# LeCun's squashing function f(a) = A tanh(S a) (model.TANH_A, model.TANH_S).
cdef float TANH_A = 1.7159
cdef float TANH_S = 2.0 / 3.0

#: The largest block. The block size is a function of the batch size only: the
#: gradients are sums over blocks, so results depend on it (never on the thread count).
BLOCK = 16
cdef int _BLOCK = 16
# Batches up to this size run in blocks of 8.
cdef int _SMALL_BATCH = 32


cdef inline int _block_size(Py_ssize_t n) noexcept nogil:
    return 8 if n <= _SMALL_BATCH else _BLOCK


def block_size(Py_ssize_t n):
    """Samples per block in a pass over a batch of n samples."""
    return _block_size(n)


def blocks(Py_ssize_t n):
    """Blocks in a pass over a batch of n samples."""
    cdef int b = _block_size(n)
    return (n + b - 1) // b

#: Blocks whose gradient slots are summed at once; longer batches add round after round.
ROUND = 64
cdef int _ROUND = 64

# Floats per sample of each activation (the layer sizes of LeNet-5).
cdef enum:
    SZ_X = 1 * 32 * 32       # input
    SZ_C1 = 6 * 28 * 28      # C1 output
    SZ_S2 = 6 * 14 * 14      # S2 output
    SZ_C3 = 16 * 10 * 10     # C3 output
    SZ_S4 = 16 * 5 * 5       # S4 output
    SZ_C5 = 120
    SZ_F6 = 84
    SZ_OUT = 10
    SZ_C3PAD = 16 * ((14 + 4) * 14 + 8)   # C3's dy zero-padded for its input gradient
    SZ_UNUSED = 16                        # a dcoef nobody reads (curvature pass)
    # training: per sample, the dense layers' inputs and output gradients, kept for the
    # round's weight gradients: C5 (400 in, 120 out), F6 (120, 84), output (84, 10)
    DENSE_ROW = 400 + 120 + 120 + 84 + 84 + 10


cdef struct Act:
    # One block's activations and their gradients (pointers into a workspace).
    float* x
    float* a1        # C1 pre-activation
    float* p1        # modern: relu(max(a1)); lecun98: S2 pre-activation
    float* a3
    float* p3
    float* a5
    float* h5
    float* a6
    float* h6
    float* h1        # lecun98: squashed C1, S2, C3, S4 outputs
    float* q1
    float* h3
    float* q3
    float* g_out
    float* g_h6
    float* g_h5
    float* g_a5
    float* g_p3
    float* g_h3
    float* g_p1
    float* g_h1
    float* pad
    float* xsq       # lecun98 curvature pass: squared inputs of C1, C3, C5, F6
    float* q1sq
    float* q3sq
    float* h5sq
    float* unused


#: The workspace's fields in the order `_layout` places them (`layout` names them).
_FIELDS = ("x", "a1", "p1", "a3", "p3", "a5", "h5", "a6", "h6", "g_out", "g_h6", "g_h5",
           "g_a5", "g_p3", "g_h3", "g_p1", "g_h1", "pad", "h1", "q1", "h3", "q3", "xsq",
           "q1sq", "q3sq", "h5sq")


cdef Py_ssize_t _layout(Act* a, float* base, Py_ssize_t cap, Py_ssize_t n0, bint lecun,
                        Py_ssize_t* record=NULL) noexcept nogil:
    # Lay out the activations of `cap` samples from `base` (field after field), pointing
    # each at sample n0; returns the floats used. With base NULL only counts. With
    # `record`, writes each field's offset and floats per sample there (2 x 26 values).
    cdef Py_ssize_t off = 0
    cdef Py_ssize_t sizes[26]
    cdef float** fields[26]
    cdef int k
    cdef Py_ssize_t l = 1 if lecun else 0
    fields[0], sizes[0] = &a.x, SZ_X
    fields[1], sizes[1] = &a.a1, SZ_C1
    fields[2], sizes[2] = &a.p1, SZ_S2
    fields[3], sizes[3] = &a.a3, SZ_C3
    fields[4], sizes[4] = &a.p3, SZ_S4
    fields[5], sizes[5] = &a.a5, SZ_C5
    fields[6], sizes[6] = &a.h5, SZ_C5
    fields[7], sizes[7] = &a.a6, SZ_F6
    fields[8], sizes[8] = &a.h6, SZ_F6
    fields[9], sizes[9] = &a.g_out, SZ_OUT
    fields[10], sizes[10] = &a.g_h6, SZ_F6
    fields[11], sizes[11] = &a.g_h5, SZ_C5
    fields[12], sizes[12] = &a.g_a5, SZ_C5
    fields[13], sizes[13] = &a.g_p3, SZ_S4
    fields[14], sizes[14] = &a.g_h3, SZ_C3
    fields[15], sizes[15] = &a.g_p1, SZ_S2
    fields[16], sizes[16] = &a.g_h1, SZ_C1
    fields[17], sizes[17] = &a.pad, SZ_C3PAD
    fields[18], sizes[18] = &a.h1, SZ_C1 * l
    fields[19], sizes[19] = &a.q1, SZ_S2 * l
    fields[20], sizes[20] = &a.h3, SZ_C3 * l
    fields[21], sizes[21] = &a.q3, SZ_S4 * l
    fields[22], sizes[22] = &a.xsq, SZ_X * l
    fields[23], sizes[23] = &a.q1sq, SZ_S2 * l
    fields[24], sizes[24] = &a.q3sq, SZ_S4 * l
    fields[25], sizes[25] = &a.h5sq, SZ_C5 * l
    for k in range(26):
        if base != NULL:
            fields[k][0] = base + off + n0 * sizes[k]
        if record != NULL:
            record[2 * k] = off
            record[2 * k + 1] = sizes[k]
        off = off + cap * sizes[k]
    if base != NULL:
        a.unused = base + off
    return off + SZ_UNUSED


def workspace_floats(Py_ssize_t cap, bint lecun):
    """Floats of one workspace holding the activations of `cap` samples."""
    cdef Act a
    return _layout(&a, NULL, cap, 0, lecun)


cdef struct Conn:
    # The index lists of one convolution (lenet_fast.ops.Connections), as pointers.
    int nnz
    int* cptr
    int* cidx
    int* pco
    int* fptr
    int* fidx
    int* fflag
    int* bptr
    int* bidx
    int* bflag


cdef struct Params:
    # Pointers to each parameter inside one flat vector (the parameters, a gradient
    # slot, or the curvature), bound by `_bind`.
    float* w1
    float* b1
    float* sc2
    float* sb2
    float* w3
    float* b3
    float* sc4
    float* sb4
    float* w5
    float* b5
    float* w6
    float* b6
    float* wo
    float* bo


cdef struct Offsets:
    Py_ssize_t w1, b1, sc2, sb2, w3, b3, sc4, sb4, w5, b5, w6, b6, wo, bo


cdef inline void _bind(Params* p, float* base, const Offsets* o) noexcept nogil:
    p.w1, p.b1 = base + o.w1, base + o.b1
    p.sc2, p.sb2 = base + o.sc2, base + o.sb2
    p.w3, p.b3 = base + o.w3, base + o.b3
    p.sc4, p.sb4 = base + o.sc4, base + o.sb4
    p.w5, p.b5 = base + o.w5, base + o.b5
    p.w6, p.b6 = base + o.w6, base + o.b6
    p.wo, p.bo = base + o.wo, base + o.bo


cdef struct Net:
    bint lecun
    Params p              # the weights
    Offsets off
    Py_ssize_t P          # floats in the parameter vector
    Py_ssize_t Pconv      # its first Pconv floats: the parameters before C5 (the slots of
                          # a training pass; C5, F6 and the output get theirs per round)
    Conn c1, c3, c5
    const float* rbf      # lecun98: the fixed (10, 84) codes
    float map_j


cdef struct Pass:
    # One call's inputs, outputs and memory, shared by the threads.
    const Net* net
    int N                       # samples in the batch
    int block                   # samples per block (`block_size(N)`)
    int kt                      # threads of each kernel inside a block (see `_run`)
    const float* xf             # float32 (N, 1, 32, 32) input, or NULL
    const unsigned char* xu     # or uint8 (N, 28, 28) digits through lut
    const float* lut
    const int64_t* labels       # training: (N,)
    float* out                  # (N, 10) outputs
    float* ws                   # workspaces (one per thread, ws_floats each)
    Py_ssize_t ws_floats
    float* keep                 # activations(): one workspace for all N samples, or NULL
    float* slots                # gradient slots (ROUND, slot_floats)
    Py_ssize_t slot_floats      # floats of one slot: P, or (training) net.Pconv
    float* dense                # training: the round's inputs and output gradients of
                                # the dense layers (`_dense_rows`), DENSE_ROW per sample
    int round0                  # training: the first sample of the current round
    double* block_loss          # per block: sum of its samples' losses
    int* block_correct          # per block: correct predictions
    float inv_n                 # 1 / N: the loss is the batch mean
    const float* sq             # curvature pass: squared weights (a parameter vector)
    float smoothing             # label smoothing of the softmax cross-entropy (modern)
    bint proba                  # forward: probabilities out (softmax of the scores)


cdef inline void _conv_fwd(float* y, const float* x, const float* w, const float* b, int N,
                           int Cin, int H, int W, int Cout, const Conn* c, int kt) noexcept nogil:
    conv_forward_raw(y, x, w, b, N, Cin, H, W, Cout, c.cptr, c.cidx, c.fptr, c.fidx, c.fflag, kt)


cdef inline void _conv_bwd(float* dx, float* dw, float* db, const float* dy, const float* x,
                           const float* w, int N, int Cin, int H, int W, int Cout,
                           const Conn* c, float* pad, int kt) noexcept nogil:
    conv_backward_raw(dx, dw, db, dy, x, w, N, Cin, H, W, Cout, c.nnz, c.cidx, c.pco, c.bptr,
                      c.bidx, c.bflag, pad, kt, False)


cdef inline float _relu(float a) noexcept nogil:
    # max(a, 0) that keeps NaN, as np.maximum(a, 0).
    return a if (a > 0 or a != a) else 0


cdef void _squash(float* out, const float* a, Py_ssize_t n) noexcept nogil:
    # out = A tanh(S a), elementwise (every element through the vector tanh, whatever
    # its place in the block: a sample's values do not depend on the batch).
    lf_scaled_tanh(out, a, n, TANH_A, TANH_S)


cdef void _squash_grad(float* g, const float* h, Py_ssize_t n) noexcept nogil:
    # g *= f'(a) from the output h = f(a): f'(a) = S / A (A^2 - h^2).
    cdef Py_ssize_t i
    cdef float k = TANH_S / TANH_A, a2 = TANH_A * TANH_A
    for i in range(n):
        g[i] = g[i] * (k * (a2 - h[i] * h[i]))


cdef void _squash_second(float* d, const float* h, Py_ssize_t n) noexcept nogil:
    # d *= f'(a)^2 from the output h = f(a) (f'' dropped: Gauss-Newton).
    cdef Py_ssize_t i
    cdef float k = TANH_S / TANH_A, a2 = TANH_A * TANH_A, fp
    for i in range(n):
        fp = k * (a2 - h[i] * h[i])
        d[i] = d[i] * (fp * fp)


cdef void _square(float* out, const float* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = a[i] * a[i]


# ---------------------------------------------------------------------- one block
cdef void _forward(const Net* net, Act* a, int nb, float* out, int kt) noexcept nogil:
    # out (nb, 10) <- the network on a.x (nb, 1, 32, 32); keeps every activation.
    cdef const Params* p = &net.p
    cdef int i, n, k
    cdef float s, d
    if not net.lecun:
        _conv_fwd(a.a1, a.x, p.w1, p.b1, nb, 1, 32, 32, 6, &net.c1, kt)
        maxpool_forward_raw(a.p1, a.a1, nb, 6, 28, 28, True, kt)
        _conv_fwd(a.a3, a.p1, p.w3, p.b3, nb, 6, 14, 14, 16, &net.c3, kt)
        maxpool_forward_raw(a.p3, a.a3, nb, 16, 10, 10, True, kt)
        _conv_fwd(a.a5, a.p3, p.w5, p.b5, nb, 16, 5, 5, 120, &net.c5, kt)
        for i in range(nb * SZ_C5):
            a.h5[i] = _relu(a.a5[i])
        dense_forward(a.a6, a.h5, p.w6, p.b6, nb, SZ_C5, SZ_F6, kt)
        for i in range(nb * SZ_F6):
            a.h6[i] = _relu(a.a6[i])
        dense_forward(out, a.h6, p.wo, p.bo, nb, SZ_F6, SZ_OUT, kt)
        return
    _conv_fwd(a.a1, a.x, p.w1, p.b1, nb, 1, 32, 32, 6, &net.c1, kt)
    _squash(a.h1, a.a1, nb * SZ_C1)
    subsample_forward_raw(a.p1, a.h1, p.sc2, p.sb2, nb, 6, 28, 28, kt)
    _squash(a.q1, a.p1, nb * SZ_S2)
    _conv_fwd(a.a3, a.q1, p.w3, p.b3, nb, 6, 14, 14, 16, &net.c3, kt)
    _squash(a.h3, a.a3, nb * SZ_C3)
    subsample_forward_raw(a.p3, a.h3, p.sc4, p.sb4, nb, 16, 10, 10, kt)
    _squash(a.q3, a.p3, nb * SZ_S4)
    _conv_fwd(a.a5, a.q3, p.w5, p.b5, nb, 16, 5, 5, 120, &net.c5, kt)
    _squash(a.h5, a.a5, nb * SZ_C5)
    dense_forward(a.a6, a.h5, p.w6, p.b6, nb, SZ_C5, SZ_F6, kt)
    _squash(a.h6, a.a6, nb * SZ_F6)
    for n in range(nb):          # RBF: out[n, i] = sum_j (h6[n, j] - c[i, j])^2
        for i in range(10):
            s = 0
            for k in range(SZ_F6):
                d = a.h6[n * SZ_F6 + k] - net.rbf[i * SZ_F6 + k]
                s = s + d * d
            out[n * 10 + i] = s


cdef void _backward(const Net* net, Act* a, int nb, Params* g, int kt) noexcept nogil:
    # The gradients of the block's loss (g_out, filled by the loss) into the slot g.
    cdef const Params* p = &net.p
    cdef int i, n, k
    cdef float s
    if not net.lecun:
        # the dense layers' input gradients only: their weight gradients come once per
        # round from the rows this block leaves in the round's buffers (`_dense_grads`)
        dense_backward(a.g_h6, NULL, NULL, a.g_out, a.h6, p.wo, nb, SZ_F6, SZ_OUT, kt)
        for i in range(nb * SZ_F6):
            if not a.a6[i] > 0:
                a.g_h6[i] = 0
        dense_backward(a.g_h5, NULL, NULL, a.g_h6, a.h5, p.w6, nb, SZ_C5, SZ_F6, kt)
        for i in range(nb * SZ_C5):
            a.g_a5[i] = a.g_h5[i] if a.h5[i] > 0 else 0
        dense_backward(a.g_p3, NULL, NULL, a.g_a5, a.p3, p.w5, nb, SZ_S4, SZ_C5, kt)
        maxpool_backward_raw(a.g_h3, a.g_p3, a.a3, nb, 16, 10, 10, True, kt)
        _conv_bwd(a.g_p1, g.w3, g.b3, a.g_h3, a.p1, p.w3, nb, 6, 14, 14, 16, &net.c3, a.pad, kt)
        maxpool_backward_raw(a.g_h1, a.g_p1, a.a1, nb, 6, 28, 28, True, kt)
        _conv_bwd(NULL, g.w1, g.b1, a.g_h1, a.x, p.w1, nb, 1, 32, 32, 6, &net.c1, NULL, kt)
        return
    for n in range(nb):          # d/dh6 of sum_i g_i (h6 - c_i)^2
        for k in range(SZ_F6):
            s = 0
            for i in range(10):
                s = s + a.g_out[n * 10 + i] * (a.h6[n * SZ_F6 + k] - net.rbf[i * SZ_F6 + k])
            a.g_h6[n * SZ_F6 + k] = 2 * s
    _squash_grad(a.g_h6, a.h6, nb * SZ_F6)
    dense_backward(a.g_h5, NULL, NULL, a.g_h6, a.h5, p.w6, nb, SZ_C5, SZ_F6, kt)
    _squash_grad(a.g_h5, a.h5, nb * SZ_C5)
    dense_backward(a.g_p3, NULL, NULL, a.g_h5, a.q3, p.w5, nb, SZ_S4, SZ_C5, kt)
    _squash_grad(a.g_p3, a.q3, nb * SZ_S4)
    subsample_backward_raw(a.g_h3, g.sc4, g.sb4, a.g_p3, a.h3, p.sc4, nb, 16, 10, 10, kt)
    _squash_grad(a.g_h3, a.h3, nb * SZ_C3)
    _conv_bwd(a.g_p1, g.w3, g.b3, a.g_h3, a.q1, p.w3, nb, 6, 14, 14, 16, &net.c3, a.pad, kt)
    _squash_grad(a.g_p1, a.q1, nb * SZ_S2)
    subsample_backward_raw(a.g_h1, g.sc2, g.sb2, a.g_p1, a.h1, p.sc2, nb, 6, 28, 28, kt)
    _squash_grad(a.g_h1, a.h1, nb * SZ_C1)
    _conv_bwd(NULL, g.w1, g.b1, a.g_h1, a.x, p.w1, nb, 1, 32, 32, 6, &net.c1, NULL, kt)


cdef void _curvature(const Net* net, Act* a, int nb, const Params* sq, Params* h,
                     int kt) noexcept nogil:
    # SDLM's second-derivative pass (lecun98) after `_forward`: Gauss-Newton second
    # derivatives back-propagated from the RBF data term (d2E/dx^2 = 2 at the F6 outputs)
    # through the backward kernels with squared weights (sq) and squared inputs; writes,
    # for every parameter, the block's sum of x^2 d2E/da^2 (biases: d2E/da^2; subsampling
    # coefficients: s^2 d2E/da^2, s the 2x2 block sum) into h.
    cdef int i
    for i in range(nb * SZ_F6):
        a.g_h6[i] = 2
    _squash_second(a.g_h6, a.h6, nb * SZ_F6)
    _square(a.h5sq, a.h5, nb * SZ_C5)
    dense_backward(a.g_h5, h.w6, h.b6, a.g_h6, a.h5sq, sq.w6, nb, SZ_C5, SZ_F6, kt)
    _squash_second(a.g_h5, a.h5, nb * SZ_C5)
    _square(a.q3sq, a.q3, nb * SZ_S4)
    _conv_bwd(a.g_p3, h.w5, h.b5, a.g_h5, a.q3sq, sq.w5, nb, 16, 5, 5, 120, &net.c5, a.pad, kt)
    _squash_second(a.g_p3, a.q3, nb * SZ_S4)
    subsample_backward_raw(a.g_h3, a.unused, h.sb4, a.g_p3, a.h3, sq.sc4, nb, 16, 10, 10, kt)
    _subsample_curvature(h.sc4, a.g_p3, a.h3, nb, 16, 10, 10)
    _squash_second(a.g_h3, a.h3, nb * SZ_C3)
    _square(a.q1sq, a.q1, nb * SZ_S2)
    _conv_bwd(a.g_p1, h.w3, h.b3, a.g_h3, a.q1sq, sq.w3, nb, 6, 14, 14, 16, &net.c3, a.pad, kt)
    _squash_second(a.g_p1, a.q1, nb * SZ_S2)
    subsample_backward_raw(a.g_h1, a.unused, h.sb2, a.g_p1, a.h1, sq.sc2, nb, 6, 28, 28, kt)
    _subsample_curvature(h.sc2, a.g_p1, a.h1, nb, 6, 28, 28)
    _squash_second(a.g_h1, a.h1, nb * SZ_C1)
    _square(a.xsq, a.x, nb * SZ_X)
    _conv_bwd(NULL, h.w1, h.b1, a.g_h1, a.xsq, sq.w1, nb, 1, 32, 32, 6, &net.c1, NULL, kt)


cdef void _subsample_curvature(float* hc, const float* dy, const float* x, int N, int C, int H,
                               int W) noexcept nogil:
    # hc[c] = sum over the block and map c of s^2 dy, s the 2x2 block sum of x.
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


cdef double _softmax_xent(const float* logits, const int64_t* labels, float* grad, int N,
                          float scale, float eps) noexcept nogil:
    # Sum over the samples of the cross-entropy of softmax(logits) against the label
    # smoothed by eps (1 - eps on the label, eps / 10 on every class; eps = 0: -log
    # softmax(logits)[label]); grad = scale x its gradient.
    cdef int n, k
    cdef float m, s, zsum
    cdef double total = 0
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
        zsum = 0
        for k in range(10):
            g[k] = expf(z[k] - m)
            s = s + g[k]
            zsum = zsum + (z[k] - m)
        if eps == 0:
            total = total + (logf(s) - (z[labels[n]] - m))
        else:
            total = total + (logf(s) - (1 - eps) * (z[labels[n]] - m) - eps * 0.1 * zsum)
        for k in range(10):
            g[k] = (g[k] / s - eps * 0.1) * scale
        g[labels[n]] = g[labels[n]] - (1 - eps) * scale
    return total


cdef double _map_loss(const float* y, const int64_t* labels, float* grad, int N, float j,
                      float scale) noexcept nogil:
    # LeCun eq. 9, summed over the samples: y[label] + log(e^-j + sum_i e^-y_i); grad =
    # scale x its gradient w.r.t. y.
    cdef int n, k
    cdef float m, s
    cdef double total = 0
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
            g[k] = -g[k] / s * scale
        g[labels[n]] = g[labels[n]] + scale
    return total


cdef void _probabilities(float* out, int N, bint lecun) noexcept nogil:
    # Each row of out (N, 10) <- the softmax of its scores (the outputs, negated for the
    # RBF distances of lecun98): exp(s - max s) / sum, as LeNet5.predict_proba states.
    cdef int n, k
    cdef float m, t, total
    cdef float* z
    for n in range(N):
        z = out + n * 10
        if lecun:
            for k in range(10):
                z[k] = -z[k]
        m = z[0]
        for k in range(1, 10):
            if z[k] > m or z[k] != z[k]:
                m = z[k]
        total = 0
        for k in range(10):
            t = expf(z[k] - m)
            z[k] = t
            total = total + t
        for k in range(10):
            z[k] = z[k] / total


cdef int _correct(const float* out, const int64_t* labels, int N, bint lowest) noexcept nogil:
    # Samples whose prediction (numpy's argmax, or argmin for the RBF: the first extreme,
    # or the first NaN) equals the label.
    cdef int n, k, best, count = 0
    cdef float v, b
    cdef const float* z
    for n in range(N):
        z = out + n * 10
        best = 0
        b = z[0]
        if b == b:
            for k in range(1, 10):
                v = z[k]
                if v != v:
                    best = k
                    break
                if (v < b) if lowest else (v > b):
                    best = k
                    b = v
        count = count + (best == labels[n])
    return count


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


# ---------------------------------------------------------------------- a block of a pass
# Modes of `_block`.
cdef enum:
    FORWARD = 0
    TRAIN = 1
    CURVATURE = 2
    LOSS = 3


cdef void _block(const Pass* ps, int block, int slot, int tid, int mode) noexcept nogil:
    # Block `block` of the batch on thread `tid`, its gradients into slot `slot`.
    cdef Act a
    cdef Params g
    cdef Params sq
    cdef const Net* net = ps.net
    cdef int n0 = block * ps.block
    cdef int nb = min(ps.block, ps.N - n0)
    cdef unsigned int fpu = lf_ftz_on()
    if ps.keep != NULL:      # activations(): every sample keeps its own
        _layout(&a, ps.keep, ps.N, n0, net.lecun)
    else:
        _layout(&a, ps.ws + tid * ps.ws_floats, ps.block, 0, net.lecun)
    if mode == TRAIN:
        _dense_rows(&a, ps, n0 - ps.round0)
    if ps.xu != NULL:
        _load_digits(a.x, ps.xu + <Py_ssize_t>n0 * 784, nb, ps.lut)
    else:
        a.x = <float*>(ps.xf + <Py_ssize_t>n0 * SZ_X)
    _forward(net, &a, nb, ps.out + n0 * SZ_OUT, ps.kt)
    if mode == FORWARD and ps.proba:
        _probabilities(ps.out + n0 * SZ_OUT, nb, net.lecun)
    if mode == TRAIN or mode == LOSS:
        if net.lecun:
            ps.block_loss[block] = _map_loss(ps.out + n0 * SZ_OUT, ps.labels + n0, a.g_out, nb,
                                             net.map_j, ps.inv_n)
        else:
            ps.block_loss[block] = _softmax_xent(ps.out + n0 * SZ_OUT, ps.labels + n0, a.g_out,
                                                 nb, ps.inv_n, ps.smoothing)
        ps.block_correct[block] = _correct(ps.out + n0 * SZ_OUT, ps.labels + n0, nb, net.lecun)
        if mode == TRAIN:
            _bind(&g, ps.slots + <Py_ssize_t>slot * ps.slot_floats, &net.off)
            _backward(net, &a, nb, &g, ps.kt)
    elif mode == CURVATURE:
        _bind(&g, ps.slots + <Py_ssize_t>slot * ps.slot_floats, &net.off)
        _bind(&sq, <float*>ps.sq, &net.off)
        _curvature(net, &a, nb, &sq, &g, ps.kt)
    lf_ftz_restore(fpu)


cdef double _totals(const Pass* ps, long* correct) noexcept nogil:
    # The batch's summed loss and (into correct) correct predictions, in block order.
    cdef int b, nblocks = (ps.N + ps.block - 1) // ps.block
    cdef double total = 0
    correct[0] = 0
    for b in range(nblocks):
        total = total + ps.block_loss[b]
        correct[0] = correct[0] + ps.block_correct[b]
    return total


cdef inline Py_ssize_t _dense_cap(const Pass* ps) noexcept nogil:
    # Rows of the round buffers: the samples of one round.
    return min(<Py_ssize_t>ps.N, <Py_ssize_t>_ROUND * ps.block)


cdef void _dense_rows(Act* a, const Pass* ps, Py_ssize_t row) noexcept nogil:
    # Point the block's dense-layer inputs and output gradients at its rows (from `row`)
    # of the round's buffers: C5's input (400) and output gradient (120), F6's (120, 84),
    # the output layer's (84, 10).
    cdef Py_ssize_t cap = _dense_cap(ps)
    cdef float* d = ps.dense
    if ps.net.lecun:
        a.q3 = d + row * SZ_S4
        a.g_h5 = d + cap * SZ_S4 + row * SZ_C5
    else:
        a.p3 = d + row * SZ_S4
        a.g_a5 = d + cap * SZ_S4 + row * SZ_C5
    a.h5 = d + cap * (SZ_S4 + SZ_C5) + row * SZ_C5
    a.g_h6 = d + cap * (SZ_S4 + 2 * SZ_C5) + row * SZ_F6
    a.h6 = d + cap * (SZ_S4 + 2 * SZ_C5 + SZ_F6) + row * SZ_F6
    a.g_out = d + cap * (SZ_S4 + 2 * SZ_C5 + 2 * SZ_F6) + row * SZ_OUT


cdef void _dense_grads(const Pass* ps, float* grads, int n, bint accumulate,
                       int nt) noexcept nogil:
    # The weight and bias gradients of C5, F6 and the output layer (modern) over the n
    # samples of the round, from its buffers: dW = dY^T X, each element summed over the
    # samples in order (added to grads after the first round), whatever the blocks.
    cdef const Net* net = ps.net
    cdef Py_ssize_t cap = _dense_cap(ps)
    cdef const float* d = ps.dense
    cdef const float* x5 = d
    cdef const float* g5 = d + cap * SZ_S4
    cdef const float* x6 = d + cap * (SZ_S4 + SZ_C5)
    cdef const float* g6 = d + cap * (SZ_S4 + 2 * SZ_C5)
    cdef const float* x7 = d + cap * (SZ_S4 + 2 * SZ_C5 + SZ_F6)
    cdef const float* g7 = d + cap * (SZ_S4 + 2 * SZ_C5 + 2 * SZ_F6)
    cdef Params g
    cdef int j5 = lf_outer_jobs(SZ_C5, SZ_S4), j6 = lf_outer_jobs(SZ_F6, SZ_C5)
    cdef int j7 = 0 if net.lecun else lf_outer_jobs(SZ_OUT, SZ_F6)
    cdef int job, o
    _bind(&g, grads, &net.off)
    for job in prange(j5 + j6 + j7 + 1, num_threads=nt, schedule="dynamic", chunksize=1):
        if job < j5:
            lf_outer_job(g.w5, SZ_S4, g5, SZ_C5, 1, x5, SZ_S4, n,
                         g.w5 if accumulate else NULL, SZ_S4, SZ_C5, SZ_S4, job)
        elif job < j5 + j6:
            lf_outer_job(g.w6, SZ_C5, g6, SZ_F6, 1, x6, SZ_C5, n,
                         g.w6 if accumulate else NULL, SZ_C5, SZ_F6, SZ_C5, job - j5)
        elif job < j5 + j6 + j7:
            lf_outer_job(g.wo, SZ_F6, g7, SZ_OUT, 1, x7, SZ_F6, n,
                         g.wo if accumulate else NULL, SZ_F6, SZ_OUT, SZ_F6, job - j5 - j6)
        else:
            for o in range(SZ_C5):
                g.b5[o] = dense_bias_grad(g.b5[o] if accumulate else 0, g5, n, SZ_C5, o)
            for o in range(SZ_F6):
                g.b6[o] = dense_bias_grad(g.b6[o] if accumulate else 0, g6, n, SZ_F6, o)
            if not net.lecun:
                for o in range(SZ_OUT):
                    g.bo[o] = dense_bias_grad(g.bo[o] if accumulate else 0, g7, n, SZ_OUT, o)


cdef void _run(Pass* ps, float* grads, int mode, int nt) noexcept nogil:
    # All blocks of the batch, in rounds of ROUND blocks; with grads, each round's slots
    # are summed (in block order) into grads.
    cdef int nblocks = (ps.N + ps.block - 1) // ps.block
    cdef int r0 = 0, rb, b
    # A pass of one block shares each kernel's work between the threads instead (one
    # sample's maps: worth it for inference and for training from 4 samples up; results
    # do not depend on it).
    ps.kt = nt if nblocks == 1 and (mode == FORWARD or mode == LOSS or ps.N >= 4) else 1
    ps.slot_floats = ps.net.Pconv if mode == TRAIN else ps.net.P
    while r0 < nblocks:
        rb = min(_ROUND, nblocks - r0)
        ps.round0 = r0 * ps.block
        if rb == 1 or nt == 1:
            for b in range(rb):
                _block(ps, r0 + b, b, 0, mode)
        else:
            for b in prange(rb, num_threads=nt, schedule="dynamic", chunksize=1):
                _block(ps, r0 + b, b, threadid(), mode)
        if grads != NULL:
            _reduce(grads, ps.slots, rb, ps.slot_floats, r0 > 0, nt)
            if mode == TRAIN:
                _dense_grads(ps, grads, min(ps.N, (r0 + rb) * ps.block) - ps.round0,
                             r0 > 0, nt)
        r0 = r0 + rb


cdef void _reduce(float* out, const float* slots, int nslots, Py_ssize_t P, bint accumulate,
                  int nt) noexcept nogil:
    # out (+)= slots[0] + slots[1] + ... in that order, per element.
    cdef Py_ssize_t CH = 4096
    cdef Py_ssize_t nch = (P + CH - 1) // CH, c
    if nt == 1 or nch == 1:
        for c in range(nch):
            _reduce_chunk(out, slots, nslots, P, accumulate, c * CH, min(P, c * CH + CH))
    else:
        for c in prange(nch, num_threads=nt, schedule="dynamic", chunksize=1):
            _reduce_chunk(out, slots, nslots, P, accumulate, c * CH, min(P, c * CH + CH))


cdef void _reduce_chunk(float* out, const float* slots, int nslots, Py_ssize_t P,
                        bint accumulate, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    cdef Py_ssize_t i
    cdef int s
    cdef const float* src
    cdef unsigned int fpu = lf_ftz_on()
    if not accumulate:
        for i in range(i0, i1):
            out[i] = slots[i]
    else:
        for i in range(i0, i1):
            out[i] = out[i] + slots[i]
    for s in range(1, nslots):
        src = slots + s * P
        for i in range(i0, i1):
            out[i] = out[i] + src[i]
    lf_ftz_restore(fpu)


# ---------------------------------------------------------------------- from Python
cdef inline float* _f(object a) except? NULL:
    # Raw pointer of a C-contiguous float32 array (a read-only one is only ever read).
    if not (cnp.PyArray_Check(a) and cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_FLOAT32
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)):
        raise TypeError("expected a C-contiguous float32 numpy array")
    return <float*>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline int* _i(object a):
    cdef int[::1] v = a
    return &v[0] if v.shape[0] > 0 else NULL


cdef void _conn(Conn* c, object conn):
    c.nnz = conn.cidx.shape[0]
    c.cptr, c.cidx, c.pco = _i(conn.cptr), _i(conn.cidx), _i(conn.pco)
    c.fptr, c.fidx, c.fflag = _i(conn.fptr), _i(conn.fidx), _i(conn.fflag)
    c.bptr, c.bidx, c.bflag = _i(conn.bptr), _i(conn.bidx), _i(conn.bflag)


cdef class Plan:
    """The compiled passes of one model (either preset).

    Parameters
    ----------
    flat_params : float32 (P,), the model's parameter vector
    params : dict of float32 views into flat_params, keyed "c1.weight", ...
    conns : dict of lenet_fast.ops.Connections for "c1", "c3", "c5"
    centers : float32 (10, 84) RBF codes (lecun98) or None (modern)
    map_j : the constant j of the MAP loss (lecun98)

    Every call takes its memory from the caller: ``ws``, a float32 vector of at least
    ``n_threads * ws_floats`` floats (the activations of one block per thread), and for
    training ``slots``, at least ``min(blocks, ROUND) * P`` floats (one gradient vector
    per block of a round).
    """
    cdef Net net
    cdef object keep
    cdef readonly Py_ssize_t ws_floats
    cdef readonly Py_ssize_t n_params

    def __init__(self, flat_params, params, conns, centers=None, float map_j=0):
        cdef float* base = _f(flat_params)
        cdef Offsets o
        lecun = centers is not None
        self.keep = (flat_params, params, conns, centers)

        def at(name):
            if name not in params:
                return 0
            return (params[name].__array_interface__["data"][0]
                    - flat_params.__array_interface__["data"][0]) // 4

        o.w1, o.b1 = at("c1.weight"), at("c1.bias")
        o.sc2, o.sb2 = at("s2.coef"), at("s2.bias")
        o.w3, o.b3 = at("c3.weight"), at("c3.bias")
        o.sc4, o.sb4 = at("s4.coef"), at("s4.bias")
        o.w5, o.b5 = at("c5.weight"), at("c5.bias")
        o.w6, o.b6 = at("f6.weight"), at("f6.bias")
        o.wo, o.bo = at("out.weight"), at("out.bias")
        self.net.lecun = lecun
        self.net.off = o
        self.net.P = flat_params.shape[0]
        self.net.Pconv = o.w5
        if (o.w6 - o.w5 != 120 * 16 * 25 + 120 or (not lecun and o.wo < o.w6)
                or o.w5 < max(o.b3, o.sb4) or conns["c5"].cidx.shape[0] != 16 * 120):
            raise ValueError("the parameter vector must end with C5, F6 (and the output "
                             "layer), C5 fully connected")
        _bind(&self.net.p, base, &self.net.off)
        _conn(&self.net.c1, conns["c1"])
        _conn(&self.net.c3, conns["c3"])
        _conn(&self.net.c5, conns["c5"])
        self.net.rbf = _f(centers) if lecun else NULL
        self.net.map_j = map_j
        self.ws_floats = workspace_floats(_BLOCK, lecun)
        self.n_params = self.net.P

    cdef int _setup(self, Pass* ps, object x, object out, object ws, object lut,
                    int nt) except -1:
        ps.net = &self.net
        ps.xf = NULL
        ps.xu = NULL
        ps.keep = NULL
        ps.slots = NULL
        ps.labels = NULL
        ps.sq = NULL
        cdef cnp.npy_intp* d
        if not (cnp.PyArray_Check(x) and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x)):
            raise TypeError("x must be a C-contiguous numpy array")
        d = cnp.PyArray_DIMS(<cnp.ndarray>x)
        if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_UINT8:
            if cnp.PyArray_NDIM(<cnp.ndarray>x) != 3 or d[1] != 28 or d[2] != 28:
                raise ValueError("uint8 x must have shape (N, 28, 28)")
            ps.N = d[0]
            ps.xu = <const unsigned char*>cnp.PyArray_DATA(<cnp.ndarray>x)
            if lut is None or cnp.PyArray_SIZE(<cnp.ndarray>lut) != 256:
                raise ValueError("uint8 input needs a 256-entry lut")
            ps.lut = _f(lut)
        else:
            if cnp.PyArray_NDIM(<cnp.ndarray>x) != 4 or d[1] != 1 or d[2] != 32 or d[3] != 32:
                raise ValueError("float32 x must have shape (N, 1, 32, 32)")
            ps.N = d[0]
            ps.xf = _f(x)
        ps.out = _f(out)
        d = cnp.PyArray_DIMS(<cnp.ndarray>out)
        if cnp.PyArray_NDIM(<cnp.ndarray>out) != 2 or d[0] != ps.N or d[1] != 10:
            raise ValueError(f"out must have shape ({ps.N}, 10)")
        if nt < 1:
            raise ValueError("n_threads must be >= 1")
        if ws is not None:
            ps.ws = _f(ws)
            if cnp.PyArray_SIZE(<cnp.ndarray>ws) < nt * self.ws_floats:
                raise ValueError(f"ws must hold {nt} x {self.ws_floats} floats")
        ps.ws_floats = self.ws_floats
        ps.inv_n = 1.0 / ps.N if ps.N else 0
        ps.block = _block_size(ps.N)
        ps.smoothing = 0
        ps.proba = False
        return 0

    cdef object _block_stats(self, Pass* ps):
        # Per-block loss sums and correct counts of a pass over ps.N samples: points ps
        # at new arrays and returns them (the caller holds them until the pass ends).
        cdef Py_ssize_t nblocks = (ps.N + ps.block - 1) // ps.block
        cdef double[::1] loss = np.empty(nblocks, np.float64)
        cdef int[::1] correct = np.empty(nblocks, np.int32)
        ps.block_loss = &loss[0]
        ps.block_correct = &correct[0]
        return loss, correct

    cdef int _need_slots(self, Pass* ps, object slots) except -1:
        cdef Py_ssize_t nblocks = (ps.N + ps.block - 1) // ps.block
        if slots.shape[0] < self.slots_floats(ps.N):
            raise ValueError("slots too small")
        ps.slots = _f(slots)
        ps.dense = ps.slots + min(nblocks, _ROUND) * self.net.P
        return 0

    def slots_floats(self, Py_ssize_t n):
        """Floats of the `slots` a training or curvature pass over n samples needs: a
        gradient vector per block of a round, and the round's dense-layer rows."""
        cdef Py_ssize_t b = _block_size(n)
        cdef Py_ssize_t nblocks = (n + b - 1) // b
        return min(nblocks, _ROUND) * self.net.P + min(n, _ROUND * b) * DENSE_ROW

    def forward(self, x, out, ws, int n_threads, lut=None, bint proba=False):
        """out (N, 10) <- the network on x: float32 (N, 1, 32, 32), or uint8 (N, 28, 28)
        digits through `lut` (the 256 grey levels' input values); with `proba`, each
        row's softmax of the class scores instead (the outputs, negated for lecun98)."""
        cdef Pass ps
        self._setup(&ps, x, out, ws, lut, n_threads)
        ps.proba = proba
        if ps.N == 0:
            return
        with nogil:
            _run(&ps, NULL, FORWARD, n_threads)

    def activations(self, x, keep, out, lut=None):
        """As `forward` on one thread, keeping every sample's activations in `keep`
        (``workspace_floats(N, lecun)`` floats; `layout` names its fields)."""
        cdef Pass ps
        self._setup(&ps, x, out, None, lut, 1)
        if keep.shape[0] < workspace_floats(ps.N, self.net.lecun):
            raise ValueError("keep too small")
        ps.keep = _f(keep)
        if ps.N == 0:
            return
        with nogil:
            _run(&ps, NULL, FORWARD, 1)

    def train_pass(self, x, const int64_t[::1] labels, out, grads, ws, slots,
                   int n_threads, lut=None, float smoothing=0):
        """Forward, mean loss and backward of the batch x (as in `forward`) with `labels`;
        the gradient of the mean loss overwrites `grads` (float32 (P,)); with `grads`
        None, no backward pass (the loss only). `smoothing`: label smoothing of the
        modern preset's cross-entropy (0 <= smoothing < 1).

        Returns (mean loss, correct predictions).
        """
        cdef Pass ps
        cdef double total
        cdef long correct
        cdef float* g = NULL
        self._setup(&ps, x, out, ws, lut, n_threads)
        if labels.shape[0] != ps.N or ps.N == 0:
            raise ValueError(f"labels must have {ps.N} entries and the batch >= 1 sample")
        if grads is not None:
            if grads.shape != (self.net.P,):
                raise ValueError("grads must be as long as the parameters")
            self._need_slots(&ps, slots)
            g = _f(grads)
        stats = self._block_stats(&ps)      # held until the pass ends
        ps.labels = &labels[0]
        if not 0 <= smoothing < 1 or (smoothing and self.net.lecun):
            raise ValueError("smoothing must be in [0, 1), and 0 for lecun98")
        ps.smoothing = smoothing
        with nogil:
            _run(&ps, g, TRAIN if g != NULL else LOSS, n_threads)
            total = _totals(&ps, &correct)
        return <float>(total / ps.N), correct

    def curvature(self, x, hv, sq, ws, slots, int n_threads, lut=None):
        """SDLM's second-derivative pass (lecun98) over the batch x (as in `forward`):
        `hv` (float32 (P,)) <- per parameter, the sum over the batch of the diagonal
        Gauss-Newton estimate (see `_curvature`); `sq` holds the squared parameters."""
        cdef Pass ps
        if not self.net.lecun:
            raise ValueError("the curvature pass is lecun98's")
        out = np.empty((x.shape[0], 10), np.float32)     # held until the pass ends
        self._setup(&ps, x, out, ws, lut, n_threads)
        self._need_slots(&ps, slots)
        if hv.shape != (self.net.P,) or sq.shape != (self.net.P,):
            raise ValueError("hv and sq must be as long as the parameters")
        ps.sq = _f(sq)
        cdef float* h = _f(hv)
        if ps.N == 0:
            hv[...] = 0
            return
        with nogil:
            _run(&ps, h, CURVATURE, n_threads)

    def train_steps(self, const unsigned char[:, :, ::1] images, const int64_t[::1] labels,
                    const float[::1] lrs, const float[::1] scale, float[::1] params,
                    float[::1] grads, float[::1] residual, lut, ws, slots, int n_threads):
        """Training steps without returning to Python: for each step s, the digits
        ``images[s*N:(s+1)*N]`` (uint8, 28x28, through `lut`) make a batch; forward, loss
        and backward, then ``params -= lrs[s] * (scale * grads)`` (with a non-empty
        `residual`, on the double-precision weights ``params + residual``: `lf_update`).

        `params` and `grads` must be the model's flat vectors (the caller checks). A step
        whose loss is not finite makes no update and ends the loop.

        Returns
        -------
        (steps done, sum over those steps of loss * N (float), correct predictions)
        """
        cdef Py_ssize_t steps = lrs.shape[0], P = params.shape[0], s, done = 0
        cdef int N
        cdef double loss_sum = 0
        cdef float loss
        cdef long correct = 0, step_correct
        cdef Pass ps
        if steps == 0:
            return 0, 0.0, 0
        N = images.shape[0] // steps
        if N < 1 or images.shape[0] != steps * N or images.shape[1] != 28 or images.shape[2] != 28:
            raise ValueError(f"images must hold {steps} equal batches of 28x28 digits")
        if labels.shape[0] != steps * N:
            raise ValueError(f"labels must have {steps * N} entries, got {labels.shape[0]}")
        if P != self.net.P or grads.shape[0] != P or scale.shape[0] != P:
            raise ValueError("params, grads and scale must be as long as the parameters")
        if residual.shape[0] not in (0, P):
            raise ValueError("residual must be empty or as long as params")
        cdef bint compensated = residual.shape[0] == P
        cdef unsigned int fpu
        out = np.empty((N, 10), np.float32)
        self._setup(&ps, np.asarray(images[:N]), out, ws, lut, n_threads)
        self._need_slots(&ps, slots)
        stats = self._block_stats(&ps)
        with nogil:
            for s in range(steps):
                ps.xu = &images[s * N, 0, 0]
                ps.labels = &labels[s * N]
                _run(&ps, &grads[0], TRAIN, n_threads)
                loss = <float>(_totals(&ps, &step_correct) / N)
                if not (loss == loss and loss - loss == 0):
                    break
                correct = correct + step_correct
                fpu = lf_ftz_on()
                if compensated:
                    scaled_sgd_compensated(&params[0], &residual[0], &grads[0], &scale[0],
                                           lrs[s], P)
                else:
                    lf_scaled_sgd(&params[0], &grads[0], &scale[0], lrs[s], P)
                lf_ftz_restore(fpu)
                loss_sum = loss_sum + <double>loss * N
                done = s + 1
        return done, loss_sum, correct


def softmax_rows(float[:, ::1] scores):
    """Each row of `scores` (float32 (N, 10), higher is better) <- its softmax, in place,
    with the arithmetic of `Plan.forward`'s probabilities."""
    if scores.shape[1] != 10:
        raise ValueError("scores must have 10 columns")
    if scores.shape[0]:
        with nogil:
            _probabilities(&scores[0, 0], scores.shape[0], False)


def layout(Py_ssize_t n, bint lecun):
    """{field: (offset, floats per sample)} of a workspace for n samples (`activations`)."""
    cdef Act a
    cdef Py_ssize_t record[52]
    _layout(&a, NULL, n, 0, lecun, record)
    return {name: (record[2 * k], record[2 * k + 1]) for k, name in enumerate(_FIELDS)}
