# The dense (fully connected) kernels, shared by _linear (F6, output layer) and _conv
# (C5: a 5x5 convolution over a 5x5 map). Inline definitions in a .pxd are compiled into
# each module that cimports them.
#
# Register-blocked on eight-float vectors (`lf_simd.h`): 2 samples x 4 outputs for y,
# 4 x 16 tiles for dw and dx. Each output element is summed by one thread in an order
# fixed by the code, so results do not depend on the thread count.

from cython.parallel cimport prange
from lf_simd cimport (lf_v8, lf_zero, lf_load, lf_store, lf_bcast, lf_fma, lf_hsum, lf_v16,
                      lf16_zero, lf16_load, lf16_fma, lf16_hsum)

cdef extern from "lf_conv16.h" nogil:
    bint LF_WIDE
    void lf16_outer_8x32(float* out, int ldo, const float* a, int sk, int sr, const float* bm,
                         int ldb, int K, int acc)


cdef inline float _dot(const float* a, const float* b, int I) noexcept nogil:
    # Vector part in one accumulator chain of 8 lanes, then the tail, in a fixed order.
    cdef lf_v8 acc = lf_zero()
    cdef int i = 0
    cdef float s
    while i + 8 <= I:
        acc = lf_fma(lf_load(a + i), lf_load(b + i), acc)
        i += 8
    s = lf_hsum(acc)
    while i < I:
        s = s + a[i] * b[i]
        i += 1
    return s


cdef inline void _dot_2x4(float* y, int O, const float* x, const float* w, const float* b,
                          int I) noexcept nogil:
    # y[r, c] for rows x, x+I and outputs w .. w+3I: the same sums as _dot, eight at once.
    cdef lf_v8 a00 = lf_zero(), a01 = lf_zero(), a02 = lf_zero(), a03 = lf_zero()
    cdef lf_v8 a10 = lf_zero(), a11 = lf_zero(), a12 = lf_zero(), a13 = lf_zero()
    cdef lf_v8 x0, x1, wv
    cdef const float* xr1 = x + I
    cdef int i = 0, r, c
    cdef float s
    while i + 8 <= I:
        x0 = lf_load(x + i)
        x1 = lf_load(xr1 + i)
        wv = lf_load(w + i)
        a00 = lf_fma(x0, wv, a00)
        a10 = lf_fma(x1, wv, a10)
        wv = lf_load(w + I + i)
        a01 = lf_fma(x0, wv, a01)
        a11 = lf_fma(x1, wv, a11)
        wv = lf_load(w + 2 * I + i)
        a02 = lf_fma(x0, wv, a02)
        a12 = lf_fma(x1, wv, a12)
        wv = lf_load(w + 3 * I + i)
        a03 = lf_fma(x0, wv, a03)
        a13 = lf_fma(x1, wv, a13)
        i += 8
    y[0] = lf_hsum(a00)
    y[1] = lf_hsum(a01)
    y[2] = lf_hsum(a02)
    y[3] = lf_hsum(a03)
    y[O] = lf_hsum(a10)
    y[O + 1] = lf_hsum(a11)
    y[O + 2] = lf_hsum(a12)
    y[O + 3] = lf_hsum(a13)
    for r in range(2):
        for c in range(4):
            s = y[r * O + c]
            for i in range(I - I % 8, I):
                s = s + x[r * I + i] * w[c * I + i]
            y[r * O + c] = s + b[c]


cdef inline void _dot_1x4(float* y, const float* x, const float* w, const float* b,
                          int I) noexcept nogil:
    # One row of _dot_2x4 (y[c] for outputs w .. w+3I): four independent chains, the same
    # sums as _dot (a batch's last row, and batch 1).
    cdef lf_v8 a0 = lf_zero(), a1 = lf_zero(), a2 = lf_zero(), a3 = lf_zero(), x0
    cdef int i = 0, c
    cdef float s
    while i + 8 <= I:
        x0 = lf_load(x + i)
        a0 = lf_fma(x0, lf_load(w + i), a0)
        a1 = lf_fma(x0, lf_load(w + I + i), a1)
        a2 = lf_fma(x0, lf_load(w + 2 * I + i), a2)
        a3 = lf_fma(x0, lf_load(w + 3 * I + i), a3)
        i += 8
    y[0] = lf_hsum(a0)
    y[1] = lf_hsum(a1)
    y[2] = lf_hsum(a2)
    y[3] = lf_hsum(a3)
    for c in range(4):
        s = y[c]
        for i in range(I - I % 8, I):
            s = s + x[i] * w[c * I + i]
        y[c] = s + b[c]


cdef inline void _dot16_2x4(float* y, int O, const float* x, const float* w, const float* b,
                            int I) noexcept nogil:
    # _dot_2x4 on sixteen-float vectors, for I a multiple of 16 (C5's 400): the avx512
    # path's sums (lanes 16 apart, then lf16_hsum).
    cdef lf_v16 a00 = lf16_zero(), a01 = lf16_zero(), a02 = lf16_zero(), a03 = lf16_zero()
    cdef lf_v16 a10 = lf16_zero(), a11 = lf16_zero(), a12 = lf16_zero(), a13 = lf16_zero()
    cdef lf_v16 x0, x1, wv
    cdef const float* xr1 = x + I
    cdef int i = 0
    while i < I:
        x0 = lf16_load(x + i)
        x1 = lf16_load(xr1 + i)
        wv = lf16_load(w + i)
        a00 = lf16_fma(x0, wv, a00)
        a10 = lf16_fma(x1, wv, a10)
        wv = lf16_load(w + I + i)
        a01 = lf16_fma(x0, wv, a01)
        a11 = lf16_fma(x1, wv, a11)
        wv = lf16_load(w + 2 * I + i)
        a02 = lf16_fma(x0, wv, a02)
        a12 = lf16_fma(x1, wv, a12)
        wv = lf16_load(w + 3 * I + i)
        a03 = lf16_fma(x0, wv, a03)
        a13 = lf16_fma(x1, wv, a13)
        i += 16
    y[0] = lf16_hsum(a00) + b[0]
    y[1] = lf16_hsum(a01) + b[1]
    y[2] = lf16_hsum(a02) + b[2]
    y[3] = lf16_hsum(a03) + b[3]
    y[O] = lf16_hsum(a10) + b[0]
    y[O + 1] = lf16_hsum(a11) + b[1]
    y[O + 2] = lf16_hsum(a12) + b[2]
    y[O + 3] = lf16_hsum(a13) + b[3]


cdef inline void _dot16_1x4(float* y, const float* x, const float* w, const float* b,
                            int I) noexcept nogil:
    # One row of _dot16_2x4.
    cdef lf_v16 a0 = lf16_zero(), a1 = lf16_zero(), a2 = lf16_zero(), a3 = lf16_zero(), x0
    cdef int i = 0
    while i < I:
        x0 = lf16_load(x + i)
        a0 = lf16_fma(x0, lf16_load(w + i), a0)
        a1 = lf16_fma(x0, lf16_load(w + I + i), a1)
        a2 = lf16_fma(x0, lf16_load(w + 2 * I + i), a2)
        a3 = lf16_fma(x0, lf16_load(w + 3 * I + i), a3)
        i += 16
    y[0] = lf16_hsum(a0) + b[0]
    y[1] = lf16_hsum(a1) + b[1]
    y[2] = lf16_hsum(a2) + b[2]
    y[3] = lf16_hsum(a3) + b[3]


cdef inline float _dot16(const float* a, const float* b, int I) noexcept nogil:
    cdef lf_v16 acc = lf16_zero()
    cdef int i = 0
    while i < I:
        acc = lf16_fma(lf16_load(a + i), lf16_load(b + i), acc)
        i += 16
    return lf16_hsum(acc)


cdef inline void dense_forward(float* y, const float* x, const float* w, const float* b,
                        int N, int I, int O, int n_threads) noexcept nogil:
    # y is (N, O), x is (N, I), w is (O, I), b is (O,).
    cdef int nb = (N + 1) // 2, ob = (O + 3) // 4
    cdef int job, n0, o0, n, o
    # the avx512 path's sixteen-float tiles where I is a multiple of 16 (C5)
    cdef bint wide16 = LF_WIDE and I % 16 == 0
    for job in prange(nb * ob, num_threads=n_threads, schedule="static"):
        n0 = (job // ob) * 2
        o0 = (job % ob) * 4
        if wide16:
            if n0 + 2 <= N and o0 + 4 <= O:
                _dot16_2x4(y + n0 * O + o0, O, x + n0 * I, w + o0 * I, b + o0, I)
            elif o0 + 4 <= O:
                _dot16_1x4(y + n0 * O + o0, x + n0 * I, w + o0 * I, b + o0, I)
            else:
                for n in range(n0, min(n0 + 2, N)):
                    for o in range(o0, min(o0 + 4, O)):
                        y[n * O + o] = _dot16(x + n * I, w + o * I, I) + b[o]
        elif n0 + 2 <= N and o0 + 4 <= O:
            _dot_2x4(y + n0 * O + o0, O, x + n0 * I, w + o0 * I, b + o0, I)
        elif o0 + 4 <= O:
            _dot_1x4(y + n0 * O + o0, x + n0 * I, w + o0 * I, b + o0, I)
        else:
            for n in range(n0, min(n0 + 2, N)):
                for o in range(o0, min(o0 + 4, O)):
                    y[n * O + o] = _dot(x + n * I, w + o * I, I) + b[o]


cdef inline void _outer_4x16(float* out, int ldo, const float* a, int sk, int sr,
                             const float* bm, int ldb, int K, bint acc) noexcept nogil:
    # out[r, 0:16] = sum_k a[k*sk + r*sr] * bm[k*ldb + 0:16], r < 4: a rank-K update
    # with the k sum in increasing order (so tiles agree with the scalar tail code).
    # (sk, sr) = (lda, 1) reads a by columns (dw), (1, lda) by rows (dx).
    # With acc, the sums start from out's values (out += ...).
    cdef lf_v8 c00 = lf_zero(), c01 = lf_zero(), c10 = lf_zero(), c11 = lf_zero()
    cdef lf_v8 c20 = lf_zero(), c21 = lf_zero(), c30 = lf_zero(), c31 = lf_zero()
    cdef lf_v8 b0, b1, s
    cdef int k
    cdef const float* ak
    cdef const float* bk
    if acc:
        c00 = lf_load(out)
        c01 = lf_load(out + 8)
        c10 = lf_load(out + ldo)
        c11 = lf_load(out + ldo + 8)
        c20 = lf_load(out + 2 * ldo)
        c21 = lf_load(out + 2 * ldo + 8)
        c30 = lf_load(out + 3 * ldo)
        c31 = lf_load(out + 3 * ldo + 8)
    for k in range(K):
        ak = a + k * sk
        bk = bm + k * ldb
        b0 = lf_load(bk)
        b1 = lf_load(bk + 8)
        s = lf_bcast(ak[0])
        c00 = lf_fma(s, b0, c00)
        c01 = lf_fma(s, b1, c01)
        s = lf_bcast(ak[sr])
        c10 = lf_fma(s, b0, c10)
        c11 = lf_fma(s, b1, c11)
        s = lf_bcast(ak[2 * sr])
        c20 = lf_fma(s, b0, c20)
        c21 = lf_fma(s, b1, c21)
        s = lf_bcast(ak[3 * sr])
        c30 = lf_fma(s, b0, c30)
        c31 = lf_fma(s, b1, c31)
    lf_store(out, c00)
    lf_store(out + 8, c01)
    lf_store(out + ldo, c10)
    lf_store(out + ldo + 8, c11)
    lf_store(out + 2 * ldo, c20)
    lf_store(out + 2 * ldo + 8, c21)
    lf_store(out + 3 * ldo, c30)
    lf_store(out + 3 * ldo + 8, c31)


cdef inline void _outer_4x8(float* out, int ldo, const float* a, int sk, int sr,
                            const float* bm, int ldb, int K, bint acc) noexcept nogil:
    # _outer_4x16 on eight columns: a tile's last 8-15 columns (F6's 120 = 7 x 16 + 8).
    cdef lf_v8 c0 = lf_zero(), c1 = lf_zero(), c2 = lf_zero(), c3 = lf_zero(), b0
    cdef int k
    cdef const float* ak
    if acc:
        c0 = lf_load(out)
        c1 = lf_load(out + ldo)
        c2 = lf_load(out + 2 * ldo)
        c3 = lf_load(out + 3 * ldo)
    for k in range(K):
        ak = a + k * sk
        b0 = lf_load(bm + k * ldb)
        c0 = lf_fma(lf_bcast(ak[0]), b0, c0)
        c1 = lf_fma(lf_bcast(ak[sr]), b0, c1)
        c2 = lf_fma(lf_bcast(ak[2 * sr]), b0, c2)
        c3 = lf_fma(lf_bcast(ak[3 * sr]), b0, c3)
    lf_store(out, c0)
    lf_store(out + ldo, c1)
    lf_store(out + 2 * ldo, c2)
    lf_store(out + 3 * ldo, c3)


cdef inline void _outer_1x16(float* out, const float* a, int sk, const float* bm, int ldb,
                             int K, bint acc) noexcept nogil:
    # One row of _outer_4x16 (out[0:16] = sum_k a[k*sk] * bm[k*ldb + 0:16]), for the rows
    # of a partial tile: the batch-1 step's input gradients.
    cdef lf_v8 c0 = lf_zero(), c1 = lf_zero(), s
    cdef int k
    cdef const float* bk
    if acc:
        c0 = lf_load(out)
        c1 = lf_load(out + 8)
    for k in range(K):
        bk = bm + k * ldb
        s = lf_bcast(a[k * sk])
        c0 = lf_fma(s, lf_load(bk), c0)
        c1 = lf_fma(s, lf_load(bk + 8), c1)
    lf_store(out, c0)
    lf_store(out + 8, c1)


cdef inline void _outer_tail(float* out, int ldo, const float* a, int sk, int sr,
                             const float* bm, int ldb, int K, int rows, int cols,
                             bint acc) noexcept nogil:
    # The same sums as _outer_4x16 for a partial tile: with 4 rows, its first 8 columns
    # (if that many) in vectors, the rest one element at a time.
    cdef int r, c, k, c0 = 0
    cdef float s
    if rows == 4 and cols >= 8:
        _outer_4x8(out, ldo, a, sk, sr, bm, ldb, K, acc)
        c0 = 8
    for r in range(rows):
        for c in range(c0, cols):
            s = out[r * ldo + c] if acc else 0
            for k in range(K):
                s = s + a[k * sk + r * sr] * bm[k * ldb + c]
            out[r * ldo + c] = s


cdef inline void _dw_tile(float* dw, const float* dy, const float* x, int N, int I, int O,
                          int o0, int i0, bint accumulate) noexcept nogil:
    # dw[o0:o0+4, i0:i0+16] (clipped to O, I).
    if o0 + 4 <= O and i0 + 16 <= I:
        _outer_4x16(dw + o0 * I + i0, I, dy + o0, O, 1, x + i0, I, N, accumulate)
    elif o0 < O and i0 < I:
        _outer_tail(dw + o0 * I + i0, I, dy + o0, O, 1, x + i0, I, N,
                    min(4, O - o0), min(16, I - i0), accumulate)


cdef inline void _dx_tile(float* dx, const float* dy, const float* w, int N, int I, int O,
                          int n0, int i0) noexcept nogil:
    # dx[n0:n0+4, i0:i0+16] (clipped to N, I).
    cdef int n
    if n0 >= N or i0 >= I:
        return
    if n0 + 4 <= N and i0 + 16 <= I:
        _outer_4x16(dx + n0 * I + i0, I, dy + n0 * O, 1, O, w + i0, I, O, False)
    elif i0 + 16 <= I:
        for n in range(n0, N):
            _outer_1x16(dx + n * I + i0, dy + n * O, 1, w + i0, I, O, False)
    else:
        _outer_tail(dx + n0 * I + i0, I, dy + n0 * O, 1, O, w + i0, I, O,
                    min(4, N - n0), min(16, I - i0), False)


cdef inline void dense_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                         const float* w, int N, int I, int O, int n_threads,
                         bint accumulate=False) noexcept nogil:
    # dx is (N, I) (skipped when NULL), dw is (O, I), db is (O,); dy is (N, O).
    # dw[o, i] = sum_n dy[n, o] x[n, i];  dx[n, i] = sum_o dy[n, o] w[o, i].
    # With accumulate, dw and db are added to (batch chunks, in chunk order).
    # Tiles of 4 x 16 (8 x 32 on the avx512 path, the same sums element by element).
    cdef int t = 2 if LF_WIDE else 1
    cdef int ib = (I + 16 * t - 1) // (16 * t), ob = (O + 4 * t - 1) // (4 * t)
    cdef int nb = (N + 4 * t - 1) // (4 * t)
    cdef int job, o0, i0, n0, n, o
    cdef float s
    for job in prange(ob * ib, num_threads=n_threads, schedule="static"):
        o0 = (job // ib) * 4 * t
        i0 = (job % ib) * 16 * t
        if t == 2 and o0 + 8 <= O and i0 + 32 <= I:
            lf16_outer_8x32(dw + o0 * I + i0, I, dy + o0, O, 1, x + i0, I, N, accumulate)
        elif t == 2:
            _dw_tile(dw, dy, x, N, I, O, o0, i0, accumulate)
            _dw_tile(dw, dy, x, N, I, O, o0, i0 + 16, accumulate)
            _dw_tile(dw, dy, x, N, I, O, o0 + 4, i0, accumulate)
            _dw_tile(dw, dy, x, N, I, O, o0 + 4, i0 + 16, accumulate)
        else:
            _dw_tile(dw, dy, x, N, I, O, o0, i0, accumulate)
    for o in prange(O, num_threads=n_threads, schedule="static"):
        s = db[o] if accumulate else 0
        for n in range(N):
            s = s + dy[n * O + o]
        db[o] = s
    if dx != NULL:
        for job in prange(nb * ib, num_threads=n_threads, schedule="static"):
            n0 = (job // ib) * 4 * t
            i0 = (job % ib) * 16 * t
            if t == 2 and n0 + 8 <= N and i0 + 32 <= I:
                lf16_outer_8x32(dx + n0 * I + i0, I, dy + n0 * O, 1, O, w + i0, I, O, False)
            elif t == 2:
                # the rows of a partial tile: 4-row tiles while 4 rows remain, then
                # single rows (_dx_tile takes every row from n0 on below 4 rows)
                if n0 + 4 <= N:
                    _dx_tile(dx, dy, w, N, I, O, n0, i0)
                    _dx_tile(dx, dy, w, N, I, O, n0, i0 + 16)
                    _dx_tile(dx, dy, w, min(N, n0 + 8), I, O, n0 + 4, i0)
                    _dx_tile(dx, dy, w, min(N, n0 + 8), I, O, n0 + 4, i0 + 16)
                else:
                    _dx_tile(dx, dy, w, N, I, O, n0, i0)
                    _dx_tile(dx, dy, w, N, I, O, n0, i0 + 16)
            else:
                _dx_tile(dx, dy, w, N, I, O, n0, i0)
