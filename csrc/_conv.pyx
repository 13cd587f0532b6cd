"""5x5 valid convolution, stride 1, with an optional connection table (LeCun's C3).

Raw kernels: they validate nothing, allocate nothing and run without the GIL. The
checked public API is `lenet_fast.ops`; the model calls these directly on buffers it
owns. The connection table arrives as two CSR lists built by `lenet_fast.ops`:
`cptr/cidx` (for output map co, the input maps it reads) and `rptr/ridx` (for input
map ci, the output maps that read it). Unconnected pairs are skipped, not multiplied
by zero.

Thread invariance: every output element (y, dx, dw, db) is written by exactly one
thread, and its sum runs in an order fixed by the code, not by the thread count.
"""

from cython.parallel cimport prange


cdef inline void _fwd_map(float* yc, const float* x, const float* w, float bias,
                          const int* cidx, int k0, int k1, int co, int Cin,
                          int H, int W) noexcept nogil:
    # yc is (OH, OW) for one output map; x is (Cin, H, W) for one sample.
    cdef int OH = H - 4, OW = W - 4
    cdef int k, ci, oh, ow, i
    cdef const float* x0
    cdef const float* x1
    cdef const float* x2
    cdef const float* x3
    cdef const float* x4
    cdef const float* wk
    cdef float* yr
    cdef float s
    for i in range(OH * OW):
        yc[i] = bias
    for k in range(k0, k1):
        ci = cidx[k]
        wk = w + (co * Cin + ci) * 25
        for oh in range(OH):
            yr = yc + oh * OW
            x0 = x + (ci * H + oh) * W
            x1 = x0 + W
            x2 = x1 + W
            x3 = x2 + W
            x4 = x3 + W
            for ow in range(OW):
                s = (wk[0] * x0[ow] + wk[1] * x0[ow + 1] + wk[2] * x0[ow + 2]
                     + wk[3] * x0[ow + 3] + wk[4] * x0[ow + 4])
                s = s + (wk[5] * x1[ow] + wk[6] * x1[ow + 1] + wk[7] * x1[ow + 2]
                         + wk[8] * x1[ow + 3] + wk[9] * x1[ow + 4])
                s = s + (wk[10] * x2[ow] + wk[11] * x2[ow + 1] + wk[12] * x2[ow + 2]
                         + wk[13] * x2[ow + 3] + wk[14] * x2[ow + 4])
                s = s + (wk[15] * x3[ow] + wk[16] * x3[ow + 1] + wk[17] * x3[ow + 2]
                         + wk[18] * x3[ow + 3] + wk[19] * x3[ow + 4])
                s = s + (wk[20] * x4[ow] + wk[21] * x4[ow + 1] + wk[22] * x4[ow + 2]
                         + wk[23] * x4[ow + 3] + wk[24] * x4[ow + 4])
                yr[ow] = yr[ow] + s


cdef inline float _fwd_unit(const float* x, const float* w, float bias,
                            const int* cidx, int k0, int k1, int co, int Cin) noexcept nogil:
    # The 5x5-input case (C5): one output value, a dot product over connected maps.
    cdef int k, ci, t
    cdef const float* xc
    cdef const float* wc
    cdef float s = bias, part
    for k in range(k0, k1):
        ci = cidx[k]
        xc = x + ci * 25
        wc = w + (co * Cin + ci) * 25
        part = 0
        for t in range(25):
            part = part + wc[t] * xc[t]
        s = s + part
    return s


def forward(float[:, :, :, ::1] y, const float[:, :, :, ::1] x,
            const float[:, :, :, ::1] w, const float[::1] b,
            const int[::1] cptr, const int[::1] cidx, int n_threads):
    """y (N, Cout, H-4, W-4) <- conv(x (N, Cin, H, W), w (Cout, Cin, 5, 5)) + b (Cout,)."""
    cdef int N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int Cout = w.shape[0], OH = H - 4, OW = W - 4
    cdef int job, n, co
    cdef float* py = &y[0, 0, 0, 0]
    cdef const float* px = &x[0, 0, 0, 0]
    cdef const float* pw = &w[0, 0, 0, 0]
    cdef const float* pb = &b[0]
    cdef const int* pptr = &cptr[0]
    cdef const int* pidx = &cidx[0] if cidx.shape[0] > 0 else NULL
    with nogil:
        for job in prange(N * Cout, num_threads=n_threads, schedule="static"):
            n = job // Cout
            co = job - n * Cout
            if OH == 1 and OW == 1:
                py[job] = _fwd_unit(px + n * Cin * 25, pw, pb[co], pidx,
                                    pptr[co], pptr[co + 1], co, Cin)
            else:
                _fwd_map(py + job * OH * OW, px + n * Cin * H * W, pw, pb[co], pidx,
                         pptr[co], pptr[co + 1], co, Cin, H, W)


cdef inline void _bwd_dx_map(float* dxc, const float* dy, const float* w,
                             const int* ridx, int k0, int k1, int ci, int Cin,
                             int Cout, int H, int W) noexcept nogil:
    # dxc is (H, W) for input map ci of one sample; dy is (Cout, OH, OW) for that sample.
    cdef int OH = H - 4, OW = W - 4
    cdef int k, co, oh, ow, kh, kw, i
    cdef const float* wc
    cdef const float* dyr
    cdef float* dxr
    cdef float wv
    for i in range(H * W):
        dxc[i] = 0
    for k in range(k0, k1):
        co = ridx[k]
        wc = w + (co * Cin + ci) * 25
        for oh in range(OH):
            dyr = dy + (co * OH + oh) * OW
            for kh in range(5):
                dxr = dxc + (oh + kh) * W
                for kw in range(5):
                    wv = wc[kh * 5 + kw]
                    for ow in range(OW):
                        dxr[ow + kw] = dxr[ow + kw] + wv * dyr[ow]


cdef inline void _bwd_dw_map(float* dwc, float* dbc, const float* dy, const float* x,
                             const int* cidx, int k0, int k1, int co, int N, int Cin,
                             int Cout, int H, int W) noexcept nogil:
    # dwc is (Cin, 5, 5) for output map co, summed over the whole batch in sample order.
    cdef int OH = H - 4, OW = W - 4
    cdef int n, k, ci, oh, ow, kh, kw, i
    cdef const float* dyc
    cdef const float* xc
    cdef const float* xr
    cdef const float* dyr
    cdef float s, sb
    for i in range(Cin * 25):
        dwc[i] = 0
    sb = 0
    for n in range(N):
        dyc = dy + (n * Cout + co) * OH * OW
        s = 0
        for i in range(OH * OW):
            s = s + dyc[i]
        sb = sb + s
        for k in range(k0, k1):
            ci = cidx[k]
            xc = x + (n * Cin + ci) * H * W
            for kh in range(5):
                for kw in range(5):
                    s = 0
                    for oh in range(OH):
                        dyr = dyc + oh * OW
                        xr = xc + (oh + kh) * W + kw
                        for ow in range(OW):
                            s = s + dyr[ow] * xr[ow]
                    dwc[ci * 25 + kh * 5 + kw] += s
    dbc[0] = sb


def backward(float[:, :, :, ::1] dx, float[:, :, :, ::1] dw, float[::1] db,
             const float[:, :, :, ::1] dy, const float[:, :, :, ::1] x,
             const float[:, :, :, ::1] w, const int[::1] cptr, const int[::1] cidx,
             const int[::1] rptr, const int[::1] ridx, int n_threads, bint need_dx=True):
    """dx (N, Cin, H, W), dw (Cout, Cin, 5, 5), db (Cout,) <- dy (N, Cout, H-4, W-4).

    dw is zero where the table has no connection. With need_dx False, dx is not
    touched (the first layer's input gradient is never used).
    """
    cdef int N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int Cout = w.shape[0]
    cdef int job, n, ci, co
    cdef float* pdx = &dx[0, 0, 0, 0] if need_dx else NULL
    cdef float* pdw = &dw[0, 0, 0, 0]
    cdef float* pdb = &db[0]
    cdef const float* pdy = &dy[0, 0, 0, 0]
    cdef const float* px = &x[0, 0, 0, 0]
    cdef const float* pw = &w[0, 0, 0, 0]
    cdef const int* pcptr = &cptr[0]
    cdef const int* pcidx = &cidx[0] if cidx.shape[0] > 0 else NULL
    cdef const int* prptr = &rptr[0]
    cdef const int* pridx = &ridx[0] if ridx.shape[0] > 0 else NULL
    cdef int OHOW = (H - 4) * (W - 4)
    with nogil:
        for co in prange(Cout, num_threads=n_threads, schedule="static"):
            _bwd_dw_map(pdw + co * Cin * 25, pdb + co, pdy, px, pcidx,
                        pcptr[co], pcptr[co + 1], co, N, Cin, Cout, H, W)
        if need_dx:
            for job in prange(N * Cin, num_threads=n_threads, schedule="static"):
                n = job // Cin
                ci = job - n * Cin
                _bwd_dx_map(pdx + job * H * W, pdy + n * Cout * OHOW, pw, pridx,
                            prptr[ci], prptr[ci + 1], ci, Cin, Cout, H, W)
