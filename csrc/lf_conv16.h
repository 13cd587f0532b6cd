/* The 5x5 convolution kernels on sixteen-float vectors (lf_v16: one zmm), called from
   lf_conv.pxd on the avx512 path (LF_WIDE); only lfd_dw_pair runs on every path.

   lf16_corr_pair   y or dx: two output maps over "wide" positions q = oh * pitch + ow
                    (lanes = 16 consecutive positions), LF_NV16 vectors per map held in
                    registers over every tap of every connected input map.
   lfd_dw_pair      dw of one connected pair: each loaded dy vector feeds 12-13
                    accumulators (lanes = positions; LF_VD lanes: 16 on avx512, where 32
                    registers hold 13 accumulators, 8 elsewhere).
   lf_cl16_forward  y for exactly 16 output maps (C3): channels in the lanes. The input is
                    moved to channels-last order, the weights packed as (kh, kw, ci) x 16;
                    for R output positions of a row, R accumulators of all 16 maps take,
                    per tap and input map, one weight vector and R broadcast inputs (no
                    im2col copy, no dropped positions). An unconnected (ci, co) pair has an
                    exact zero weight.

   Each output element is summed by one thread in an order fixed by the code (never by
   the thread count). Per-position arithmetic does not depend on the vector width in
   lf16_corr_pair and lf_cl16_forward; lfd_dw_pair's lane sums do. */
#ifndef LF_CONV16_H
#define LF_CONV16_H
#include "lf_simd.h"

#if defined(__AVX512F__)
#define LF_WIDE 1
#else
#define LF_WIDE 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LF_INLINE static inline __attribute__((always_inline))
#else
#define LF_INLINE static inline
#endif

static inline int lf_imin(int a, int b) { return a < b ? a : b; }
static inline int lf_imax(int a, int b) { return a > b ? a : b; }

/* ------------------------------------------------------------------ wide positions */
#if LF_WIDE
#include <immintrin.h>
static inline void lf16_store_wide(float *out, int opitch, int ipitch, int OW, int s,
                                   lf_v16 a, float bias) {
    /* Lanes of wide position s.. go to out[oh, ow] when ow < OW: one masked store per
       row the 16 positions touch (a plain store when the rows are contiguous). */
    lf_v16 v = a + bias;
    __m512 m;
    int l = 0, oh = s / ipitch, ow = s - (s / ipitch) * ipitch, n, valid;
    if (OW == ipitch && opitch == ipitch) {
        lf16_store(out + s, v);
        return;
    }
    memcpy(&m, &v, sizeof m);
    while (l < 16) {
        n = lf_imin(ipitch - ow, 16 - l);
        valid = lf_imax(0, lf_imin(OW - ow, n));
        if (valid > 0)
            _mm512_mask_storeu_ps(out + oh * opitch + ow - l,
                                  (__mmask16)(((1u << valid) - 1u) << l), m);
        l += n;
        oh++;
        ow = 0;
    }
}
#else
static inline void lf16_store_wide(float *out, int opitch, int ipitch, int OW, int s,
                                   lf_v16 a, float bias) {
    /* Lanes of wide position s.. go to out[oh, ow] when ow < OW. */
    float t[16];
    int l, oh = s / ipitch, ow = s - (s / ipitch) * ipitch;
    lf16_store(t, a);
    for (l = 0; l < 16; l++) {
        if (ow < OW) out[oh * opitch + ow] = t[l] + bias;
        if (++ow == ipitch) { ow = 0; oh++; }
    }
}
#endif

static inline void lf_load_taps(float *wl, const float *wk, int flip) {
    int t;
    if (flip) for (t = 0; t < 25; t++) wl[t] = wk[24 - t];
    else for (t = 0; t < 25; t++) wl[t] = wk[t];
}

/* Two output maps (a, b; b may be NULL) x NV vectors of wide positions from q0, each
   clamped to end by Q. Input maps read by both (flag 0) load every x vector once for
   both outputs; maps read by one (flag 1: a, 2: b) feed only that one. Only input rows
   rlo..rhi-1 may be nonzero: kernel rows that read none of them are skipped. */
LF_INLINE void lf16_pair(float *oa, float *ob, int opitch, int OW, const float *inp,
                         int ipitch, int istride, const int *chans, const int *flags,
                         int nchan, const float *wa, const float *wb, int wstride, int flip,
                         float ba, float bb, int q0, int Q, int rlo, int rhi, const int NV) {
    int s[LF_NV16];
    lf_v16 a[LF_NV16], b[LF_NV16], x[LF_NV16], w;
    float wla[25], wlb[25];
    int v, j, f, kh, kw, t, kh0, kh1;
    const float *xc, *xp;
    for (v = 0; v < NV; v++) {
        s[v] = lf_imin(q0 + 16 * v, Q - 16);
        a[v] = lf16_zero();
        b[v] = lf16_zero();
    }
    kh0 = lf_imax(0, rlo - (s[NV - 1] + 15) / ipitch);
    kh1 = lf_imin(5, rhi - s[0] / ipitch);
    for (j = 0; j < nchan; j++) {
        f = flags[j];
        xc = inp + chans[j] * istride;
        if (f != 2) lf_load_taps(wla, wa + chans[j] * wstride, flip);
        if (f != 1) lf_load_taps(wlb, wb + chans[j] * wstride, flip);
        for (kh = kh0; kh < kh1; kh++) {
            for (kw = 0; kw < 5; kw++) {
                t = kh * 5 + kw;
                xp = xc + kh * ipitch + kw;
                for (v = 0; v < NV; v++) x[v] = lf16_load(xp + s[v]);
                if (f != 2) {
                    w = lf16_bcast(wla[t]);
                    for (v = 0; v < NV; v++) a[v] = lf16_fma(w, x[v], a[v]);
                }
                if (f != 1) {
                    w = lf16_bcast(wlb[t]);
                    for (v = 0; v < NV; v++) b[v] = lf16_fma(w, x[v], b[v]);
                }
            }
        }
    }
    for (v = 0; v < NV; v++) lf16_store_wide(oa, opitch, ipitch, OW, s[v], a[v], ba);
    if (ob)
        for (v = 0; v < NV; v++) lf16_store_wide(ob, opitch, ipitch, OW, s[v], b[v], bb);
}

static void lf16_pair_nv(float *oa, float *ob, int opitch, int OW, const float *inp,
                         int ipitch, int istride, const int *chans, const int *flags,
                         int nchan, const float *wa, const float *wb, int wstride, int flip,
                         float ba, float bb, int q0, int Q, int rlo, int rhi) {
    lf16_pair(oa, ob, opitch, OW, inp, ipitch, istride, chans, flags, nchan, wa, wb, wstride,
              flip, ba, bb, q0, Q, rlo, rhi, LF_NV16);
}

static void lf16_pair_1(float *oa, float *ob, int opitch, int OW, const float *inp,
                        int ipitch, int istride, const int *chans, const int *flags,
                        int nchan, const float *wa, const float *wb, int wstride, int flip,
                        float ba, float bb, int q0, int Q, int rlo, int rhi) {
    lf16_pair(oa, ob, opitch, OW, inp, ipitch, istride, chans, flags, nchan, wa, wb, wstride,
              flip, ba, bb, q0, Q, rlo, rhi, 1);
}

/* oa[oh, ow] = ba + sum over the maps flagged for a of sum_taps w[tap] * inp[map][oh + kh,
   ow + kw] (taps rotated by 180 degrees when flip), likewise ob; needs
   Q = (OH - 1) * ipitch + OW >= 16. Input rows outside rlo..rhi-1 must be zero (a row's
   reads past its end wrap into the next row: they must be zero too when rlo > 0). */
static void lf16_corr_pair(float *oa, float *ob, int OH, int OW, int opitch, const float *inp,
                           int ipitch, int istride, const int *chans, const int *flags,
                           int nchan, const float *wa, const float *wb, int wstride, int flip,
                           float ba, float bb, int rlo, int rhi) {
    int Q = (OH - 1) * ipitch + OW, nvec = (Q + 15) / 16, q0 = 0, i, j;
    if (nchan == 0) {
        for (i = 0; i < OH; i++)
            for (j = 0; j < OW; j++) {
                oa[i * opitch + j] = ba;
                if (ob) ob[i * opitch + j] = bb;
            }
        return;
    }
    while (nvec >= LF_NV16) {
        lf16_pair_nv(oa, ob, opitch, OW, inp, ipitch, istride, chans, flags, nchan, wa, wb,
                     wstride, flip, ba, bb, q0, Q, rlo, rhi);
        q0 += 16 * LF_NV16;
        nvec -= LF_NV16;
    }
    /* The rest: one more block whose vectors past Q are clamped back onto it (the same
       positions computed twice, identically), or a single vector. */
    if (nvec >= 2)
        lf16_pair_nv(oa, ob, opitch, OW, inp, ipitch, istride, chans, flags, nchan, wa, wb,
                     wstride, flip, ba, bb, q0, Q, rlo, rhi);
    else if (nvec == 1)
        lf16_pair_1(oa, ob, opitch, OW, inp, ipitch, istride, chans, flags, nchan, wa, wb,
                    wstride, flip, ba, bb, q0, Q, rlo, rhi);
}

/* ------------------------------------------------------------------ weight gradients */
#if defined(__AVX512F__)
typedef lf_v16 lf_vd;
#define LF_VD 16
#define lfd_zero lf16_zero
#define lfd_load lf16_load
#define lfd_fma lf16_fma
#define lfd_keep_from lf16_keep_from
#define lfd_hsum lf16_hsum
#else
typedef lf_v8 lf_vd;
#define LF_VD 8
#define lfd_zero lf_zero
#define lfd_load lf_load
#define lfd_fma lf_fma
#define lfd_keep_from lf_keep_from
#define lfd_hsum lf_hsum
#endif

/* Kernel taps of one connected pair from three rows of x: oa[kw] += sum_n sum_{r < nseg}
   sum_{s < L} dy[n, r][s] * x[n, r][offa + s + kw] for kw < 5, likewise ob (offb), and oc
   (offc) for kw < nc (2 or 3). Segment r of sample n starts at dy + n * dy_ns + r * dy_rs
   and x + n * x_ns + r * x_rs; L >= LF_VD. A segment's last vector is shifted back to end
   at L, its already-counted lanes masked off. */
static void lfd_dw_3rows(float *oa, float *ob, float *oc, int nc, int offa, int offb,
                         int offc, const float *dy, int dy_ns, int dy_rs, const float *x,
                         int x_ns, int x_rs, int N, int nseg, int L) {
    lf_vd g;
    lf_vd a0 = lfd_zero(), a1 = lfd_zero(), a2 = lfd_zero(), a3 = lfd_zero(), a4 = lfd_zero();
    lf_vd b0 = lfd_zero(), b1 = lfd_zero(), b2 = lfd_zero(), b3 = lfd_zero(), b4 = lfd_zero();
    lf_vd c0 = lfd_zero(), c1 = lfd_zero(), c2 = lfd_zero();
    int n, r, s, last = L - LF_VD, rem = L % LF_VD;
    const float *d, *pa, *pb, *pc;
    for (n = 0; n < N; n++) {
        for (r = 0; r < nseg; r++) {
            d = dy + n * dy_ns + r * dy_rs;
            pa = x + n * x_ns + r * x_rs + offa;
            pb = x + n * x_ns + r * x_rs + offb;
            pc = x + n * x_ns + r * x_rs + offc;
            s = 0;
            while (s + LF_VD <= L || (rem && s < L)) {
                if (s + LF_VD <= L) {
                    g = lfd_load(d + s);
                } else {
                    s = last;
                    g = lfd_keep_from(lfd_load(d + s), LF_VD - rem);
                }
                a0 = lfd_fma(g, lfd_load(pa + s), a0);
                a1 = lfd_fma(g, lfd_load(pa + s + 1), a1);
                a2 = lfd_fma(g, lfd_load(pa + s + 2), a2);
                a3 = lfd_fma(g, lfd_load(pa + s + 3), a3);
                a4 = lfd_fma(g, lfd_load(pa + s + 4), a4);
                b0 = lfd_fma(g, lfd_load(pb + s), b0);
                b1 = lfd_fma(g, lfd_load(pb + s + 1), b1);
                b2 = lfd_fma(g, lfd_load(pb + s + 2), b2);
                b3 = lfd_fma(g, lfd_load(pb + s + 3), b3);
                b4 = lfd_fma(g, lfd_load(pb + s + 4), b4);
                c0 = lfd_fma(g, lfd_load(pc + s), c0);
                c1 = lfd_fma(g, lfd_load(pc + s + 1), c1);
                if (nc == 3) c2 = lfd_fma(g, lfd_load(pc + s + 2), c2);
                s += LF_VD;
            }
        }
    }
    oa[0] += lfd_hsum(a0); oa[1] += lfd_hsum(a1); oa[2] += lfd_hsum(a2);
    oa[3] += lfd_hsum(a3); oa[4] += lfd_hsum(a4);
    ob[0] += lfd_hsum(b0); ob[1] += lfd_hsum(b1); ob[2] += lfd_hsum(b2);
    ob[3] += lfd_hsum(b3); ob[4] += lfd_hsum(b4);
    oc[0] += lfd_hsum(c0); oc[1] += lfd_hsum(c1);
    if (nc == 3) oc[2] += lfd_hsum(c2);
}

/* All 25 taps (out, 5x5) of one pair: kernel rows 0, 1 and taps 10-12 of row 2, then
   rows 3, 4 and taps 13, 14. */
static void lfd_dw_pair(float *out, const float *dy, int dy_ns, int dy_rs, const float *x,
                        int x_ns, int x_rs, int N, int nseg, int L, int W) {
    lfd_dw_3rows(out, out + 5, out + 10, 3, 0, W, 2 * W, dy, dy_ns, dy_rs, x, x_ns, x_rs, N,
                 nseg, L);
    lfd_dw_3rows(out + 15, out + 20, out + 13, 2, 3 * W, 4 * W, 2 * W + 3, dy, dy_ns, dy_rs,
                 x, x_ns, x_rs, N, nseg, L);
}

/* ------------------------------------------------------------------ 16 maps in lanes */
#define LF_CL_R 10      /* positions per register tile: 10 + 1 of 32 registers */
/* Floats of the stack buffers lf_cl16_forward needs: packed weights and one sample's
   channels-last input. Larger layers use lf16_corr_pair. */
#define LF_CL_MAX_W 4096
#define LF_CL_MAX_X 4096

static inline int lf_cl16_fits(int Cin, int H, int W, int Cout) {
    return Cout == 16 && Cin * 25 * 16 <= LF_CL_MAX_W && Cin * H * W <= LF_CL_MAX_X && W >= 5
           && H >= 5;
}

/* wp[((kh * 5 + kw) * Cin + ci) * 16 + co] = w[co, ci, kh, kw] where (ci, co) is connected
   (conn[ci * 16 + co] != 0, or every pair when conn is NULL), else 0. */
static void lf_cl16_pack(float *wp, const float *w, int Cin, const unsigned char *conn) {
    int co, ci, t;
    for (t = 0; t < 25; t++)
        for (ci = 0; ci < Cin; ci++)
            for (co = 0; co < 16; co++)
                wp[(t * Cin + ci) * 16 + co] =
                    (conn == NULL || conn[ci * 16 + co]) ? w[(co * Cin + ci) * 25 + t] : 0.0f;
}

/* R consecutive output positions (oh, ow0..ow0+R-1) of all 16 maps: acc[p] = bias +
   sum over kh, then (kw, ci) of wp * x. xh is the sample channels-last (H, W, Cin).
   CIN: Cin as a compile-time constant (0: read Cin), so that the broadcast inputs of the
   R positions sit at constant offsets from one pointer. */
LF_INLINE void lf_cl16_tile(float *y, int OH, int OW, int oh, int ow0, const float *xh,
                            int W, int Cin, const float *wp, lf_v16 bias, const int R,
                            const int CIN) {
    const int C = CIN ? CIN : Cin;
    lf_v16 acc[LF_CL_R];
    float t[LF_CL_R * 16];
    int p, kh, j, co;
    for (p = 0; p < R; p++) acc[p] = bias;
    for (kh = 0; kh < 5; kh++) {
        const float *xj = xh + ((oh + kh) * W + ow0) * C;
        const float *wj = wp + kh * 5 * C * 16;
        for (j = 0; j < 5 * C; j++, xj++, wj += 16) {
            lf_v16 wv = lf16_load(wj);
            for (p = 0; p < R; p++) acc[p] = lf16_fma(lf16_bcast(xj[p * C]), wv, acc[p]);
        }
    }
    for (p = 0; p < R; p++) lf16_store(t + p * 16, acc[p]);
    for (co = 0; co < 16; co++) {
        float *yr = y + (co * OH + oh) * OW + ow0;
        for (p = 0; p < R; p++) yr[p] = t[p * 16 + co];
    }
}

#define LF_CL_TILE(name, R, CIN)                                                           \
    static void name(float *y, int OH, int OW, int oh, int ow0, const float *xh, int W,   \
                     int Cin, const float *wp, lf_v16 bias) {                              \
        lf_cl16_tile(y, OH, OW, oh, ow0, xh, W, Cin, wp, bias, R, CIN);                    \
    }
LF_CL_TILE(lf_cl16_tile_r, LF_CL_R, 0)
LF_CL_TILE(lf_cl16_tile_1, 1, 0)
LF_CL_TILE(lf_cl16_tile_r6, LF_CL_R, 6)      /* C3: 6 input maps */
LF_CL_TILE(lf_cl16_tile_16, 1, 6)

/* One sample: y (16, H-4, W-4) <- x (Cin, H, W) with packed weights wp and bias (16,). */
static void lf_cl16_forward_one(float *y, const float *x, const float *wp, const float *bias,
                                int Cin, int H, int W) {
    float xh[LF_CL_MAX_X];
    int OH = H - 4, OW = W - 4, oh, ow, c, i;
    lf_v16 bv = lf16_load(bias);
    for (c = 0; c < Cin; c++)
        for (i = 0; i < H * W; i++) xh[i * Cin + c] = x[c * H * W + i];
    for (oh = 0; oh < OH; oh++) {
        ow = 0;
        if (Cin == 6) {
            for (; ow + LF_CL_R <= OW; ow += LF_CL_R)
                lf_cl16_tile_r6(y, OH, OW, oh, ow, xh, W, Cin, wp, bv);
            for (; ow < OW; ow++) lf_cl16_tile_16(y, OH, OW, oh, ow, xh, W, Cin, wp, bv);
        } else {
            for (; ow + LF_CL_R <= OW; ow += LF_CL_R)
                lf_cl16_tile_r(y, OH, OW, oh, ow, xh, W, Cin, wp, bv);
            for (; ow < OW; ow++) lf_cl16_tile_1(y, OH, OW, oh, ow, xh, W, Cin, wp, bv);
        }
    }
}

/* ------------------------------------------------------------------ six maps at once */
/* Finite check (x - x == 0 fails for NaN and infinities): the dense-with-zeros kernels
   below multiply unconnected pairs by an exact zero, which equals skipping them only
   for finite inputs; a caller sees a non-finite input and uses the skipping kernels. */
static inline int lf_all_finite(const float *p, long n) {
    long i;
    float acc = 0.0f;
    for (i = 0; i < n; i++) acc += p[i] - p[i];
    return acc == 0.0f;
}

/* wpk[(j * 25 + t) * 6 + m] = w[m * wsm + j * wsj + tap] (tap = t, or 24 - t with flip)
   where output m and input j are connected (conn[m * csm + j * csj], or all when conn is
   NULL), else 0: the weights of six output maps for every input map, tap by tap. */
static void lf_g6_pack(float *wpk, const float *w, int nin, int wsm, int wsj, int flip,
                       const unsigned char *conn, int csm, int csj) {
    int j, t, m;
    for (j = 0; j < nin; j++)
        for (t = 0; t < 25; t++)
            for (m = 0; m < 6; m++)
                wpk[(j * 25 + t) * 6 + m] = (conn == NULL || conn[m * csm + j * csj])
                    ? w[m * wsm + j * wsj + (flip ? 24 - t : t)] : 0.0f;
}

/* Six output maps (map m at out + m * ostride) x NV vectors of wide positions from q0
   (clamped to end by Q), summed over every input map (map j at inp + j * istride) and
   tap: per tap, NV input vectors feed 6 x NV accumulators (24 of 32 registers). Input
   rows outside rlo..rhi-1 must be zero (their kernel rows are skipped). */
LF_INLINE void lf_g6_block(float *out, int ostride, int opitch, int OW, const float *inp,
                           int ipitch, int istride, int nin, const float *wpk,
                           const float *bias, int q0, int Q, int rlo, int rhi, const int NV) {
    int s[LF_NV16];
    lf_v16 acc[6][LF_NV16], x[LF_NV16], w;
    int v, m, j, kh, kw, kh0, kh1;
    for (v = 0; v < NV; v++) {
        s[v] = lf_imin(q0 + 16 * v, Q - 16);
        for (m = 0; m < 6; m++) acc[m][v] = lf16_zero();
    }
    kh0 = lf_imax(0, rlo - (s[NV - 1] + 15) / ipitch);
    kh1 = lf_imin(5, rhi - s[0] / ipitch);
    for (j = 0; j < nin; j++) {
        const float *xc = inp + j * istride;
        for (kh = kh0; kh < kh1; kh++) {
            const float *wt = wpk + (j * 25 + kh * 5) * 6;
            const float *xp = xc + kh * ipitch;
            for (kw = 0; kw < 5; kw++, wt += 6, xp++) {
                for (v = 0; v < NV; v++) x[v] = lf16_load(xp + s[v]);
                for (m = 0; m < 6; m++) {
                    w = lf16_bcast(wt[m]);
                    for (v = 0; v < NV; v++) acc[m][v] = lf16_fma(w, x[v], acc[m][v]);
                }
            }
        }
    }
    for (m = 0; m < 6; m++)
        for (v = 0; v < NV; v++)
            lf16_store_wide(out + m * ostride, opitch, ipitch, OW, s[v], acc[m][v],
                            bias ? bias[m] : 0.0f);
}

static void lf_g6_block_nv(float *out, int ostride, int opitch, int OW, const float *inp,
                           int ipitch, int istride, int nin, const float *wpk,
                           const float *bias, int q0, int Q, int rlo, int rhi) {
    lf_g6_block(out, ostride, opitch, OW, inp, ipitch, istride, nin, wpk, bias, q0, Q, rlo,
                rhi, LF_NV16);
}

static void lf_g6_block_1(float *out, int ostride, int opitch, int OW, const float *inp,
                          int ipitch, int istride, int nin, const float *wpk,
                          const float *bias, int q0, int Q, int rlo, int rhi) {
    lf_g6_block(out, ostride, opitch, OW, inp, ipitch, istride, nin, wpk, bias, q0, Q, rlo,
                rhi, 1);
}

/* out[m][oh, ow] (m < 6, OH x OW at pitch opitch, maps ostride apart) = bias[m] (or 0) +
   the correlation of the nin input maps with the packed taps wpk; needs
   Q = (OH - 1) * ipitch + OW >= 16 (see lf16_corr_pair for the wide positions). */
static void lf_g6_corr(float *out, int ostride, int OH, int OW, int opitch, const float *inp,
                       int ipitch, int istride, int nin, const float *wpk, const float *bias,
                       int rlo, int rhi) {
    int Q = (OH - 1) * ipitch + OW, nvec = (Q + 15) / 16, q0 = 0;
    while (nvec >= LF_NV16) {
        lf_g6_block_nv(out, ostride, opitch, OW, inp, ipitch, istride, nin, wpk, bias, q0, Q,
                       rlo, rhi);
        q0 += 16 * LF_NV16;
        nvec -= LF_NV16;
    }
    if (nvec >= 2)
        lf_g6_block_nv(out, ostride, opitch, OW, inp, ipitch, istride, nin, wpk, bias, q0, Q,
                       rlo, rhi);
    else if (nvec == 1)
        lf_g6_block_1(out, ostride, opitch, OW, inp, ipitch, istride, nin, wpk, bias, q0, Q,
                      rlo, rhi);
}

/* ------------------------------------------------------------------ dw, 16 maps in lanes */
/* dw of a convolution with 16 output maps, from channels-last copies: xh (N, H, W, Cin)
   and dyh (N, OH, OW, 16). For kernel row kh and the taps j0..j0+JN-1 of j = kw * Cin +
   ci: acc[j] (16 output maps in the lanes) = sum over the samples, then the positions in
   row-major order, of dyh[n, oh, ow, :] * xh[n, oh + kh, ow, j]; added to
   dwp[(kh * 5 * Cin + j) * 16 + co]. */
#define LF_DW_J 15
LF_INLINE void lf_cl16_dw_part(float *dwp, const float *xh, const float *dyh, int N, int H,
                               int W, int Cin, int kh, int j0, const int JN) {
    lf_v16 acc[LF_DW_J];
    int n, oh, ow, j, OH = H - 4, OW = W - 4;
    for (j = 0; j < JN; j++) acc[j] = lf16_zero();
    for (n = 0; n < N; n++) {
        const float *xs = xh + (long)n * H * W * Cin;
        const float *gs = dyh + (long)n * OH * OW * 16;
        for (oh = 0; oh < OH; oh++) {
            const float *xr = xs + ((oh + kh) * W) * Cin + j0;
            const float *gr = gs + oh * OW * 16;
            for (ow = 0; ow < OW; ow++, xr += Cin, gr += 16) {
                lf_v16 g = lf16_load(gr);
                for (j = 0; j < JN; j++) acc[j] = lf16_fma(lf16_bcast(xr[j]), g, acc[j]);
            }
        }
    }
    for (j = 0; j < JN; j++) {
        float *d = dwp + (kh * 5 * Cin + j0 + j) * 16;
        lf16_store(d, lf16_add(lf16_load(d), acc[j]));
    }
}

static void lf_cl16_dw_15(float *dwp, const float *xh, const float *dyh, int N, int H, int W,
                          int Cin, int kh, int j0) {
    lf_cl16_dw_part(dwp, xh, dyh, N, H, W, Cin, kh, j0, LF_DW_J);
}

static void lf_cl16_dw_1(float *dwp, const float *xh, const float *dyh, int N, int H, int W,
                         int Cin, int kh, int j0) {
    lf_cl16_dw_part(dwp, xh, dyh, N, H, W, Cin, kh, j0, 1);
}

/* Job `job` of lf_cl16_dw_jobs(Cin): kernel row job / per, taps from (job % per) * 15. */
static inline int lf_cl16_dw_jobs(int Cin) { return 5 * ((5 * Cin + LF_DW_J - 1) / LF_DW_J); }

static void lf_cl16_dw_job(float *dwp, const float *xh, const float *dyh, int N, int H, int W,
                           int Cin, int job) {
    int per = (5 * Cin + LF_DW_J - 1) / LF_DW_J, kh = job / per, j0 = (job % per) * LF_DW_J, j;
    if (j0 + LF_DW_J <= 5 * Cin) {
        lf_cl16_dw_15(dwp, xh, dyh, N, H, W, Cin, kh, j0);
    } else {
        for (j = j0; j < 5 * Cin; j++) lf_cl16_dw_1(dwp, xh, dyh, N, H, W, Cin, kh, j);
    }
}

/* Channels-last copies of one sample: xh (H, W, Cin) <- x (Cin, H, W); dyh (OH, OW, 16)
   <- dy (16, OH, OW). */
static void lf_to_channels_last(float *dst, const float *src, int C, int HW) {
    int c, i;
    for (c = 0; c < C; c++)
        for (i = 0; i < HW; i++) dst[i * C + c] = src[c * HW + i];
}

/* ------------------------------------------------------------------ dw, six maps (C1) */
/* dw of three of the six output maps (m0, m0 + 1, m0 + 2) from one input map, kernel
   row kh: acc[m][kw] = sum over the samples, rows oh and positions of dy[n, m, oh, ow] *
   x[n, oh + kh, ow + kw], with the positions of a row in vectors of 16 (the last one
   shifted back to end at OW, its already-counted lanes masked off); per vector, 3 dy and
   5 x loads feed 15 accumulators (21 registers in all). dy is (N, 6, OH, OW), x is
   (N, H, W) (one input map); the sums are added to dw[m * 25 + kh * 5 + kw] (dw (6, 1, 5,
   5)). Needs OW >= 16. Job j of lf_g6_dw_job: kh = j / 2, m0 = 3 (j % 2). */
static void lf_g6_dw_job(float *dw, const float *dy, const float *x, int N, int H, int W,
                         int job) {
    int OH = H - 4, OW = W - 4, n, oh, s, m, kw, rem = OW % 16, last = OW - 16;
    int kh = job / 2, m0 = 3 * (job % 2);
    lf_v16 acc[3][5], g, xv[5];
    for (m = 0; m < 3; m++)
        for (kw = 0; kw < 5; kw++) acc[m][kw] = lf16_zero();
    for (n = 0; n < N; n++) {
        for (oh = 0; oh < OH; oh++) {
            const float *d = dy + ((long)(n * 6 + m0) * OH + oh) * OW;
            const float *xr = x + ((long)n * H + oh + kh) * W;
            s = 0;
            while (s + 16 <= OW || (rem && s < OW)) {
                int shifted = s + 16 > OW;
                if (shifted) s = last;
                for (kw = 0; kw < 5; kw++) xv[kw] = lf16_load(xr + s + kw);
                for (m = 0; m < 3; m++) {
                    g = lf16_load(d + (long)m * OH * OW + s);
                    if (shifted) g = lf16_keep_from(g, 16 - rem);
                    for (kw = 0; kw < 5; kw++) acc[m][kw] = lf16_fma(g, xv[kw], acc[m][kw]);
                }
                s += 16;
            }
        }
    }
    for (m = 0; m < 3; m++)
        for (kw = 0; kw < 5; kw++) dw[(m0 + m) * 25 + kh * 5 + kw] += lf16_hsum(acc[m][kw]);
}

/* ------------------------------------------------------------------ 2x2 max pooling */
/* The avx512 path's rows of lf_pool.pxd's max pooling, sixteen outputs per step from
   two input rows, the same arithmetic: forward m = max(max(r0, r1) at 2j, at 2j + 1),
   NaN-propagating as np.maximum (then max(m, 0) with relu); backward: the gradient goes
   to each block's first maximum in row-major order (a NaN counts as the maximum), none
   where relu and not m > 0. Other paths never call these. */
#if LF_WIDE
static inline __m512 lf512_maxnan(__m512 a, __m512 b) {
    __mmask16 m = _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(m, b, a);
}
static inline __mmask16 lf512_eq_or_nan(__m512 a, __m512 b) {
    return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
}
static inline __mmask16 lf512_first(int n) { return n >= 16 ? 0xFFFF : (n <= 0 ? 0 : (__mmask16)((1u << n) - 1u)); }

static void lf16_maxpool_row(float *y, const float *r0, const float *r1, int OW, int relu) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int j, n;
    for (j = 0; j < OW; j += 16) {
        __mmask16 ka, kb;
        __m512 va, vb, m;
        n = lf_imin(16, OW - j);
        ka = lf512_first(2 * n);
        kb = lf512_first(2 * n - 16);
        va = lf512_maxnan(_mm512_maskz_loadu_ps(ka, r0 + 2 * j), _mm512_maskz_loadu_ps(ka, r1 + 2 * j));
        vb = lf512_maxnan(_mm512_maskz_loadu_ps(kb, r0 + 2 * j + 16),
                          _mm512_maskz_loadu_ps(kb, r1 + 2 * j + 16));
        m = lf512_maxnan(_mm512_permutex2var_ps(va, ev, vb), _mm512_permutex2var_ps(va, od, vb));
        if (relu) m = lf512_maxnan(m, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(y + j, lf512_first(n), m);
    }
}

static void lf16_maxpool_grad_row(float *d0, float *d1, const float *r0, const float *r1,
                                  const float *dyr, int OW, int relu) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i zl = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i zh = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    int j, n;
    for (j = 0; j < OW; j += 16) {
        __mmask16 ka, kb, e0, e1, e2, seen;
        __m512 a0, a1, b0, b1, v0, v1, v2, v3, m, g, o0, o1, o2, o3;
        n = lf_imin(16, OW - j);
        ka = lf512_first(2 * n);
        kb = lf512_first(2 * n - 16);
        a0 = _mm512_maskz_loadu_ps(ka, r0 + 2 * j);
        a1 = _mm512_maskz_loadu_ps(kb, r0 + 2 * j + 16);
        b0 = _mm512_maskz_loadu_ps(ka, r1 + 2 * j);
        b1 = _mm512_maskz_loadu_ps(kb, r1 + 2 * j + 16);
        v0 = _mm512_permutex2var_ps(a0, ev, a1);
        v1 = _mm512_permutex2var_ps(a0, od, a1);
        v2 = _mm512_permutex2var_ps(b0, ev, b1);
        v3 = _mm512_permutex2var_ps(b0, od, b1);
        m = lf512_maxnan(lf512_maxnan(v0, v1), lf512_maxnan(v2, v3));
        g = _mm512_maskz_loadu_ps(lf512_first(n), dyr + j);
        if (relu) g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ), g);
        e0 = lf512_eq_or_nan(v0, m);
        e1 = (__mmask16)(~e0 & lf512_eq_or_nan(v1, m));
        seen = e0 | e1;
        e2 = (__mmask16)(~seen & lf512_eq_or_nan(v2, m));
        seen = seen | e2;
        o0 = _mm512_maskz_mov_ps(e0, g);
        o1 = _mm512_maskz_mov_ps(e1, g);
        o2 = _mm512_maskz_mov_ps(e2, g);
        o3 = _mm512_maskz_mov_ps((__mmask16)~seen, g);
        _mm512_mask_storeu_ps(d0 + 2 * j, ka, _mm512_permutex2var_ps(o0, zl, o1));
        _mm512_mask_storeu_ps(d0 + 2 * j + 16, kb, _mm512_permutex2var_ps(o0, zh, o1));
        _mm512_mask_storeu_ps(d1 + 2 * j, ka, _mm512_permutex2var_ps(o2, zl, o3));
        _mm512_mask_storeu_ps(d1 + 2 * j + 16, kb, _mm512_permutex2var_ps(o2, zh, o3));
    }
}
#else
static void lf16_maxpool_row(float *y, const float *r0, const float *r1, int OW, int relu) {
    (void)y; (void)r0; (void)r1; (void)OW; (void)relu;
}
static void lf16_maxpool_grad_row(float *d0, float *d1, const float *r0, const float *r1,
                                  const float *dyr, int OW, int relu) {
    (void)d0; (void)d1; (void)r0; (void)r1; (void)dyr; (void)OW; (void)relu;
}
#endif

/* ------------------------------------------------------------------ dense outer products */
/* out[r, 0:32] (r < 8) = sum_k a[k*sk + r*sr] * bm[k*ldb + 0:32], k in increasing order
   from out's values (acc) or 0: lf_dense.pxd's _outer_4x16 on an 8 x 32 tile (the same
   sums, element by element), two sixteen-float vectors a row: 16 accumulators, per k
   two loads and eight broadcasts for sixteen FMAs. */
static void lf16_outer_8x32(float *out, int ldo, const float *a, int sk, int sr,
                            const float *bm, int ldb, int K, int acc) {
    lf_v16 c[8][2], b0, b1, s;
    int r, k;
    for (r = 0; r < 8; r++) {
        c[r][0] = acc ? lf16_load(out + r * ldo) : lf16_zero();
        c[r][1] = acc ? lf16_load(out + r * ldo + 16) : lf16_zero();
    }
    for (k = 0; k < K; k++) {
        const float *ak = a + (long)k * sk;
        b0 = lf16_load(bm + (long)k * ldb);
        b1 = lf16_load(bm + (long)k * ldb + 16);
        for (r = 0; r < 8; r++) {
            s = lf16_bcast(ak[r * sr]);
            c[r][0] = lf16_fma(s, b0, c[r][0]);
            c[r][1] = lf16_fma(s, b1, c[r][1]);
        }
    }
    for (r = 0; r < 8; r++) {
        lf16_store(out + r * ldo, c[r][0]);
        lf16_store(out + r * ldo + 16, c[r][1]);
    }
}
#endif
