/* Eight-float vectors for the Cython kernels.

   With gcc or clang these are GNU vector extensions: the compiler maps them to AVX
   (-mavx2 -mfma: one ymm register, a*b+c contracted to one FMA), to pairs of SSE
   registers, or to NEON, whatever the target. Elsewhere (MSVC) they are a plain
   struct of eight floats with loops, so the same kernels build everywhere.
   Loads and stores are unaligned (memcpy), so any float* works. */
#ifndef LF_SIMD_H
#define LF_SIMD_H
#include <string.h>
#include <stdint.h>
#include <math.h>

#if defined(__GNUC__) || defined(__clang__)
typedef float lf_v8 __attribute__((vector_size(32)));
typedef int32_t lf_i8 __attribute__((vector_size(32)));
static inline lf_v8 lf_zero(void) { lf_v8 z = {0, 0, 0, 0, 0, 0, 0, 0}; return z; }
static inline lf_v8 lf_load(const float *p) { lf_v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void lf_store(float *p, lf_v8 v) { memcpy(p, &v, sizeof v); }
static inline lf_v8 lf_bcast(float s) { lf_v8 v = {s, s, s, s, s, s, s, s}; return v; }
static inline lf_v8 lf_fma(lf_v8 a, lf_v8 b, lf_v8 c) { return a * b + c; }
static inline lf_v8 lf_mul(lf_v8 a, lf_v8 b) { return a * b; }
static inline lf_v8 lf_add(lf_v8 a, lf_v8 b) { return a + b; }
/* Lanes i >= k keep their bits, lanes i < k become +0.0 (a bitwise mask: NaN-safe). */
static inline lf_v8 lf_keep_from(lf_v8 a, int k) {
    lf_i8 idx = {0, 1, 2, 3, 4, 5, 6, 7};
    lf_i8 kk = {k, k, k, k, k, k, k, k};
    lf_i8 m = idx >= kk;
    lf_i8 bits;
    memcpy(&bits, &a, sizeof bits);
    bits &= m;
    memcpy(&a, &bits, sizeof a);
    return a;
}
/* Bitwise lane logic on masks held as lf_v8 (all-ones or all-zero lanes). */
static inline lf_i8 lf__bits(lf_v8 a) { lf_i8 b; memcpy(&b, &a, sizeof b); return b; }
static inline lf_v8 lf__float(lf_i8 b) { lf_v8 a; memcpy(&a, &b, sizeof a); return a; }
static inline lf_v8 lf_and(lf_v8 a, lf_v8 b) { return lf__float(lf__bits(a) & lf__bits(b)); }
static inline lf_v8 lf_or(lf_v8 a, lf_v8 b) { return lf__float(lf__bits(a) | lf__bits(b)); }
/* (~a) & b */
static inline lf_v8 lf_andnot(lf_v8 a, lf_v8 b) { return lf__float(~lf__bits(a) & lf__bits(b)); }
/* Mask of lanes where a == b or a is NaN. */
static inline lf_v8 lf_eq_or_nan(lf_v8 a, lf_v8 b) { return lf__float((a == b) | (a != a)); }
static inline lf_v8 lf_gt(lf_v8 a, lf_v8 b) { return lf__float(a > b); }
/* NaN-propagating max, as np.maximum: a where a >= b or a is NaN, else b. */
static inline lf_v8 lf_maxnan(lf_v8 a, lf_v8 b) {
    lf_i8 m = (a >= b) | (a != a);
    return lf__float((m & lf__bits(a)) | (~m & lf__bits(b)));
}
/* tanh on eight lanes, to about 2e-7 absolute error: an odd Taylor polynomial below
   |x| = 0.4, else 1 - 2 / (e^(2|x|) + 1) with e^y = 2^k e^r, |r| <= ln2 / 2, e^r by its
   Taylor series to degree 7; |x| is clamped at 9 (tanh(9) rounds to 1 in float). NaN
   propagates (through the polynomial branch). */
static inline lf_v8 lf__sel(lf_i8 m, lf_v8 a, lf_v8 b) {
    return lf__float((m & lf__bits(a)) | (~m & lf__bits(b)));
}
static inline lf_v8 lf_tanh(lf_v8 x) {
    const lf_v8 zero = lf_zero();
    lf_v8 ax = lf__sel(x < zero, -x, x);
    lf_v8 x2 = x * x;
    /* tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 - 1382x^11/155925 */
    lf_v8 p = -1382.0f / 155925.0f + x2 * 0.0f;
    p = p * x2 + 62.0f / 2835.0f;
    p = p * x2 - 17.0f / 315.0f;
    p = p * x2 + 2.0f / 15.0f;
    p = p * x2 - 1.0f / 3.0f;
    lf_v8 small = x + x * x2 * p;
    lf_v8 nine = lf_bcast(9.0f);
    lf_v8 y = 2.0f * lf__sel(ax < nine, ax, nine);
    lf_v8 kf = y * 1.44269504088896341f + 0.5f;
    lf_i8 k = __builtin_convertvector(kf, lf_i8);
    kf = __builtin_convertvector(k, lf_v8);
    lf_v8 r = y - kf * 0.693145751953125f - kf * 1.42860682030941723e-6f;
    lf_v8 e = 1.0f / 5040.0f + r * 0.0f;
    e = e * r + 1.0f / 720.0f;
    e = e * r + 1.0f / 120.0f;
    e = e * r + 1.0f / 24.0f;
    e = e * r + 1.0f / 6.0f;
    e = e * r + 0.5f;
    e = e * r + 1.0f;
    e = e * r + 1.0f;
    lf_i8 bits = (k + 127) << 23;
    lf_v8 scale;
    memcpy(&scale, &bits, sizeof scale);
    e = e * scale;
    lf_v8 big = 1.0f - 2.0f / (e + 1.0f);
    big = lf__sel(x < zero, -big, big);
    return lf__sel((ax < lf_bcast(0.4f)) | (ax != ax), small, big);
}
#if defined(__clang__)
static inline lf_v8 lf_even(lf_v8 a, lf_v8 b) { return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14); }
static inline lf_v8 lf_odd(lf_v8 a, lf_v8 b) { return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15); }
static inline lf_v8 lf_zip_lo(lf_v8 a, lf_v8 b) { return __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11); }
static inline lf_v8 lf_zip_hi(lf_v8 a, lf_v8 b) { return __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15); }
#else
static inline lf_v8 lf_even(lf_v8 a, lf_v8 b) { lf_i8 i = {0, 2, 4, 6, 8, 10, 12, 14}; return __builtin_shuffle(a, b, i); }
static inline lf_v8 lf_odd(lf_v8 a, lf_v8 b) { lf_i8 i = {1, 3, 5, 7, 9, 11, 13, 15}; return __builtin_shuffle(a, b, i); }
static inline lf_v8 lf_zip_lo(lf_v8 a, lf_v8 b) { lf_i8 i = {0, 8, 1, 9, 2, 10, 3, 11}; return __builtin_shuffle(a, b, i); }
static inline lf_v8 lf_zip_hi(lf_v8 a, lf_v8 b) { lf_i8 i = {4, 12, 5, 13, 6, 14, 7, 15}; return __builtin_shuffle(a, b, i); }
#endif
#else
typedef struct { float v[8]; } lf_v8;
static inline lf_v8 lf_zero(void) { lf_v8 z; int i; for (i = 0; i < 8; i++) z.v[i] = 0; return z; }
static inline lf_v8 lf_load(const float *p) { lf_v8 v; memcpy(v.v, p, sizeof v.v); return v; }
static inline void lf_store(float *p, lf_v8 v) { memcpy(p, v.v, sizeof v.v); }
static inline lf_v8 lf_bcast(float s) { lf_v8 v; int i; for (i = 0; i < 8; i++) v.v[i] = s; return v; }
static inline lf_v8 lf_fma(lf_v8 a, lf_v8 b, lf_v8 c) { int i; for (i = 0; i < 8; i++) c.v[i] += a.v[i] * b.v[i]; return c; }
static inline lf_v8 lf_mul(lf_v8 a, lf_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] *= b.v[i]; return a; }
static inline lf_v8 lf_add(lf_v8 a, lf_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] += b.v[i]; return a; }
static inline lf_v8 lf_keep_from(lf_v8 a, int k) { int i; for (i = 0; i < k && i < 8; i++) a.v[i] = 0; return a; }
static inline lf_v8 lf_tanh(lf_v8 x) { int i; for (i = 0; i < 8; i++) x.v[i] = tanhf(x.v[i]); return x; }
static inline lf_v8 lf__mask(int on) { lf_v8 r; uint32_t b = on ? 0xffffffffu : 0u; int i; for (i = 0; i < 8; i++) memcpy(&r.v[i], &b, 4); return r; }
static inline uint32_t lf__u(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }
static inline float lf__f(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline lf_v8 lf_and(lf_v8 a, lf_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] = lf__f(lf__u(a.v[i]) & lf__u(b.v[i])); return a; }
static inline lf_v8 lf_or(lf_v8 a, lf_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] = lf__f(lf__u(a.v[i]) | lf__u(b.v[i])); return a; }
static inline lf_v8 lf_andnot(lf_v8 a, lf_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] = lf__f(~lf__u(a.v[i]) & lf__u(b.v[i])); return a; }
static inline lf_v8 lf_eq_or_nan(lf_v8 a, lf_v8 b) { lf_v8 r; int i; for (i = 0; i < 8; i++) r.v[i] = lf__mask(a.v[i] == b.v[i] || a.v[i] != a.v[i]).v[0]; return r; }
static inline lf_v8 lf_gt(lf_v8 a, lf_v8 b) { lf_v8 r; int i; for (i = 0; i < 8; i++) r.v[i] = lf__mask(a.v[i] > b.v[i]).v[0]; return r; }
static inline lf_v8 lf_maxnan(lf_v8 a, lf_v8 b) { int i; for (i = 0; i < 8; i++) if (!(a.v[i] >= b.v[i] || a.v[i] != a.v[i])) a.v[i] = b.v[i]; return a; }
static inline lf_v8 lf_even(lf_v8 a, lf_v8 b) { lf_v8 r; int i; for (i = 0; i < 4; i++) { r.v[i] = a.v[2 * i]; r.v[i + 4] = b.v[2 * i]; } return r; }
static inline lf_v8 lf_odd(lf_v8 a, lf_v8 b) { lf_v8 r; int i; for (i = 0; i < 4; i++) { r.v[i] = a.v[2 * i + 1]; r.v[i + 4] = b.v[2 * i + 1]; } return r; }
static inline lf_v8 lf_zip_lo(lf_v8 a, lf_v8 b) { lf_v8 r; int i; for (i = 0; i < 4; i++) { r.v[2 * i] = a.v[i]; r.v[2 * i + 1] = b.v[i]; } return r; }
static inline lf_v8 lf_zip_hi(lf_v8 a, lf_v8 b) { lf_v8 r; int i; for (i = 0; i < 4; i++) { r.v[2 * i] = a.v[i + 4]; r.v[2 * i + 1] = b.v[i + 4]; } return r; }
#endif

/* Sum of the eight lanes in a fixed order: ((0+4)+(2+6)) + ((1+5)+(3+7)). */
static inline float lf_hsum(lf_v8 a) {
    float t[8];
    lf_store(t, a);
    return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
}

/* Sixteen-float vectors: one zmm register. The kernels built on them (lf_conv16.h,
   lf_dense.pxd's 16-float tiles) run on the avx512 path only (LF_WIDE); the other paths
   compile them but never call them (gcc lowers a 64-byte GNU vector through memory
   there: measured 4x slower than their 8-float kernels). LF_NV16: the 16-float
   accumulators of positions a kernel keeps per output map (of 32 registers). */
#define LF_NV16 4
#if defined(__GNUC__) || defined(__clang__)
typedef float lf_v16 __attribute__((vector_size(64)));
typedef int32_t lf_i16 __attribute__((vector_size(64)));
static inline lf_v16 lf16_zero(void) { lf_v16 z = {0}; return z; }
static inline lf_v16 lf16_load(const float *p) { lf_v16 v; memcpy(&v, p, sizeof v); return v; }
static inline void lf16_store(float *p, lf_v16 v) { memcpy(p, &v, sizeof v); }
static inline lf_v16 lf16_bcast(float s) { return s - lf16_zero(); }
static inline lf_v16 lf16_fma(lf_v16 a, lf_v16 b, lf_v16 c) { return a * b + c; }
static inline lf_v16 lf16_add(lf_v16 a, lf_v16 b) { return a + b; }
/* Lanes i >= k keep their bits, lanes i < k become +0.0 (a bitwise mask: NaN-safe). */
static inline lf_v16 lf16_keep_from(lf_v16 a, int k) {
    lf_i16 idx = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    lf_i16 m = idx >= k;
    lf_i16 bits;
    memcpy(&bits, &a, sizeof bits);
    bits &= m;
    memcpy(&a, &bits, sizeof a);
    return a;
}
#else
typedef struct { float v[16]; } lf_v16;
static inline lf_v16 lf16_zero(void) { lf_v16 z; int i; for (i = 0; i < 16; i++) z.v[i] = 0; return z; }
static inline lf_v16 lf16_load(const float *p) { lf_v16 v; memcpy(v.v, p, sizeof v.v); return v; }
static inline void lf16_store(float *p, lf_v16 v) { memcpy(p, v.v, sizeof v.v); }
static inline lf_v16 lf16_bcast(float s) { lf_v16 v; int i; for (i = 0; i < 16; i++) v.v[i] = s; return v; }
static inline lf_v16 lf16_fma(lf_v16 a, lf_v16 b, lf_v16 c) { int i; for (i = 0; i < 16; i++) c.v[i] += a.v[i] * b.v[i]; return c; }
static inline lf_v16 lf16_add(lf_v16 a, lf_v16 b) { int i; for (i = 0; i < 16; i++) a.v[i] += b.v[i]; return a; }
static inline lf_v16 lf16_keep_from(lf_v16 a, int k) { int i; for (i = 0; i < k && i < 16; i++) a.v[i] = 0; return a; }
#endif
/* Sum of the sixteen lanes in a fixed order (pairs eight apart, then as lf_hsum):
   ((t0 + t4) + (t2 + t6)) + ((t1 + t5) + (t3 + t7)) with t[i] = a[i] + a[i + 8]. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
#include <immintrin.h>
static inline float lf16_hsum(lf_v16 a) {
    __m512 v;
    __m256 t;
    __m128 q, r;
    memcpy(&v, &a, sizeof v);
    t = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    q = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)); /* t0+t4 .. t3+t7 */
    r = _mm_add_ps(q, _mm_movehl_ps(q, q));         /* (t0+t4)+(t2+t6), (t1+t5)+(t3+t7) */
    return _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)));
}
#else
static inline float lf16_hsum(lf_v16 a) {
    float t[16];
    int i;
    lf16_store(t, a);
    for (i = 0; i < 8; i++) t[i] = t[i] + t[i + 8];
    return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
}
#endif
#endif
