/* The vector kernels of every layer, written once over the path's vector width LF_W
   (lf_simd.h: 16 floats on avx512, 8 on avx2, 4 on the portable path, SSE or NEON), each
   register-blocked for LF_W and the register file (LF_NREG). The Cython files choose
   between them by layer shape only (lf_conv.pxd, lf_dense.pxd, lf_pool.pxd):

   kernel             lanes hold            register tile (avx512 / avx2 / SSE / NEON)      runs for
   lf_cl16_forward    C3's 16 output maps   R positions x 16/W vectors: 10x1 / 6x2 / 2x4 / 6x4  C3 y (16 maps, small input)
   lf_cl16_dw_job     C3's 16 output maps   J taps x 16/W vectors: 15x1 / 6x2 / 2x4 / 6x4  C3 dw
   lf_g6_corr         output positions      6 maps x NV vectors: 6x4 / 6x2 / 6x2 / 6x4     C1 y; C3 dx (6 input maps)
   lf_g6_dw_job       positions (a row)     M maps x 5 taps: 3x5 / 2x5 / 2x5 / 3x5         C1 dw
   lf_corr_pair       output positions      2 maps x 4 vectors                             any other y or dx
   lf_dw_pair         positions             13 taps of one pair                            any other dw
   lf_dot_job         the input (dot)       R samples x 4 outputs: 4 / 2 / 2 / 4           dense y: C5, F6, output
   lf_outer_job       output columns        R rows x 2 vectors: 8 / 6 / 6 / 8              dense dw and dx
   lf_maxpool_row     outputs of a row      one step of W outputs                          2x2 max pooling, both ways

   Each output element is summed by one thread, in an order fixed by the code (never by
   the thread count, the batch size or where the element sits in a tile): a tile's last
   vector that would run past the end is shifted back onto positions already computed
   (which it recomputes identically) or loaded zero-padded, never finished in scalar code.
   The order does depend on LF_W where the lanes hold what is summed (lf_dw_pair,
   lf_g6_dw_job, lf_dot_job: lane sums, then lf_hsum), so the paths agree only to
   rounding. */
#ifndef LF_KERNELS_H
#define LF_KERNELS_H
#include "lf_simd.h"

static inline int lf_imin(int a, int b) { return a < b ? a : b; }
static inline int lf_imax(int a, int b) { return a > b ? a : b; }

/* Vectors of C3's 16 output maps; the register tiles of the kernels below. */
#define LF_MV (16 / LF_W)
#define LF_CL_R ((LF_NREG - LF_MV - 1) / LF_MV < 10 ? (LF_NREG - LF_MV - 1) / LF_MV : 10)
#define LF_DW_J ((LF_NREG - LF_MV - 1) / LF_MV < 15 ? (LF_NREG - LF_MV - 1) / LF_MV : 15)
#define LF_NV 4                                 /* lf_corr_pair: vectors per map */
#define LF_NV6 (LF_NREG >= 32 ? 4 : 2)          /* lf_g6_corr: vectors per map */
#define LF_G6_M (LF_NREG >= 32 ? 3 : 2)         /* lf_g6_dw_job: maps per job */
#define LF_OC 2                                 /* lf_outer_job: vectors per row */
#define LF_OR (LF_NREG >= 32 ? 8 : 6)           /* lf_outer_job: rows per tile */
#define LF_DR (LF_NREG >= 32 ? 4 : 2)           /* lf_dot_job: samples per tile */

/* ------------------------------------------------------------------ output positions */
/* How the positions of an OH x OW output map (rows opitch apart; its input rows ipitch
   apart, ipitch >= OW) go into vectors. Rows of OW >= LF_W outputs: vpr vectors per row,
   the last one shifted back to end at the row's end (its first lanes recompute positions
   of the vector before it, identically), stored whole. Narrower rows: "wide" positions
   q = oh * ipitch + ow, LF_W consecutive ones per vector (lanes with ow >= OW are
   computed and dropped), the last vector shifted back to end at Q = (OH - 1) * ipitch +
   OW (needs Q >= LF_W). Vector k reads its input from offset lf_grid_at(g, k). */
typedef struct {
    int OH, OW, ipitch, opitch, Q, vpr, nvec;
} lf_grid;

static inline lf_grid lf_grid_of(int OH, int OW, int ipitch, int opitch) {
    lf_grid g;
    g.OH = OH;
    g.OW = OW;
    g.ipitch = ipitch;
    g.opitch = opitch;
    g.Q = (OH - 1) * ipitch + OW;
    g.vpr = OW >= LF_W ? (OW + LF_W - 1) / LF_W : 0;
    g.nvec = g.vpr ? OH * g.vpr : (g.Q + LF_W - 1) / LF_W;
    return g;
}

static inline int lf_grid_at(const lf_grid *g, int k) {
    if (g->vpr)
        return (k / g->vpr) * g->ipitch + lf_imin((k % g->vpr) * LF_W, g->OW - LF_W);
    return lf_imin(k * LF_W, g->Q - LF_W);
}

/* Output a (+ bias) of the vector whose input offset is s into out. Wide positions:
   lanes with ow < OW go to out[oh, ow], one masked store per row they touch. */
static inline void lf_grid_store(float *out, const lf_grid *g, int s, lf_v a, float bias) {
    int l = 0, oh = s / g->ipitch, ow = s - oh * g->ipitch, n, valid;
    a = lf_add(a, lf_bcast(bias));
    if (g->vpr || (g->OW == g->ipitch && g->opitch == g->ipitch)) {
        lf_store(out + oh * g->opitch + ow, a);
        return;
    }
    while (l < LF_W) {
        n = lf_imin(g->ipitch - ow, LF_W - l);
        valid = lf_imax(0, lf_imin(g->OW - ow, n));
        if (valid > 0) lf_store_lanes(out + oh * g->opitch + ow - l, a, l, l + valid);
        l += n;
        oh++;
        ow = 0;
    }
}

/* The input offsets of the NV vectors from vector k0 (past the last one: the last one
   again), and the kernel rows kh0..kh1-1 that can read nonzero input rows rlo..rhi-1. */
static inline void lf_grid_block(const lf_grid *g, int k0, int NV, int *s, int rlo, int rhi,
                                 int *kh0, int *kh1) {
    int v;
    for (v = 0; v < NV; v++) s[v] = lf_grid_at(g, lf_imin(k0 + v, g->nvec - 1));
    *kh0 = lf_imax(0, rlo - (s[NV - 1] + LF_W - 1) / g->ipitch);
    *kh1 = lf_imin(5, rhi - s[0] / g->ipitch);
}

static inline void lf_load_taps(float *wl, const float *wk, int flip) {
    int t;
    if (flip) for (t = 0; t < 25; t++) wl[t] = wk[24 - t];
    else for (t = 0; t < 25; t++) wl[t] = wk[t];
}

/* Two output maps (a, b; b may be NULL) x NV vectors from vector k0. Input maps read by
   both (flag 0) load every x vector once for both outputs; maps read by one (flag 1: a,
   2: b) feed only that one. Only input rows rlo..rhi-1 may be nonzero: kernel rows that
   read none of them are skipped. */
LF_INLINE void lf_pair(float *oa, float *ob, const lf_grid *g, const float *inp, int istride,
                       const int *chans, const int *flags, int nchan, const float *wa,
                       const float *wb, int wstride, int flip, float ba, float bb, int k0,
                       int rlo, int rhi, const int NV) {
    int s[LF_NV];
    lf_v a[LF_NV], b[LF_NV], x[LF_NV], w;
    float wla[25], wlb[25];
    int v, j, f, kh, kw, t, kh0, kh1;
    const float *xc, *xp;
    lf_grid_block(g, k0, NV, s, rlo, rhi, &kh0, &kh1);
    for (v = 0; v < NV; v++) {
        a[v] = lf_zero();
        b[v] = lf_zero();
    }
    for (j = 0; j < nchan; j++) {
        f = flags[j];
        xc = inp + chans[j] * istride;
        if (f != 2) lf_load_taps(wla, wa + chans[j] * wstride, flip);
        if (f != 1) lf_load_taps(wlb, wb + chans[j] * wstride, flip);
        for (kh = kh0; kh < kh1; kh++) {
            for (kw = 0; kw < 5; kw++) {
                t = kh * 5 + kw;
                xp = xc + kh * g->ipitch + kw;
                for (v = 0; v < NV; v++) x[v] = lf_load(xp + s[v]);
                if (f != 2) {
                    w = lf_bcast(wla[t]);
                    for (v = 0; v < NV; v++) a[v] = lf_fma(w, x[v], a[v]);
                }
                if (f != 1) {
                    w = lf_bcast(wlb[t]);
                    for (v = 0; v < NV; v++) b[v] = lf_fma(w, x[v], b[v]);
                }
            }
        }
    }
    for (v = 0; v < NV; v++) lf_grid_store(oa, g, s[v], a[v], ba);
    if (ob)
        for (v = 0; v < NV; v++) lf_grid_store(ob, g, s[v], b[v], bb);
}

#define LF_PAIR(name, NV)                                                                  \
    static void name(float *oa, float *ob, const lf_grid *g, const float *inp, int istride, \
                     const int *chans, const int *flags, int nchan, const float *wa,        \
                     const float *wb, int wstride, int flip, float ba, float bb, int k0,    \
                     int rlo, int rhi) {                                                    \
        lf_pair(oa, ob, g, inp, istride, chans, flags, nchan, wa, wb, wstride, flip, ba,   \
                bb, k0, rlo, rhi, NV);                                                      \
    }
LF_PAIR(lf_pair_nv, LF_NV)
LF_PAIR(lf_pair_1, 1)

/* oa[oh, ow] = ba + sum over the maps flagged for a of sum_taps w[tap] * inp[map][oh + kh,
   ow + kw] (taps rotated by 180 degrees when flip), likewise ob; the input rows ipitch
   apart, maps istride apart. Input rows outside rlo..rhi-1 must be zero (a row's reads
   past its end wrap into the next row: they must be zero too when rlo > 0). Needs
   OW >= LF_W or (OH - 1) * ipitch + OW >= LF_W. */
static void lf_corr_pair(float *oa, float *ob, int OH, int OW, int opitch, const float *inp,
                         int ipitch, int istride, const int *chans, const int *flags, int nchan,
                         const float *wa, const float *wb, int wstride, int flip, float ba,
                         float bb, int rlo, int rhi) {
    lf_grid g = lf_grid_of(OH, OW, ipitch, opitch);
    int k0, i, j;
    if (nchan == 0) {
        for (i = 0; i < OH; i++)
            for (j = 0; j < OW; j++) {
                oa[i * opitch + j] = ba;
                if (ob) ob[i * opitch + j] = bb;
            }
        return;
    }
    /* blocks of LF_NV vectors; the last one, if it has 2 or more, clamped onto its last
       vector (the same positions computed twice, identically) */
    for (k0 = 0; k0 < g.nvec; k0 += LF_NV) {
        if (g.nvec - k0 >= 2)
            lf_pair_nv(oa, ob, &g, inp, istride, chans, flags, nchan, wa, wb, wstride, flip,
                       ba, bb, k0, rlo, rhi);
        else
            lf_pair_1(oa, ob, &g, inp, istride, chans, flags, nchan, wa, wb, wstride, flip,
                      ba, bb, k0, rlo, rhi);
    }
}

/* ------------------------------------------------------------------ weight gradients */
/* Kernel taps of one connected pair from three rows of x: oa[kw] += sum_n sum_{r < nseg}
   sum_{s < L} dy[n, r][s] * x[n, r][offa + s + kw] for kw < 5, likewise ob (offb), and oc
   (offc) for kw < nc (2 or 3). Segment r of sample n starts at dy + n * dy_ns + r * dy_rs
   and x + n * x_ns + r * x_rs; L >= LF_W. A segment's last vector is shifted back to end
   at L, its already-counted lanes masked off. 13 accumulators, one dy vector. */
static void lf_dw_3rows(float *oa, float *ob, float *oc, int nc, int offa, int offb, int offc,
                        const float *dy, int dy_ns, int dy_rs, const float *x, int x_ns,
                        int x_rs, int N, int nseg, int L) {
    lf_v g, acc[13];
    const int offs[3] = {offa, offb, offc};
    int n, r, s, k, last = L - LF_W, rem = L % LF_W, nk = 10 + nc;
    const float *d, *xs;
    for (k = 0; k < 13; k++) acc[k] = lf_zero();
    for (n = 0; n < N; n++) {
        for (r = 0; r < nseg; r++) {
            d = dy + n * dy_ns + r * dy_rs;
            xs = x + n * x_ns + r * x_rs;
            s = 0;
            while (s + LF_W <= L || (rem && s < L)) {
                if (s + LF_W <= L) {
                    g = lf_load(d + s);
                } else {
                    s = last;
                    g = lf_keep_from(lf_load(d + s), LF_W - rem);
                }
                for (k = 0; k < 13; k++)
                    if (k < 12 || nk == 13) acc[k] = lf_fma(g, lf_load(xs + offs[k / 5] + s + k % 5), acc[k]);
                s += LF_W;
            }
        }
    }
    for (k = 0; k < 5; k++) {
        oa[k] += lf_hsum(acc[k]);
        ob[k] += lf_hsum(acc[5 + k]);
        if (k < nc) oc[k] += lf_hsum(acc[10 + k]);
    }
}

/* All 25 taps (out, 5x5) of one pair: kernel rows 0, 1 and taps 10-12 of row 2, then
   rows 3, 4 and taps 13, 14. */
static void lf_dw_pair(float *out, const float *dy, int dy_ns, int dy_rs, const float *x,
                       int x_ns, int x_rs, int N, int nseg, int L, int W) {
    lf_dw_3rows(out, out + 5, out + 10, 3, 0, W, 2 * W, dy, dy_ns, dy_rs, x, x_ns, x_rs, N,
                nseg, L);
    lf_dw_3rows(out + 15, out + 20, out + 13, 2, 3 * W, 4 * W, 2 * W + 3, dy, dy_ns, dy_rs, x,
                x_ns, x_rs, N, nseg, L);
}

/* ------------------------------------------------------------------ 16 maps in lanes */
/* Floats of the stack buffers lf_cl16_forward needs: packed weights and one sample's
   channels-last input. Larger layers use lf_corr_pair. */
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
LF_INLINE void lf_cl16_tile(float *y, int OH, int OW, int oh, int ow0, const float *xh, int W,
                            int Cin, const float *wp, const float *bias, const int R,
                            const int CIN) {
    const int C = CIN ? CIN : Cin;
    lf_v acc[LF_CL_R][LF_MV], wv[LF_MV], xb;
    float t[LF_CL_R * 16];
    int p, kh, j, m, co;
    for (p = 0; p < R; p++)
        for (m = 0; m < LF_MV; m++) acc[p][m] = lf_load(bias + m * LF_W);
    for (kh = 0; kh < 5; kh++) {
        const float *xj = xh + ((oh + kh) * W + ow0) * C;
        const float *wj = wp + kh * 5 * C * 16;
        for (j = 0; j < 5 * C; j++, xj++, wj += 16) {
            for (m = 0; m < LF_MV; m++) wv[m] = lf_load(wj + m * LF_W);
            for (p = 0; p < R; p++) {
                xb = lf_bcast(xj[p * C]);
                for (m = 0; m < LF_MV; m++) acc[p][m] = lf_fma(xb, wv[m], acc[p][m]);
            }
        }
    }
    for (p = 0; p < R; p++)
        for (m = 0; m < LF_MV; m++) lf_store(t + p * 16 + m * LF_W, acc[p][m]);
    for (co = 0; co < 16; co++) {
        float *yr = y + (co * OH + oh) * OW + ow0;
        for (p = 0; p < R; p++) yr[p] = t[p * 16 + co];
    }
}

#define LF_CL_TILE(name, R, CIN)                                                           \
    static void name(float *y, int OH, int OW, int oh, int ow0, const float *xh, int W,   \
                     int Cin, const float *wp, const float *bias) {                        \
        lf_cl16_tile(y, OH, OW, oh, ow0, xh, W, Cin, wp, bias, R, CIN);                    \
    }
LF_CL_TILE(lf_cl16_tile_r, LF_CL_R, 0)
LF_CL_TILE(lf_cl16_tile_1, 1, 0)
LF_CL_TILE(lf_cl16_tile_r6, LF_CL_R, 6)      /* C3: 6 input maps */
LF_CL_TILE(lf_cl16_tile_16, 1, 6)

/* One sample: y (16, H-4, W-4) <- x (Cin, H, W) with packed weights wp and bias (16,).
   A row's last tile is shifted back to end at the row's end (recomputing positions of
   the tile before it, identically). */
static void lf_cl16_forward_one(float *y, const float *x, const float *wp, const float *bias,
                                int Cin, int H, int W) {
    float xh[LF_CL_MAX_X];
    int OH = H - 4, OW = W - 4, oh, ow, c, i, six = Cin == 6;
    for (c = 0; c < Cin; c++)
        for (i = 0; i < H * W; i++) xh[i * Cin + c] = x[c * H * W + i];
    for (oh = 0; oh < OH; oh++) {
        if (OW < LF_CL_R) {
            for (ow = 0; ow < OW; ow++) {
                if (six) lf_cl16_tile_16(y, OH, OW, oh, ow, xh, W, Cin, wp, bias);
                else lf_cl16_tile_1(y, OH, OW, oh, ow, xh, W, Cin, wp, bias);
            }
            continue;
        }
        for (ow = 0; ow < OW; ow += LF_CL_R) {
            int o = lf_imin(ow, OW - LF_CL_R);
            if (six) lf_cl16_tile_r6(y, OH, OW, oh, o, xh, W, Cin, wp, bias);
            else lf_cl16_tile_r(y, OH, OW, oh, o, xh, W, Cin, wp, bias);
        }
    }
}

/* ------------------------------------------------------------------ six maps at once */
/* Finite check (x - x == 0 fails for NaN and infinities): the dense-with-zeros kernels
   multiply unconnected pairs by an exact zero, which equals skipping them only for
   finite inputs; a caller sees a non-finite input and uses the skipping kernels. */
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

/* Six output maps (map m at out + m * ostride) x NV vectors from vector k0, summed over
   every input map (map j at inp + j * istride) and tap: per tap, NV input vectors feed
   6 x NV accumulators. Input rows outside rlo..rhi-1 must be zero (their kernel rows
   are skipped). */
LF_INLINE void lf_g6_block(float *out, int ostride, const lf_grid *g, const float *inp,
                           int istride, int nin, const float *wpk, const float *bias, int k0,
                           int rlo, int rhi, const int NV) {
    int s[LF_NV6];
    lf_v acc[6][LF_NV6], x[LF_NV6], w;
    int v, m, j, kh, kw, kh0, kh1;
    lf_grid_block(g, k0, NV, s, rlo, rhi, &kh0, &kh1);
    for (v = 0; v < NV; v++)
        for (m = 0; m < 6; m++) acc[m][v] = lf_zero();
    for (j = 0; j < nin; j++) {
        const float *xc = inp + j * istride;
        for (kh = kh0; kh < kh1; kh++) {
            const float *wt = wpk + (j * 25 + kh * 5) * 6;
            const float *xp = xc + kh * g->ipitch;
            for (kw = 0; kw < 5; kw++, wt += 6, xp++) {
                for (v = 0; v < NV; v++) x[v] = lf_load(xp + s[v]);
                for (m = 0; m < 6; m++) {
                    w = lf_bcast(wt[m]);
                    for (v = 0; v < NV; v++) acc[m][v] = lf_fma(w, x[v], acc[m][v]);
                }
            }
        }
    }
    for (m = 0; m < 6; m++)
        for (v = 0; v < NV; v++)
            lf_grid_store(out + m * ostride, g, s[v], acc[m][v], bias ? bias[m] : 0.0f);
}

#define LF_G6_BLOCK(name, NV)                                                               \
    static void name(float *out, int ostride, const lf_grid *g, const float *inp,           \
                     int istride, int nin, const float *wpk, const float *bias, int k0,     \
                     int rlo, int rhi) {                                                    \
        lf_g6_block(out, ostride, g, inp, istride, nin, wpk, bias, k0, rlo, rhi, NV);       \
    }
LF_G6_BLOCK(lf_g6_block_nv, LF_NV6)
LF_G6_BLOCK(lf_g6_block_1, 1)

/* out[m][oh, ow] (m < 6, OH x OW at pitch opitch, maps ostride apart) = bias[m] (or 0) +
   the correlation of the nin input maps with the packed taps wpk (see lf_corr_pair for
   the positions and rlo, rhi). */
static void lf_g6_corr(float *out, int ostride, int OH, int OW, int opitch, const float *inp,
                       int ipitch, int istride, int nin, const float *wpk, const float *bias,
                       int rlo, int rhi) {
    lf_grid g = lf_grid_of(OH, OW, ipitch, opitch);
    int k0;
    for (k0 = 0; k0 < g.nvec; k0 += LF_NV6) {
        if (g.nvec - k0 >= 2)
            lf_g6_block_nv(out, ostride, &g, inp, istride, nin, wpk, bias, k0, rlo, rhi);
        else
            lf_g6_block_1(out, ostride, &g, inp, istride, nin, wpk, bias, k0, rlo, rhi);
    }
}

/* ------------------------------------------------------------------ dw, 16 maps in lanes */
/* dw of a convolution with 16 output maps, from channels-last copies: xh (N, H, W, Cin)
   and dyh (N, OH, OW, 16). For kernel row kh and the taps j0..j0+JN-1 of j = kw * Cin +
   ci: acc[j] (16 output maps in 16/W vectors) = sum over the samples, then the positions
   in row-major order, of dyh[n, oh, ow, :] * xh[n, oh + kh, ow, j]; added to
   dwp[(kh * 5 * Cin + j) * 16 + co]. */
LF_INLINE void lf_cl16_dw_part(float *dwp, const float *xh, const float *dyh, int N, int H,
                               int W, int Cin, int kh, int j0, const int JN) {
    lf_v acc[LF_DW_J][LF_MV], g[LF_MV], xb;
    int n, oh, ow, j, m, OH = H - 4, OW = W - 4;
    for (j = 0; j < JN; j++)
        for (m = 0; m < LF_MV; m++) acc[j][m] = lf_zero();
    for (n = 0; n < N; n++) {
        const float *xs = xh + (long)n * H * W * Cin;
        const float *gs = dyh + (long)n * OH * OW * 16;
        for (oh = 0; oh < OH; oh++) {
            const float *xr = xs + ((oh + kh) * W) * Cin + j0;
            const float *gr = gs + oh * OW * 16;
            for (ow = 0; ow < OW; ow++, xr += Cin, gr += 16) {
                for (m = 0; m < LF_MV; m++) g[m] = lf_load(gr + m * LF_W);
                for (j = 0; j < JN; j++) {
                    xb = lf_bcast(xr[j]);
                    for (m = 0; m < LF_MV; m++) acc[j][m] = lf_fma(xb, g[m], acc[j][m]);
                }
            }
        }
    }
    for (j = 0; j < JN; j++) {
        float *d = dwp + (kh * 5 * Cin + j0 + j) * 16;
        for (m = 0; m < LF_MV; m++)
            lf_store(d + m * LF_W, lf_add(lf_load(d + m * LF_W), acc[j][m]));
    }
}

static void lf_cl16_dw_j(float *dwp, const float *xh, const float *dyh, int N, int H, int W,
                         int Cin, int kh, int j0) {
    lf_cl16_dw_part(dwp, xh, dyh, N, H, W, Cin, kh, j0, LF_DW_J);
}

static void lf_cl16_dw_1(float *dwp, const float *xh, const float *dyh, int N, int H, int W,
                         int Cin, int kh, int j0) {
    lf_cl16_dw_part(dwp, xh, dyh, N, H, W, Cin, kh, j0, 1);
}

/* Job `job` of lf_cl16_dw_jobs(Cin): kernel row job / per, taps from (job % per) * J. */
static inline int lf_cl16_dw_jobs(int Cin) { return 5 * ((5 * Cin + LF_DW_J - 1) / LF_DW_J); }

static void lf_cl16_dw_job(float *dwp, const float *xh, const float *dyh, int N, int H, int W,
                           int Cin, int job) {
    int per = (5 * Cin + LF_DW_J - 1) / LF_DW_J, kh = job / per, j0 = (job % per) * LF_DW_J, j;
    if (j0 + LF_DW_J <= 5 * Cin) {
        lf_cl16_dw_j(dwp, xh, dyh, N, H, W, Cin, kh, j0);
    } else {
        for (j = j0; j < 5 * Cin; j++) lf_cl16_dw_1(dwp, xh, dyh, N, H, W, Cin, kh, j);
    }
}

/* Channels-last copy of one sample: dst (HW, C) <- src (C, HW). */
static void lf_to_channels_last(float *dst, const float *src, int C, int HW) {
    int c, i;
    for (c = 0; c < C; c++)
        for (i = 0; i < HW; i++) dst[i * C + c] = src[c * HW + i];
}

/* ------------------------------------------------------------------ dw, six maps (C1) */
/* dw of M of the six output maps (m0..m0+M-1) from one input map, kernel row kh:
   acc[m][kw] = sum over the samples, rows oh and positions of dy[n, m, oh, ow] *
   x[n, oh + kh, ow + kw], with the positions of a row in vectors (the last one shifted
   back to end at OW, its already-counted lanes masked off); per vector, M dy loads and 5
   x loads feed 5M accumulators. dy is (N, 6, OH, OW), x is (N, H, W) (one input map);
   the sums are added to dw[m * 25 + kh * 5 + kw] (dw (6, 1, 5, 5)); the jobs of kernel
   row 0 also add each map's sum of dy to db[m] (the bias gradient, from the dy vectors
   they load anyway). Needs OW >= LF_W. */
static inline int lf_g6_dw_jobs(void) { return 5 * (6 / LF_G6_M); }

static void lf_g6_dw_job(float *dw, float *db, const float *dy, const float *x, int N, int H,
                         int W, int job) {
    int OH = H - 4, OW = W - 4, n, oh, s, m, kw, rem = OW % LF_W, last = OW - LF_W;
    int kh = job / (6 / LF_G6_M), m0 = LF_G6_M * (job % (6 / LF_G6_M));
    lf_v acc[LF_G6_M][5], g[LF_G6_M], bsum[LF_G6_M], xv;
    for (m = 0; m < LF_G6_M; m++) {
        bsum[m] = lf_zero();
        for (kw = 0; kw < 5; kw++) acc[m][kw] = lf_zero();
    }
    for (n = 0; n < N; n++) {
        for (oh = 0; oh < OH; oh++) {
            const float *d = dy + ((long)(n * 6 + m0) * OH + oh) * OW;
            const float *xr = x + ((long)n * H + oh + kh) * W;
            s = 0;
            while (s + LF_W <= OW || (rem && s < OW)) {
                int shifted = s + LF_W > OW;
                if (shifted) s = last;
                for (m = 0; m < LF_G6_M; m++) {
                    g[m] = lf_load(d + (long)m * OH * OW + s);
                    if (shifted) g[m] = lf_keep_from(g[m], LF_W - rem);
                    if (kh == 0) bsum[m] = lf_add(bsum[m], g[m]);
                }
                for (kw = 0; kw < 5; kw++) {
                    xv = lf_load(xr + s + kw);
                    for (m = 0; m < LF_G6_M; m++) acc[m][kw] = lf_fma(g[m], xv, acc[m][kw]);
                }
                s += LF_W;
            }
        }
    }
    for (m = 0; m < LF_G6_M; m++) {
        for (kw = 0; kw < 5; kw++) dw[(m0 + m) * 25 + kh * 5 + kw] += lf_hsum(acc[m][kw]);
        if (kh == 0) db[m0 + m] += lf_hsum(bsum[m]);
    }
}

/* ------------------------------------------------------------------ 2x2 max pooling */
/* n <= W outputs of a row from 2n inputs of each of the rows r0, r1 (n < W: loaded
   zero-padded, only n outputs stored): m = max(max(r0, r1) at 2j, at 2j + 1),
   NaN-propagating as np.maximum (then max(m, 0) with relu). */
static inline void lf_maxpool_step(float *y, const float *r0, const float *r1, int n,
                                   int relu) {
    int n0 = lf_imin(LF_W, 2 * n), n1 = lf_imax(0, 2 * n - LF_W);
    lf_v a, b, m;
    if (n == LF_W) {
        a = lf_maxnan(lf_load(r0), lf_load(r1));
        b = lf_maxnan(lf_load(r0 + LF_W), lf_load(r1 + LF_W));
    } else {
        a = lf_maxnan(lf_load_n(r0, n0), lf_load_n(r1, n0));
        b = lf_maxnan(lf_load_n(r0 + LF_W, n1), lf_load_n(r1 + LF_W, n1));
    }
    m = lf_maxnan(lf_even(a, b), lf_odd(a, b));
    if (relu) m = lf_maxnan(m, lf_zero());
    lf_store_n(y, m, n);
}

/* The gradient of n <= W outputs: dyr goes to each block's first maximum in row-major
   order (a NaN counts as the maximum), none where relu and not m > 0; 2n floats of each
   of the rows d0, d1 written. */
static inline void lf_maxpool_grad_step(float *d0, float *d1, const float *r0, const float *r1,
                                        const float *dyr, int n, int relu) {
    int n0 = lf_imin(LF_W, 2 * n), n1 = lf_imax(0, 2 * n - LF_W);
    lf_v a0 = lf_load_n(r0, n0), a1 = lf_load_n(r0 + LF_W, n1);
    lf_v b0 = lf_load_n(r1, n0), b1 = lf_load_n(r1 + LF_W, n1);
    lf_v v0 = lf_even(a0, a1), v1 = lf_odd(a0, a1), v2 = lf_even(b0, b1), v3 = lf_odd(b0, b1);
    lf_v m = lf_maxnan(lf_maxnan(v0, v1), lf_maxnan(v2, v3));
    lf_v g = lf_load_n(dyr, n), e0, e1, e2, seen, o0, o1, o2, o3;
    if (relu) g = lf_and(lf_gt(m, lf_zero()), g);
    e0 = lf_eq_or_nan(v0, m);
    e1 = lf_andnot(e0, lf_eq_or_nan(v1, m));
    seen = lf_or(e0, e1);
    e2 = lf_andnot(seen, lf_eq_or_nan(v2, m));
    seen = lf_or(seen, e2);
    o0 = lf_and(e0, g);
    o1 = lf_and(e1, g);
    o2 = lf_and(e2, g);
    o3 = lf_andnot(seen, g);
    lf_store_n(d0, lf_zip_lo(o0, o1), n0);
    lf_store_n(d0 + LF_W, lf_zip_hi(o0, o1), n1);
    lf_store_n(d1, lf_zip_lo(o2, o3), n0);
    lf_store_n(d1 + LF_W, lf_zip_hi(o2, o3), n1);
}

/* One output row from input rows r0, r1 (2 OW floats each), in steps of W outputs: in
   a row of W or more, the last step shifted back to end at the row's end (recomputing
   outputs identically); a shorter row in one partial step. */
static void lf_maxpool_row(float *y, const float *r0, const float *r1, int OW, int relu) {
    int j, o;
    if (OW < LF_W) {
        lf_maxpool_step(y, r0, r1, OW, relu);
        return;
    }
    for (j = 0; j < OW; j += LF_W) {
        o = lf_imin(j, OW - LF_W);
        lf_maxpool_step(y + o, r0 + 2 * o, r1 + 2 * o, LF_W, relu);
    }
}

/* The rows d0, d1 (2 OW floats each) of the input gradient <- dyr (OW floats). */
static void lf_maxpool_grad_row(float *d0, float *d1, const float *r0, const float *r1,
                                const float *dyr, int OW, int relu) {
    int j, o;
    if (OW < LF_W) {
        lf_maxpool_grad_step(d0, d1, r0, r1, dyr, OW, relu);
        return;
    }
    for (j = 0; j < OW; j += LF_W) {
        o = lf_imin(j, OW - LF_W);
        lf_maxpool_grad_step(d0 + 2 * o, d1 + 2 * o, r0 + 2 * o, r1 + 2 * o, dyr + o, LF_W, relu);
    }
}

/* ------------------------------------------------------------------ dense layers */
/* y[n0 + r, o0 + c] = b[o0 + c] + x[n0 + r] . w[o0 + c] for r < RN and c < 4 (CN = 4) or
   c = 0 (CN = 1): each dot product in one vector chain along the inputs (the last vector
   zero-padded), then lf_hsum, then the bias. The same sums in every tile, so a sample's
   outputs do not depend on the batch around it. */
LF_INLINE void lf_dot_step(lf_v acc[LF_DR][4], const float *x, const float *w, int I, int i,
                           int n, const int RN, const int CN, const int PART) {
    lf_v xv[LF_DR], wv;
    int r, c;
    for (r = 0; r < RN; r++) xv[r] = PART ? lf_load_n(x + r * I + i, n) : lf_load(x + r * I + i);
    for (c = 0; c < CN; c++) {
        wv = PART ? lf_load_n(w + c * I + i, n) : lf_load(w + c * I + i);
        for (r = 0; r < RN; r++) acc[r][c] = lf_fma(xv[r], wv, acc[r][c]);
    }
}

LF_INLINE void lf_dot_tile(float *y, int O, const float *x, const float *w, const float *b,
                           int I, const int RN, const int CN) {
    lf_v acc[LF_DR][4];
    int i, r, c;
    for (r = 0; r < RN; r++)
        for (c = 0; c < CN; c++) acc[r][c] = lf_zero();
    for (i = 0; i + LF_W <= I; i += LF_W) lf_dot_step(acc, x, w, I, i, LF_W, RN, CN, 0);
    if (i < I) lf_dot_step(acc, x, w, I, i, I - i, RN, CN, 1);
    for (r = 0; r < RN; r++)
        for (c = 0; c < CN; c++) y[r * O + c] = lf_hsum(acc[r][c]) + b[c];
}

#define LF_DOT_TILE(name, RN, CN)                                                          \
    static void name(float *y, int O, const float *x, const float *w, const float *b,     \
                     int I) {                                                              \
        lf_dot_tile(y, O, x, w, b, I, RN, CN);                                             \
    }
LF_DOT_TILE(lf_dot_rx4, LF_DR, 4)
LF_DOT_TILE(lf_dot_1x4, 1, 4)
LF_DOT_TILE(lf_dot_1x1, 1, 1)

/* Job `job` of lf_dot_jobs(N, O) of y (N, O) = x (N, I) w (O, I)^T + b: LF_DR samples
   by four outputs (a partial tile a sample at a time). */
static inline int lf_dot_jobs(int N, int O) { return ((N + LF_DR - 1) / LF_DR) * ((O + 3) / 4); }

static void lf_dot_job(float *y, const float *x, const float *w, const float *b, int N, int I,
                       int O, int job) {
    int ob = (O + 3) / 4, n0 = (job / ob) * LF_DR, o0 = (job % ob) * 4, n, o;
    if (o0 + 4 <= O) {
        if (n0 + LF_DR <= N) {
            lf_dot_rx4(y + n0 * O + o0, O, x + n0 * I, w + o0 * I, b + o0, I);
            return;
        }
        for (n = n0; n < N; n++) lf_dot_1x4(y + n * O + o0, O, x + n * I, w + o0 * I, b + o0, I);
        return;
    }
    for (n = n0; n < lf_imin(n0 + LF_DR, N); n++)
        for (o = o0; o < O; o++) lf_dot_1x1(y + n * O + o, O, x + n * I, w + o * I, b + o, I);
}

/* out[r, c] = init[r, c] (or 0) + sum_{k < K} a[k*sk + r*sr] * bm[k*ldb + c] for r < RR
   and c < cols (cols <= LF_OC * LF_W; PART: the columns' last vector loaded and stored
   zero-padded), k in increasing order: a rank-K update, R rows x 2 vectors of
   accumulators. (sk, sr) = (lda, 1) reads a by columns (dw), (1, lda) by rows (dx). */
LF_INLINE void lf_outer_tile(float *out, int ldo, const float *a, int sk, int sr,
                             const float *bm, int ldb, int K, const float *init, int ldi,
                             int cols, const int RR, const int PART) {
    lf_v c[LF_OR][LF_OC], b[LF_OC], s;
    int r, v, k, nv[LF_OC];
    for (v = 0; v < LF_OC; v++) nv[v] = lf_imax(0, lf_imin(LF_W, cols - v * LF_W));
    for (r = 0; r < RR; r++)
        for (v = 0; v < LF_OC; v++)
            c[r][v] = init == NULL ? lf_zero()
                    : PART ? lf_load_n(init + r * ldi + v * LF_W, nv[v])
                    : lf_load(init + r * ldi + v * LF_W);
    for (k = 0; k < K; k++) {
        const float *ak = a + (long)k * sk, *bk = bm + (long)k * ldb;
        for (v = 0; v < LF_OC; v++) b[v] = PART ? lf_load_n(bk + v * LF_W, nv[v]) : lf_load(bk + v * LF_W);
        for (r = 0; r < RR; r++) {
            s = lf_bcast(ak[r * sr]);
            for (v = 0; v < LF_OC; v++) c[r][v] = lf_fma(s, b[v], c[r][v]);
        }
    }
    for (r = 0; r < RR; r++)
        for (v = 0; v < LF_OC; v++) {
            if (PART) lf_store_n(out + r * ldo + v * LF_W, c[r][v], nv[v]);
            else lf_store(out + r * ldo + v * LF_W, c[r][v]);
        }
}

#define LF_OUTER_TILE(name, RR, PART)                                                       \
    static void name(float *out, int ldo, const float *a, int sk, int sr, const float *bm, \
                     int ldb, int K, const float *init, int ldi, int cols) {                \
        lf_outer_tile(out, ldo, a, sk, sr, bm, ldb, K, init, ldi, cols, RR, PART);          \
    }
LF_OUTER_TILE(lf_outer_full, LF_OR, 0)
LF_OUTER_TILE(lf_outer_cols, LF_OR, 1)
LF_OUTER_TILE(lf_outer_row, 1, 0)
LF_OUTER_TILE(lf_outer_part, 1, 1)

/* Tiles of an (rows x cols) product: LF_OR rows by LF_OC vectors of columns. */
static inline int lf_outer_jobs(int rows, int cols) {
    return ((rows + LF_OR - 1) / LF_OR) * ((cols + LF_OC * LF_W - 1) / (LF_OC * LF_W));
}

/* Tile `job` of out (rows, cols) = init (or 0) + the rank-K update of lf_outer_tile (row r
   of a at a + r * sr, of init at init + r * ldi; init may be out itself). A partial tile
   goes a row at a time, partial columns zero-padded: every element has the same sum
   whichever tile holds it. */
static void lf_outer_job(float *out, int ldo, const float *a, int sk, int sr, const float *bm,
                         int ldb, int K, const float *init, int ldi, int rows, int cols,
                         int job) {
    int cb = (cols + LF_OC * LF_W - 1) / (LF_OC * LF_W), r0 = (job / cb) * LF_OR;
    int c0 = (job % cb) * LF_OC * LF_W, nc = lf_imin(LF_OC * LF_W, cols - c0), r;
    const float *in0 = init ? init + c0 : NULL;
    int whole = r0 + LF_OR <= rows, step = whole ? LF_OR : 1;
    void (*tile)(float *, int, const float *, int, int, const float *, int, int,
                 const float *, int, int) =
        nc == LF_OC * LF_W ? (whole ? lf_outer_full : lf_outer_row)
                           : (whole ? lf_outer_cols : lf_outer_part);
    for (r = r0; r < lf_imin(rows, r0 + LF_OR); r += step)
        tile(out + r * ldo + c0, ldo, a + r * sr, sk, sr, bm + c0, ldb, K,
             in0 ? in0 + r * ldi : NULL, ldi, nc);
}
#endif
