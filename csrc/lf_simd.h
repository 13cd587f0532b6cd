/* Float vectors of the running path's width, for every kernel (lf_kernels.h, and the
   Cython files through lf_simd.pxd).

   LF_W     floats per vector: 16 on avx512 (one zmm), 8 on avx2 (one ymm), 4 on the
            portable path (one xmm on x86-64, one NEON q register on aarch64).
   LF_NREG  vector registers of the path's register file: 32 (avx512, aarch64) or 16
            (avx2, SSE). Every kernel sizes its register tile from LF_W and LF_NREG.

   With gcc or clang these are GNU vector extensions: the compiler maps them to the
   target's registers, a*b+c contracting to one FMA where the target has it (avx2,
   avx512, NEON). Elsewhere (MSVC) a plain struct of LF_W floats with loops, so the same
   kernels build everywhere. Loads and stores are unaligned (memcpy), so any float* works.
   The kernels sum each output in an order fixed by the code, never by the batch or the
   thread count; lf_hsum adds lanes in a fixed tree (halves, then quarters, ...). */
#ifndef LF_SIMD_H
#define LF_SIMD_H
#include <string.h>
#include <stdint.h>
#include <math.h>

#if defined(__AVX512F__)
#define LF_W 16
#elif defined(__AVX2__)
#define LF_W 8
#else
#define LF_W 4
#endif
#if defined(__AVX512F__) || defined(__aarch64__) || defined(_M_ARM64)
#define LF_NREG 32
#else
#define LF_NREG 16
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LF_GNU_VECTORS 1
#define LF_INLINE static inline __attribute__((always_inline))
typedef float lf_v __attribute__((vector_size(4 * LF_W)));
typedef int32_t lf_vi __attribute__((vector_size(4 * LF_W)));
static inline lf_v lf_zero(void) { lf_v z = {0}; return z; }
static inline lf_v lf_bcast(float s) { return s - lf_zero(); }
static inline lf_v lf_fma(lf_v a, lf_v b, lf_v c) { return a * b + c; }
static inline lf_v lf_mul(lf_v a, lf_v b) { return a * b; }
static inline lf_v lf_add(lf_v a, lf_v b) { return a + b; }
static inline lf_vi lf__bits(lf_v a) { lf_vi b; memcpy(&b, &a, sizeof b); return b; }
static inline lf_v lf__float(lf_vi b) { lf_v a; memcpy(&a, &b, sizeof a); return a; }
/* 0, 1, ..., LF_W - 1 */
static inline lf_vi lf__iota(void) {
    static const int32_t k[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    lf_vi v;
    memcpy(&v, k, sizeof v);
    return v;
}
/* Lanes i >= k keep their bits, lanes i < k become +0.0 (a bitwise mask: NaN-safe). */
static inline lf_v lf_keep_from(lf_v a, int k) { return lf__float(lf__bits(a) & (lf__iota() >= k)); }
/* Bitwise lane logic on masks held as lf_v (all-ones or all-zero lanes). */
static inline lf_v lf_and(lf_v a, lf_v b) { return lf__float(lf__bits(a) & lf__bits(b)); }
static inline lf_v lf_or(lf_v a, lf_v b) { return lf__float(lf__bits(a) | lf__bits(b)); }
/* (~a) & b */
static inline lf_v lf_andnot(lf_v a, lf_v b) { return lf__float(~lf__bits(a) & lf__bits(b)); }
static inline lf_v lf__sel(lf_vi m, lf_v a, lf_v b) { return lf__float((m & lf__bits(a)) | (~m & lf__bits(b))); }
/* Mask of lanes where a == b or a is NaN. */
static inline lf_v lf_eq_or_nan(lf_v a, lf_v b) { return lf__float((a == b) | (a != a)); }
static inline lf_v lf_gt(lf_v a, lf_v b) { return lf__float(a > b); }
/* NaN-propagating max, as np.maximum: a where a >= b or a is NaN, else b. */
static inline lf_v lf_maxnan(lf_v a, lf_v b) { return lf__sel((a >= b) | (a != a), a, b); }
static inline lf_v lf_from_int(lf_vi k) { return __builtin_convertvector(k, lf_v); }
static inline lf_vi lf_to_int(lf_v x) { return __builtin_convertvector(x, lf_vi); }
#if defined(__clang__)
/* clang has no two-vector shuffle with a computed mask: lanes through memory. */
#define LF_SHUFFLE2(a, b, idx)                                                             \
    do {                                                                                   \
        float t_[2 * LF_W], r_[LF_W];                                                      \
        int i_;                                                                            \
        memcpy(t_, &(a), sizeof(lf_v));                                                    \
        memcpy(t_ + LF_W, &(b), sizeof(lf_v));                                             \
        for (i_ = 0; i_ < LF_W; i_++) r_[i_] = t_[(idx)[i_]];                              \
        memcpy(&(a), r_, sizeof(lf_v));                                                    \
    } while (0)
static inline lf_v lf__shuffle(lf_v a, lf_v b, lf_vi idx) { LF_SHUFFLE2(a, b, idx); return a; }
#else
static inline lf_v lf__shuffle(lf_v a, lf_v b, lf_vi idx) { return __builtin_shuffle(a, b, idx); }
#endif
#else
#define LF_GNU_VECTORS 0
#define LF_INLINE static __forceinline
typedef struct { float v[LF_W]; } lf_v;
typedef struct { int32_t v[LF_W]; } lf_vi;
#define LF__MAP(expr) do { int i; for (i = 0; i < LF_W; i++) { expr; } } while (0)
static inline lf_v lf_zero(void) { lf_v z; LF__MAP(z.v[i] = 0); return z; }
static inline lf_v lf_bcast(float s) { lf_v r; LF__MAP(r.v[i] = s); return r; }
static inline lf_v lf_fma(lf_v a, lf_v b, lf_v c) { LF__MAP(c.v[i] += a.v[i] * b.v[i]); return c; }
static inline lf_v lf_mul(lf_v a, lf_v b) { LF__MAP(a.v[i] *= b.v[i]); return a; }
static inline lf_v lf_add(lf_v a, lf_v b) { LF__MAP(a.v[i] += b.v[i]); return a; }
static inline uint32_t lf__u(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }
static inline float lf__f(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline float lf__mask(int on) { return lf__f(on ? 0xffffffffu : 0u); }
static inline lf_v lf_keep_from(lf_v a, int k) { LF__MAP(if (i < k) a.v[i] = 0); return a; }
static inline lf_v lf_and(lf_v a, lf_v b) { LF__MAP(a.v[i] = lf__f(lf__u(a.v[i]) & lf__u(b.v[i]))); return a; }
static inline lf_v lf_or(lf_v a, lf_v b) { LF__MAP(a.v[i] = lf__f(lf__u(a.v[i]) | lf__u(b.v[i]))); return a; }
static inline lf_v lf_andnot(lf_v a, lf_v b) { LF__MAP(a.v[i] = lf__f(~lf__u(a.v[i]) & lf__u(b.v[i]))); return a; }
static inline lf_v lf_eq_or_nan(lf_v a, lf_v b) { LF__MAP(a.v[i] = lf__mask(a.v[i] == b.v[i] || a.v[i] != a.v[i])); return a; }
static inline lf_v lf_gt(lf_v a, lf_v b) { LF__MAP(a.v[i] = lf__mask(a.v[i] > b.v[i])); return a; }
static inline lf_v lf_maxnan(lf_v a, lf_v b) { LF__MAP(if (!(a.v[i] >= b.v[i] || a.v[i] != a.v[i])) a.v[i] = b.v[i]); return a; }
static inline lf_v lf__shuffle(lf_v a, lf_v b, lf_vi idx) {
    float t[2 * LF_W];
    lf_v r;
    memcpy(t, a.v, sizeof a.v);
    memcpy(t + LF_W, b.v, sizeof b.v);
    LF__MAP(r.v[i] = t[idx.v[i]]);
    return r;
}
#endif

static inline lf_v lf_load(const float *p) { lf_v v; memcpy(&v, p, sizeof v); return v; }
static inline void lf_store(float *p, lf_v v) { memcpy(p, &v, sizeof v); }
/* Lanes lo..hi-1 (0 <= lo <= hi <= LF_W) of v stored to p[lo..hi-1], nothing else
   written; lf_load_n: the first n floats at p, zeros after them (reads only those n).
   Masked loads and stores where the path has them, else through a buffer. */
#if (LF_W == 16 || LF_W == 8) && (defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER))
#include <immintrin.h>
#if LF_W == 16
typedef __m512 lf__m;
typedef __mmask16 lf__k;
static inline lf__k lf__mask(int lo, int hi) {
    return (lf__k)((((1u << hi) - 1u) & ~((1u << lo) - 1u)) & 0xffffu);
}
#define LF__MLOAD(k, p) _mm512_maskz_loadu_ps(k, p)
#define LF__MSTORE(p, k, m) _mm512_mask_storeu_ps(p, k, m)
#else
typedef __m256 lf__m;
typedef __m256i lf__k;
static inline lf__k lf__mask(int lo, int hi) {
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), i),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), i));
}
#define LF__MLOAD(k, p) _mm256_maskload_ps(p, k)
#define LF__MSTORE(p, k, m) _mm256_maskstore_ps(p, k, m)
#endif
static inline lf_v lf_load_n(const float *p, int n) {
    lf__m m = LF__MLOAD(lf__mask(0, n), p);
    lf_v v;
    memcpy(&v, &m, sizeof v);
    return v;
}
static inline void lf_store_lanes(float *p, lf_v v, int lo, int hi) {
    lf__m m;
    memcpy(&m, &v, sizeof m);
    LF__MSTORE(p, lf__mask(lo, hi), m);
}
#else
static inline lf_v lf_load_n(const float *p, int n) {
    float t[LF_W] = {0};
    memcpy(t, p, sizeof(float) * (size_t)n);
    return lf_load(t);
}
static inline void lf_store_lanes(float *p, lf_v v, int lo, int hi) {
    float t[LF_W];
    lf_store(t, v);
    if (hi > lo) memcpy(p + lo, t + lo, sizeof(float) * (size_t)(hi - lo));
}
#endif
static inline void lf_store_n(float *p, lf_v v, int n) { lf_store_lanes(p, v, 0, n); }

/* Sum of the lanes in a fixed order: lanes i and i + LF_W/2 first, then the halves of
   what is left, ... (for 8 lanes: ((0+4)+(2+6)) + ((1+5)+(3+7))), in vector halves. */
#if LF_GNU_VECTORS
typedef float lf__f16 __attribute__((vector_size(64)));
typedef float lf__f8 __attribute__((vector_size(32)));
typedef float lf__f4 __attribute__((vector_size(16)));
/* The low half of a plus its high half. */
#define LF__FOLD(name, half_t, whole_t)                                                    \
    static inline half_t name(whole_t a) {                                                 \
        half_t l, h;                                                                       \
        memcpy(&l, &a, sizeof l);                                                          \
        memcpy(&h, (const char *)&a + sizeof l, sizeof h);                                 \
        return l + h;                                                                      \
    }
#if LF_W == 16
LF__FOLD(lf__fold16, lf__f8, lf__f16)
#endif
#if LF_W >= 8
LF__FOLD(lf__fold8, lf__f4, lf__f8)
#endif
static inline float lf_hsum(lf_v a) {
#if LF_W == 16
    lf__f4 q = lf__fold8(lf__fold16(a));
#elif LF_W == 8
    lf__f4 q = lf__fold8(a);
#else
    lf__f4 q = a;
#endif
    return (q[0] + q[2]) + (q[1] + q[3]);
}
#else
static inline float lf_hsum(lf_v a) {
    float t[LF_W];
    int n, i;
    lf_store(t, a);
    for (n = LF_W / 2; n >= 1; n /= 2)
        for (i = 0; i < n; i++) t[i] = t[i] + t[i + n];
    return t[0];
}
#endif

/* Lane permutations of two vectors (a, b) = lanes 0..2W-1: the even and the odd lanes,
   and the interleaving of the low (high) halves of a and b. */
#if LF_GNU_VECTORS
static inline lf_vi lf__perm(int kind) {
    lf_vi i = lf__iota();
    return kind == 0 ? 2 * i : kind == 1 ? 2 * i + 1
         : (i >> 1) + (i & 1) * LF_W + (kind == 3 ? LF_W / 2 : 0);
}
#else
static inline lf_vi lf__perm(int kind) {
    lf_vi idx;
    int i;
    for (i = 0; i < LF_W; i++)
        idx.v[i] = kind == 0 ? 2 * i : kind == 1 ? 2 * i + 1
                 : (i / 2) + (i % 2) * LF_W + (kind == 3 ? LF_W / 2 : 0);
    return idx;
}
#endif
static inline lf_v lf_even(lf_v a, lf_v b) { return lf__shuffle(a, b, lf__perm(0)); }
static inline lf_v lf_odd(lf_v a, lf_v b) { return lf__shuffle(a, b, lf__perm(1)); }
static inline lf_v lf_zip_lo(lf_v a, lf_v b) { return lf__shuffle(a, b, lf__perm(2)); }
static inline lf_v lf_zip_hi(lf_v a, lf_v b) { return lf__shuffle(a, b, lf__perm(3)); }

/* tanh on every lane, to about 2e-7 absolute error: an odd Taylor polynomial below
   |x| = 0.4, else 1 - 2 / (e^(2|x|) + 1) with e^y = 2^k e^r, |r| <= ln2 / 2, e^r by its
   Taylor series to degree 7; |x| is clamped at 9 (tanh(9) rounds to 1 in float). NaN
   propagates (through the polynomial branch). */
#if LF_GNU_VECTORS
static inline lf_v lf_tanh(lf_v x) {
    const lf_v zero = lf_zero();
    lf_v ax = lf__sel(x < zero, -x, x);
    lf_v x2 = x * x;
    /* tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 - 1382x^11/155925 */
    lf_v p = -1382.0f / 155925.0f + x2 * 0.0f;
    p = p * x2 + 62.0f / 2835.0f;
    p = p * x2 - 17.0f / 315.0f;
    p = p * x2 + 2.0f / 15.0f;
    p = p * x2 - 1.0f / 3.0f;
    lf_v small = x + x * x2 * p;
    lf_v nine = lf_bcast(9.0f);
    lf_v y = 2.0f * lf__sel(ax < nine, ax, nine);
    lf_v kf = y * 1.44269504088896341f + 0.5f;
    lf_vi k = lf_to_int(kf);
    kf = lf_from_int(k);
    lf_v r = y - kf * 0.693145751953125f - kf * 1.42860682030941723e-6f;
    lf_v e = 1.0f / 5040.0f + r * 0.0f;
    e = e * r + 1.0f / 720.0f;
    e = e * r + 1.0f / 120.0f;
    e = e * r + 1.0f / 24.0f;
    e = e * r + 1.0f / 6.0f;
    e = e * r + 0.5f;
    e = e * r + 1.0f;
    e = e * r + 1.0f;
    e = e * lf__float((k + 127) << 23);
    lf_v big = 1.0f - 2.0f / (e + 1.0f);
    big = lf__sel(x < zero, -big, big);
    return lf__sel((ax < lf_bcast(0.4f)) | (ax != ax), small, big);
}
#else
static inline lf_v lf_tanh(lf_v x) { LF__MAP(x.v[i] = tanhf(x.v[i])); return x; }
#endif

/* out[i] = a * tanh(s * x[i]) for i < n, every element through lf_tanh (the last
   partial vector through a zero-padded one), so that an element's value does not
   depend on where it sits in the array. */
static inline void lf_scaled_tanh(float *out, const float *x, long n, float a, float s) {
    long i = 0;
    for (; i + LF_W <= n; i += LF_W)
        lf_store(out + i, lf_mul(lf_bcast(a), lf_tanh(lf_mul(lf_bcast(s), lf_load(x + i)))));
    if (i < n)
        lf_store_n(out + i, lf_mul(lf_bcast(a), lf_tanh(lf_mul(lf_bcast(s),
                   lf_load_n(x + i, (int)(n - i))))), (int)(n - i));
}
#endif
