cdef extern from "lf_simd.h" nogil:
    ctypedef struct lf_v8:
        pass
    lf_v8 lf_zero()
    lf_v8 lf_load(const float* p)
    void lf_store(float* p, lf_v8 v)
    lf_v8 lf_bcast(float s)
    lf_v8 lf_fma(lf_v8 a, lf_v8 b, lf_v8 c)
    lf_v8 lf_mul(lf_v8 a, lf_v8 b)
    lf_v8 lf_add(lf_v8 a, lf_v8 b)
    lf_v8 lf_keep_from(lf_v8 a, int k)
    float lf_hsum(lf_v8 a)
    lf_v8 lf_and(lf_v8 a, lf_v8 b)
    lf_v8 lf_or(lf_v8 a, lf_v8 b)
    lf_v8 lf_andnot(lf_v8 a, lf_v8 b)
    lf_v8 lf_eq_or_nan(lf_v8 a, lf_v8 b)
    lf_v8 lf_gt(lf_v8 a, lf_v8 b)
    lf_v8 lf_maxnan(lf_v8 a, lf_v8 b)
    lf_v8 lf_even(lf_v8 a, lf_v8 b)
    lf_v8 lf_odd(lf_v8 a, lf_v8 b)
    lf_v8 lf_zip_lo(lf_v8 a, lf_v8 b)
    lf_v8 lf_zip_hi(lf_v8 a, lf_v8 b)
    lf_v8 lf_tanh(lf_v8 x)
    # sixteen floats (lf_simd.h): what the Cython kernels use of them; the rest is C's
    ctypedef struct lf_v16:
        pass
    lf_v16 lf16_zero()
    lf_v16 lf16_load(const float* p)
    lf_v16 lf16_fma(lf_v16 a, lf_v16 b, lf_v16 c)
    float lf16_hsum(lf_v16 a)
