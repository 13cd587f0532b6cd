# The path's vectors (lf_simd.h): LF_W floats (16 avx512, 8 avx2, 4 portable), what the
# Cython files use of them; the kernels themselves are C (lf_kernels.h).
cdef extern from "lf_simd.h" nogil:
    const int LF_W
    const int LF_NREG
    ctypedef struct lf_v:
        pass
    lf_v lf_zero()
    lf_v lf_load(const float* p)
    lf_v lf_load_n(const float* p, int n)
    void lf_store(float* p, lf_v v)
    void lf_store_n(float* p, lf_v v, int n)
    lf_v lf_bcast(float s)
    lf_v lf_fma(lf_v a, lf_v b, lf_v c)
    lf_v lf_mul(lf_v a, lf_v b)
    lf_v lf_add(lf_v a, lf_v b)
    float lf_hsum(lf_v a)
    void lf_scaled_tanh(float* out, const float* x, long n, float a, float s)
