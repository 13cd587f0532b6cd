/* What the running CPU can execute, asked at import time by lenet_fast._omp (which is
   compiled without architecture flags, so this code runs on any x86-64 CPU).
   gcc/clang: __builtin_cpu_supports checks the CPU and that the OS saves the AVX state.
   MSVC: cpuid leaves 1 and 7 and xgetbv. Elsewhere (not x86): 0. */
#ifndef LF_CPU_H
#define LF_CPU_H
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static int lf_cpu_has_avx2(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx2") != 0; }
static int lf_cpu_has_fma(void) { __builtin_cpu_init(); return __builtin_cpu_supports("fma") != 0; }
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#include <immintrin.h>
static int lf_cpu_os_avx(void) {
    int r[4];
    __cpuid(r, 1);
    if (!(r[2] & (1 << 27)) || !(r[2] & (1 << 28))) return 0;   /* OSXSAVE, AVX */
    return (_xgetbv(0) & 6) == 6;                                /* XMM and YMM state */
}
static int lf_cpu_has_avx2(void) {
    int r[4];
    if (!lf_cpu_os_avx()) return 0;
    __cpuidex(r, 7, 0);
    return (r[1] & (1 << 5)) != 0;
}
static int lf_cpu_has_fma(void) {
    int r[4];
    if (!lf_cpu_os_avx()) return 0;
    __cpuid(r, 1);
    return (r[2] & (1 << 12)) != 0;
}
#else
static int lf_cpu_has_avx2(void) { return 0; }
static int lf_cpu_has_fma(void) { return 0; }
#endif
#ifndef LF_MODULE_FLAGS
#define LF_MODULE_FLAGS ""
#endif
#ifndef LF_BUILD_ARCH_REQUESTED
#define LF_BUILD_ARCH_REQUESTED ""
#endif
#endif
