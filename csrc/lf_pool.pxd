# 2x2 subsampling kernels (LeCun's trainable average, and max pooling), forward and
# backward. Inline definitions in a .pxd are compiled into each module that cimports
# them: _pool (the checked per-layer API) and _net (whole-network steps).

from cython.parallel cimport prange

cdef extern from "lf_conv16.h" nogil:
    bint LF_WIDE
    void lf16_maxpool_row(float* y, const float* r0, const float* r1, int OW, int relu)
    void lf16_maxpool_grad_row(float* d0, float* d1, const float* r0, const float* r1,
                               const float* dyr, int OW, int relu)
from lf_simd cimport (lf_v8, lf_zero, lf_load, lf_store, lf_and, lf_or, lf_andnot,
                      lf_eq_or_nan, lf_gt, lf_maxnan, lf_even, lf_odd, lf_zip_lo, lf_zip_hi)


cdef inline void subsample_forward_raw(float* py, const float* px, const float* pc,
                                       const float* pb, int N, int C, int H, int W,
                                       int n_threads) noexcept nogil:
    # y (N, C, H/2, W/2) <- coef[c] * (2x2 block sums of x (N, C, H, W)) + bias[c].
    cdef int OH = H // 2, OW = W // 2
    cdef int job, c, i, j
    cdef const float* xr
    cdef float* yr
    cdef float a, bb
    for job in prange(N * C, num_threads=n_threads, schedule="static"):
        c = job % C
        a = pc[c]
        bb = pb[c]
        for i in range(OH):
            xr = px + (job * H + 2 * i) * W
            yr = py + (job * OH + i) * OW
            for j in range(OW):
                yr[j] = a * ((xr[2 * j] + xr[2 * j + 1]) + (xr[W + 2 * j] + xr[W + 2 * j + 1])) + bb


cdef inline void subsample_backward_raw(float* pdx, float* pdc, float* pdb, const float* pdy,
                                        const float* px, const float* pc, int N, int C,
                                        int H, int W, int n_threads) noexcept nogil:
    # dx (N, C, H, W) (skipped when NULL), dcoef (C,), dbias (C,) <- dy (N, C, H/2, W/2).
    cdef int OH = H // 2, OW = W // 2
    cdef int job, n, c, i, j
    cdef const float* xr
    cdef const float* dyr
    cdef float* dxr
    cdef float a, g, sc, sb, pcs, pbs
    for c in prange(C, num_threads=n_threads, schedule="static"):
        sc = 0
        sb = 0
        for n in range(N):
            pcs = 0
            pbs = 0
            for i in range(OH):
                xr = px + ((n * C + c) * H + 2 * i) * W
                dyr = pdy + ((n * C + c) * OH + i) * OW
                for j in range(OW):
                    g = dyr[j]
                    pbs = pbs + g
                    pcs = pcs + g * ((xr[2 * j] + xr[2 * j + 1]) + (xr[W + 2 * j] + xr[W + 2 * j + 1]))
            sc = sc + pcs
            sb = sb + pbs
        pdc[c] = sc
        pdb[c] = sb
    if pdx == NULL:
        return
    for job in prange(N * C, num_threads=n_threads, schedule="static"):
        a = pc[job % C]
        for i in range(OH):
            dyr = pdy + (job * OH + i) * OW
            dxr = pdx + (job * H + 2 * i) * W
            for j in range(OW):
                g = a * dyr[j]
                dxr[2 * j] = g
                dxr[2 * j + 1] = g
                dxr[W + 2 * j] = g
                dxr[W + 2 * j + 1] = g


cdef inline float _max2(float a, float b) noexcept nogil:
    # NaN-propagating max, as np.maximum.
    # (bitwise |, not "or": no branch to mispredict)
    return a if ((a >= b) | (a != a)) else b


cdef inline void _short_rows(float* ba, float* bb, const float* r0, const float* r1,
                             int W) noexcept nogil:
    # Rows of W = 8-15 inputs into 16-float buffers, zero after them (two overlapping
    # vector copies each).
    lf_store(ba + 8, lf_zero())
    lf_store(bb + 8, lf_zero())
    lf_store(ba, lf_load(r0))
    lf_store(bb, lf_load(r1))
    lf_store(ba + W - 8, lf_load(r0 + W - 8))
    lf_store(bb + W - 8, lf_load(r1 + W - 8))


cdef inline void _maxpool8(float* y, const float* r0, const float* r1, bint relu) noexcept nogil:
    # Eight outputs of a row: 16 inputs from each of the rows r0, r1.
    cdef lf_v8 a = lf_maxnan(lf_load(r0), lf_load(r1))
    cdef lf_v8 b = lf_maxnan(lf_load(r0 + 8), lf_load(r1 + 8))
    cdef lf_v8 m = lf_maxnan(lf_even(a, b), lf_odd(a, b))
    if relu:
        m = lf_maxnan(m, lf_zero())
    lf_store(y, m)


cdef inline void _maxpool_row(float* yr, const float* r0, const float* r1, int OW,
                              bint relu) noexcept nogil:
    # One output row from input rows r0, r1: eight outputs per step. The tail of a row
    # of 8 or more outputs is one more step ending at the row's end (it recomputes,
    # identically, outputs already written); a row of 4-7 outputs (S4's 5) takes one
    # step through 16-float buffers; shorter rows go one output at a time.
    cdef int j = 0, k, W = 2 * OW
    cdef float v
    cdef float ba[16]
    cdef float bb[16]
    cdef float res[8]
    while j + 8 <= OW or (j < OW and OW >= 8):
        if j + 8 > OW:
            j = OW - 8
        _maxpool8(yr + j, r0 + 2 * j, r1 + 2 * j, relu)
        j = j + 8
    if OW < 8 and OW >= 4:
        _short_rows(ba, bb, r0, r1, W)
        _maxpool8(res, ba, bb, relu)
        for k in range(OW):
            yr[k] = res[k]
        return
    while j < OW:
        v = _max2(_max2(r0[2 * j], r0[2 * j + 1]), _max2(r1[2 * j], r1[2 * j + 1]))
        yr[j] = _max2(v, 0) if relu else v
        j = j + 1


cdef inline void _maxpool_grad8(float* d0, float* d1, const float* r0, const float* r1,
                                const float* dyr, bint relu) noexcept nogil:
    # Eight outputs' worth of _maxpool_grad_row: 16 inputs from each row, 8 gradients.
    cdef lf_v8 a0, a1, b0, b1, v0, v1, v2, v3, m, g, e0, e1, e2, seen, o0, o1, o2, o3
    a0 = lf_load(r0)
    a1 = lf_load(r0 + 8)
    b0 = lf_load(r1)
    b1 = lf_load(r1 + 8)
    v0 = lf_even(a0, a1)
    v1 = lf_odd(a0, a1)
    v2 = lf_even(b0, b1)
    v3 = lf_odd(b0, b1)
    m = lf_maxnan(lf_maxnan(v0, v1), lf_maxnan(v2, v3))
    g = lf_load(dyr)
    if relu:
        g = lf_and(lf_gt(m, lf_zero()), g)
    e0 = lf_eq_or_nan(v0, m)
    e1 = lf_andnot(e0, lf_eq_or_nan(v1, m))
    seen = lf_or(e0, e1)
    e2 = lf_andnot(seen, lf_eq_or_nan(v2, m))
    seen = lf_or(seen, e2)
    o0 = lf_and(e0, g)
    o1 = lf_and(e1, g)
    o2 = lf_and(e2, g)
    o3 = lf_andnot(seen, g)
    lf_store(d0, lf_zip_lo(o0, o1))
    lf_store(d0 + 8, lf_zip_hi(o0, o1))
    lf_store(d1, lf_zip_lo(o2, o3))
    lf_store(d1 + 8, lf_zip_hi(o2, o3))


cdef inline void _maxpool_grad_row(float* d0, float* d1, const float* r0, const float* r1,
                                   const float* dyr, int OW, bint relu) noexcept nogil:
    # Route dyr to the first maximum (row-major; NaN counts as the maximum) of each block.
    cdef int j = 0, k, W = 2 * OW
    cdef float s0, s1, s2, s3, ms, gs
    cdef bint f0, f1, f2
    cdef float ba[16]
    cdef float bb[16]
    cdef float bg[8]
    cdef float o0[16]
    cdef float o1[16]
    while j + 8 <= OW or (j < OW and OW >= 8):
        if j + 8 > OW:      # the tail: as in _maxpool_row
            j = OW - 8
        _maxpool_grad8(d0 + 2 * j, d1 + 2 * j, r0 + 2 * j, r1 + 2 * j, dyr + j, relu)
        j = j + 8
    if OW < 8 and OW >= 4:  # a short row (S4's 5 outputs): through 16-float buffers
        _short_rows(ba, bb, r0, r1, W)
        for k in range(8):
            bg[k] = dyr[k] if k < OW else 0
        _maxpool_grad8(o0, o1, ba, bb, bg, relu)
        for k in range(W):
            d0[k] = o0[k]
            d1[k] = o1[k]
        return
    while j < OW:
        s0 = r0[2 * j]
        s1 = r0[2 * j + 1]
        s2 = r1[2 * j]
        s3 = r1[2 * j + 1]
        ms = _max2(_max2(s0, s1), _max2(s2, s3))
        gs = dyr[j]
        if relu and not ms > 0:
            gs = 0
        f0 = s0 == ms or s0 != s0
        f1 = (s1 == ms or s1 != s1) and not f0
        f2 = (s2 == ms or s2 != s2) and not (f0 or f1)
        d0[2 * j] = gs if f0 else 0
        d0[2 * j + 1] = gs if f1 else 0
        d1[2 * j] = gs if f2 else 0
        d1[2 * j + 1] = 0 if (f0 or f1 or f2) else gs
        j = j + 1


cdef inline void maxpool_forward_raw(float* py, const float* px, int N, int C, int H, int W,
                                     bint relu, int n_threads) noexcept nogil:
    # y (N, C, H/2, W/2) <- max of each 2x2 block (then max(., 0) with relu).
    cdef int OH = H // 2, OW = W // 2
    cdef int job, i
    for job in prange(N * C, num_threads=n_threads, schedule="static"):
        for i in range(OH):
            if LF_WIDE:
                lf16_maxpool_row(py + (job * OH + i) * OW, px + (job * H + 2 * i) * W,
                                 px + (job * H + 2 * i + 1) * W, OW, relu)
            else:
                _maxpool_row(py + (job * OH + i) * OW, px + (job * H + 2 * i) * W,
                             px + (job * H + 2 * i + 1) * W, OW, relu)


cdef inline void maxpool_backward_raw(float* pdx, const float* pdy, const float* px, int N,
                                      int C, int H, int W, bint relu,
                                      int n_threads) noexcept nogil:
    # dx (N, C, H, W) <- dy (N, C, H/2, W/2), routed to each block's first maximum.
    cdef int OH = H // 2, OW = W // 2
    cdef int job, i
    for job in prange(N * C, num_threads=n_threads, schedule="static"):
        for i in range(OH):
            if LF_WIDE:
                lf16_maxpool_grad_row(pdx + (job * H + 2 * i) * W,
                                      pdx + (job * H + 2 * i + 1) * W,
                                      px + (job * H + 2 * i) * W, px + (job * H + 2 * i + 1) * W,
                                      pdy + (job * OH + i) * OW, OW, relu)
            else:
                _maxpool_grad_row(pdx + (job * H + 2 * i) * W, pdx + (job * H + 2 * i + 1) * W,
                                  px + (job * H + 2 * i) * W, px + (job * H + 2 * i + 1) * W,
                                  pdy + (job * OH + i) * OW, OW, relu)
