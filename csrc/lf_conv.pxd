# The 5x5 convolution, forward and backward: which kernel of lf_kernels.h runs for which
# layer shape (see _conv.pxi for the layout of the work). The same choice on every path;
# the kernels are written once over the path's vector width. Inline definitions in a
# .pxd are compiled into each module that cimports them (_kernels_<path>).
#
#   layer, direction        kernel (lf_kernels.h)                   condition
#   C1 y (1 -> 6, 32x32)    lf_g6_corr: 6 maps per input vector      Cout == 6, finite or dense
#   C3 y (6 -> 16, 14x14)   lf_cl16_forward: 16 maps in the lanes    lf_cl16_fits, finite or dense
#   C5 y (16 -> 120, 5x5)   dense_forward (lf_dot_job)               1x1 output, dense
#   C1 dw                   lf_g6_dw_job                             Cin == 1, Cout == 6, dense
#   C3 dw                   lf_cl16_dw_job: 16 maps in the lanes     Cout == 16, with scratch
#   C5 dw, dx               dense_backward (lf_outer_job)            1x1 output, dense
#   C3 dx                   lf_g6_corr over the padded dy            Cin == 6, finite or dense
#   any other y / dx        lf_corr_pair (2 maps, positions in lanes)
#   any other dw            lf_dw_pair (one pair, positions in lanes)
#   maps narrower than a vector: the scalar _fwd_map, _fwd_unit, _bwd_dw_scalar
#
# "finite or dense": the kernels that multiply unconnected pairs by exact zeros serve a
# sparse table only when the input is finite (else they would turn inf * 0 into NaN
# where skipping gives the right answer); lf_all_finite decides.

from cython.parallel cimport prange
from lf_simd cimport LF_W, lf_v, lf_zero, lf_load, lf_hsum, lf_add
from lf_dense cimport dense_forward, dense_backward

cdef extern from "lf_kernels.h" nogil:
    void lf_corr_pair(float* oa, float* ob, int OH, int OW, int opitch, const float* inp,
                      int ipitch, int istride, const int* chans, const int* flags,
                      int nchan, const float* wa, const float* wb, int wstride, int flip,
                      float ba, float bb, int rlo, int rhi)
    void lf_dw_pair(float* out, const float* dy, int dy_ns, int dy_rs, const float* x,
                    int x_ns, int x_rs, int N, int nseg, int L, int W)
    int lf_cl16_fits(int Cin, int H, int W, int Cout)
    void lf_cl16_pack(float* wp, const float* w, int Cin, const unsigned char* conn)
    void lf_cl16_forward_one(float* y, const float* x, const float* wp, const float* bias,
                             int Cin, int H, int W)
    bint lf_all_finite(const float* p, long n)
    void lf_g6_pack(float* wpk, const float* w, int nin, int wsm, int wsj, int flip,
                    const unsigned char* conn, int csm, int csj)
    void lf_g6_corr(float* out, int ostride, int OH, int OW, int opitch, const float* inp,
                    int ipitch, int istride, int nin, const float* wpk, const float* bias,
                    int rlo, int rhi)
    int lf_cl16_dw_jobs(int Cin)
    void lf_cl16_dw_job(float* dwp, const float* xh, const float* dyh, int N, int H, int W,
                        int Cin, int job)
    void lf_to_channels_last(float* dst, const float* src, int C, int HW)
    int lf_g6_dw_jobs()
    void lf_g6_dw_job(float* dw, float* db, const float* dy, const float* x, int N, int H, int W,
                      int job)


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



cdef inline void _bwd_dw_scalar(float* dwc, const float* dy, const float* x, int n_dy,
                                int n_x, int N, int H, int W) noexcept nogil:
    # dwc (5, 5) for one connected pair += its sum over N samples, in sample order.
    cdef int OH = H - 4, OW = W - 4
    cdef int n, oh, ow, kh, kw
    cdef const float* xr
    cdef const float* dyr
    cdef float s
    for n in range(N):
        for kh in range(5):
            for kw in range(5):
                s = 0
                for oh in range(OH):
                    dyr = dy + n * n_dy + oh * OW
                    xr = x + n * n_x + (oh + kh) * W + kw
                    for ow in range(OW):
                        s = s + dyr[ow] * xr[ow]
                dwc[kh * 5 + kw] += s


cdef inline float _sum_maps(const float* p, int stride, int N, int L) noexcept nogil:
    # Sum of N maps of L floats, map n at p + n * stride: LF_W lanes summed in map order,
    # then added up (lf_hsum); each map's tail past a multiple of LF_W added last, in order.
    cdef lf_v acc = lf_zero()
    cdef int n, i
    cdef float tail = 0
    for n in range(N):
        i = 0
        while i + LF_W <= L:
            acc = lf_add(acc, lf_load(p + n * stride + i))
            i = i + LF_W
        while i < L:
            tail = tail + p[n * stride + i]
            i = i + 1
    return lf_hsum(acc) + tail


cdef inline int padded_map(int H, int W) noexcept nogil:
    # dy (H-4, W-4) sits at rows 4.., columns 4..W-1 of an (H + 4) x W map, zeros elsewhere;
    # the 8 floats after it are zero too (the last row's reads wrap past its end).
    return (H + 4) * W + 8


cdef inline void conv_forward_raw(float* py, const float* px, const float* pw, const float* pb,
                                  int N, int Cin, int H, int W, int Cout, const int* pptr,
                                  const int* pidx, const int* qptr, const int* qidx,
                                  const int* qflag, int n_threads) noexcept nogil:
    # y (N, Cout, H-4, W-4) <- conv(x (N, Cin, H, W), w (Cout, Cin, 5, 5)) + b (Cout,).
    cdef int OH = H - 4, OW = W - 4
    cdef int npair = (Cout + 1) // 2
    cdef int job, n, co, pr
    cdef bint dense = pptr[Cout] == Cin * Cout
    cdef float wp[4096]
    cdef unsigned char conn[256]
    cdef int k
    if Cin * Cout <= 256:
        # conn[ci * Cout + co]: whether input map ci feeds output map co
        for k in range(Cin * Cout):
            conn[k] = dense
        for co in range(Cout):
            for k in range(pptr[co], pptr[co + 1]):
                conn[pidx[k] * Cout + co] = 1
    if OH == 1 and OW == 1 and dense:
        dense_forward(py, px, pw, pb, N, Cin * 25, Cout, n_threads)
    elif (lf_cl16_fits(Cin, H, W, Cout) and Cin * Cout <= 256 and not (OH == 1 and OW == 1)
          and (dense or lf_all_finite(px, <long>N * Cin * H * W))):
        # 16 output maps (C3): channels in the lanes, unconnected pairs as exact zeros
        # (equal to skipping them for finite inputs: checked when the table is sparse)
        lf_cl16_pack(wp, pw, Cin, conn)
        for n in prange(N, num_threads=n_threads, schedule="static"):
            lf_cl16_forward_one(py + n * 16 * OH * OW, px + n * Cin * H * W, wp, pb, Cin, H, W)
    elif (Cout == 6 and Cin <= 16 and (OH - 1) * W + OW >= LF_W
          and (dense or lf_all_finite(px, <long>N * Cin * H * W))):
        # six output maps (C1): all six per loaded input vector
        lf_g6_pack(wp, pw, Cin, Cin * 25, 25, False, conn, 1, Cout)
        for n in prange(N, num_threads=n_threads, schedule="static"):
            lf_g6_corr(py + n * 6 * OH * OW, OH * OW, OH, OW, OW, px + n * Cin * H * W, W,
                       H * W, Cin, wp, pb, 0, H)
    elif (OH - 1) * W + OW >= LF_W:
        for job in prange(N * npair, num_threads=n_threads, schedule="static"):
            n = job // npair
            pr = job - n * npair
            co = 2 * pr
            lf_corr_pair(py + (n * Cout + co) * OH * OW,
                  py + (n * Cout + co + 1) * OH * OW if co + 1 < Cout else NULL,
                  OH, OW, OW, px + n * Cin * H * W, W, H * W,
                  qidx + qptr[pr], qflag + qptr[pr], qptr[pr + 1] - qptr[pr],
                  pw + co * Cin * 25, pw + (co + 1 if co + 1 < Cout else co) * Cin * 25,
                  25, False, pb[co], pb[co + 1] if co + 1 < Cout else 0, 0, H)
    else:
        for job in prange(N * Cout, num_threads=n_threads, schedule="static"):
            n = job // Cout
            co = job - n * Cout
            if OH == 1 and OW == 1:
                py[job] = _fwd_unit(px + n * Cin * 25, pw, pb[co], pidx,
                                    pptr[co], pptr[co + 1], co, Cin)
            else:
                _fwd_map(py + job * OH * OW, px + n * Cin * H * W, pw, pb[co], pidx,
                         pptr[co], pptr[co + 1], co, Cin, H, W)


cdef inline void conv_backward_raw(float* pdx, float* pdw, float* pdb, const float* pdy,
                                   const float* px, const float* pw, int N, int Cin, int H,
                                   int W, int Cout, int nnz, const int* pcidx, const int* ppco,
                                   const int* qptr, const int* qidx, const int* qflag,
                                   float* psc, int n_threads,
                                   bint accumulate=False) noexcept nogil:
    # dx (N, Cin, H, W) (skipped when NULL), dw (Cout, Cin, 5, 5), db (Cout,) <- dy.
    # With accumulate, dw and db are added to (batch chunks, in chunk order).
    cdef int OH = H - 4, OW = W - 4
    cdef int OHOW = OH * OW, HW = H * W, PP = padded_map(H, W)
    cdef bint dense = nnz == Cin * Cout
    cdef int npair = (Cin + 1) // 2
    cdef int job, n, ci, co, k, i, r, n0, nb, Q
    cdef float* pad
    cdef float wpk[4096]
    cdef float dwp[4096]
    cdef unsigned char conn[256]
    # dw with 16 output maps in the lanes (C3), from channels-last copies of x and dy
    # in the scratch (before it holds the padded dy); dx six maps at a time (C3).
    cdef bint wide_dw = (Cout == 16 and Cin * 25 * 16 <= 4096 and psc != NULL
                         and Cin * HW + 16 * OHOW <= Cout * PP)
    cdef bint wide_dx = (pdx != NULL and Cin == 6 and Cout <= 27
                         and (dense or lf_all_finite(pdy, <long>N * Cout * OHOW)))
    if (wide_dw or wide_dx) and Cin * Cout <= 256:
        for k in range(Cin * Cout):
            conn[k] = dense
        for k in range(nnz):
            conn[pcidx[k] * Cout + ppco[k]] = 1
    else:
        wide_dw = wide_dx = False
    if OHOW == 1 and dense:
        dense_backward(pdx, pdw, pdb, pdy, px, pw, N, Cin * 25, Cout, n_threads, accumulate)
        return
    # one input map, six output maps (C1): its dw kernel sums db too
    cdef bint c1_dw = Cin == 1 and Cout == 6 and dense and OW >= LF_W and not wide_dw
    for co in prange(Cout, num_threads=n_threads, schedule="static"):
        if not accumulate:
            for i in range(Cin * 25):
                pdw[co * Cin * 25 + i] = 0
        if c1_dw:
            pdb[co] = pdb[co] if accumulate else 0
        else:
            pdb[co] = (pdb[co] if accumulate else 0) + _sum_maps(pdy + co * OHOW,
                                                                Cout * OHOW, N, OHOW)
    if wide_dw:
        for n in prange(N, num_threads=n_threads, schedule="static"):
            lf_to_channels_last(psc + <Py_ssize_t>n * Cin * HW, px + <Py_ssize_t>n * Cin * HW,
                                Cin, HW)
            lf_to_channels_last(psc + <Py_ssize_t>N * Cin * HW + <Py_ssize_t>n * 16 * OHOW,
                                pdy + <Py_ssize_t>n * 16 * OHOW, 16, OHOW)
        for i in range(25 * Cin * 16):
            dwp[i] = 0
        for job in prange(lf_cl16_dw_jobs(Cin), num_threads=n_threads, schedule="dynamic"):
            lf_cl16_dw_job(dwp, psc, psc + <Py_ssize_t>N * Cin * HW, N, H, W, Cin, job)
        for co in range(Cout):
            for ci in range(Cin):
                for k in range(25):
                    i = (co * Cin + ci) * 25 + k
                    if not conn[ci * Cout + co]:
                        pdw[i] = 0
                    elif accumulate:
                        pdw[i] = pdw[i] + dwp[(k * Cin + ci) * 16 + co]
                    else:
                        pdw[i] = dwp[(k * Cin + ci) * 16 + co]
    if pdx != NULL:
        # dy zero-padded for dx (and dw's wide rows): only the border is zeroed.
        for job in prange(N * Cout, num_threads=n_threads, schedule="static"):
            pad = psc + job * PP
            for i in range(4 * W + 4):
                pad[i] = 0
            for r in range(OH):
                for i in range(OW):
                    pad[(r + 4) * W + 4 + i] = pdy[job * OHOW + r * OW + i]
                for i in range(4):
                    pad[(r + 4) * W + 4 + OW + i] = 0
            for i in range(H * W + 4, PP):
                pad[i] = 0
    # dw: the batch in blocks of 32 samples (their x and dy stay in cache while every
    # pair reads them), each block's sums added in block order. The block size is fixed:
    # the result must not depend on the thread count, so neither may the blocking.
    # With the padded dy at hand, each sample's dy is one wide row of Q positions
    # (pitch W, zeros between the rows); else vectors run along dy's rows.
    Q = (OH - 1) * W + OW
    n0 = N if wide_dw else 0
    if c1_dw:
        # a kernel row of a few maps per job
        for k in prange(lf_g6_dw_jobs(), num_threads=n_threads, schedule="static"):
            lf_g6_dw_job(pdw, pdb, pdy, px, N, H, W, k)
        n0 = N
    while n0 < N:
        nb = min(32, N - n0)
        for k in prange(nnz, num_threads=n_threads, schedule="dynamic"):
            co = ppco[k]
            ci = pcidx[k]
            if pdx != NULL and Q >= LF_W:
                lf_dw_pair(pdw + (co * Cin + ci) * 25, psc + (n0 * Cout + co) * PP + 4 * W + 4,
                         Cout * PP, 0, px + (n0 * Cin + ci) * HW, Cin * HW, 0, nb, 1, Q, W)
            elif OW >= LF_W:
                lf_dw_pair(pdw + (co * Cin + ci) * 25, pdy + (n0 * Cout + co) * OHOW,
                         Cout * OHOW, OW, px + (n0 * Cin + ci) * HW, Cin * HW, W, nb, OH,
                         OW, W)
            else:
                _bwd_dw_scalar(pdw + (co * Cin + ci) * 25, pdy + (n0 * Cout + co) * OHOW,
                               px + (n0 * Cin + ci) * HW, Cout * OHOW, Cin * HW, nb, H, W)
        n0 = n0 + nb
    if pdx == NULL:
        return
    if wide_dx:
        lf_g6_pack(wpk, pw, Cout, 25, Cin * 25, True, conn, Cout, 1)
        for n in prange(N, num_threads=n_threads, schedule="static"):
            lf_g6_corr(pdx + n * Cin * HW, HW, H, W, W, psc + n * Cout * PP, W, PP, Cout, wpk,
                       NULL, 4, H)
        return
    for job in prange(N * npair, num_threads=n_threads, schedule="static"):
        n = job // npair
        ci = 2 * (job - n * npair)
        lf_corr_pair(pdx + (n * Cin + ci) * HW,
              pdx + (n * Cin + ci + 1) * HW if ci + 1 < Cin else NULL,
              H, W, W, psc + n * Cout * PP, W, PP,
              qidx + qptr[ci // 2], qflag + qptr[ci // 2],
              qptr[ci // 2 + 1] - qptr[ci // 2], pw + ci * 25,
              pw + (ci + 1 if ci + 1 < Cin else ci) * 25, Cin * 25, True, 0, 0, 4, H)
