/* What the running CPU (and OS) can execute, asked at import time by lenet_fast._omp,
   which is compiled without architecture flags, so this code runs on any CPU.
   lf_cpu_has(k) for the features of the instruction-set paths (LF_CPU_*):
   gcc/clang: __builtin_cpu_supports, which also checks that the OS saves the vector
   state (AVX, AVX-512) on current compilers; MSVC: cpuid leaves 1 and 7 and xgetbv.
   Not x86: 0 for every feature. */
#ifndef LF_CPU_H
#define LF_CPU_H
enum { LF_CPU_SSE42 = 0, LF_CPU_POPCNT, LF_CPU_SSSE3, LF_CPU_AVX2, LF_CPU_FMA,
       LF_CPU_AVX512F, LF_CPU_AVX512BW, LF_CPU_AVX512DQ, LF_CPU_AVX512VL, LF_CPU_N };
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static int lf_cpu_has(int k) {
    __builtin_cpu_init();
    switch (k) {
    case LF_CPU_SSE42: return __builtin_cpu_supports("sse4.2") != 0;
    case LF_CPU_POPCNT: return __builtin_cpu_supports("popcnt") != 0;
    case LF_CPU_SSSE3: return __builtin_cpu_supports("ssse3") != 0;
    case LF_CPU_AVX2: return __builtin_cpu_supports("avx2") != 0;
    case LF_CPU_FMA: return __builtin_cpu_supports("fma") != 0;
    case LF_CPU_AVX512F: return __builtin_cpu_supports("avx512f") != 0;
    case LF_CPU_AVX512BW: return __builtin_cpu_supports("avx512bw") != 0;
    case LF_CPU_AVX512DQ: return __builtin_cpu_supports("avx512dq") != 0;
    case LF_CPU_AVX512VL: return __builtin_cpu_supports("avx512vl") != 0;
    }
    return 0;
}
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#include <immintrin.h>
static int lf_cpu_has(int k) {
    int r1[4], r7[4];
    unsigned long long xcr0 = 0;
    __cpuid(r1, 1);
    __cpuidex(r7, 7, 0);
    if (r1[2] & (1 << 27)) xcr0 = _xgetbv(0);                  /* OSXSAVE */
    int avx_os = (xcr0 & 6) == 6, zmm_os = (xcr0 & 0xe6) == 0xe6;
    switch (k) {
    case LF_CPU_SSE42: return (r1[2] >> 20) & 1;
    case LF_CPU_POPCNT: return (r1[2] >> 23) & 1;
    case LF_CPU_SSSE3: return (r1[2] >> 9) & 1;
    case LF_CPU_AVX2: return avx_os && ((r7[1] >> 5) & 1);
    case LF_CPU_FMA: return avx_os && ((r1[2] >> 12) & 1);
    case LF_CPU_AVX512F: return zmm_os && ((r7[1] >> 16) & 1);
    case LF_CPU_AVX512DQ: return zmm_os && ((r7[1] >> 17) & 1);
    case LF_CPU_AVX512BW: return zmm_os && ((r7[1] >> 30) & 1);
    case LF_CPU_AVX512VL: return zmm_os && ((r7[1] >> 31) & 1);
    }
    return 0;
}
#else
static int lf_cpu_has(int k) { (void)k; return 0; }
#endif
#endif
