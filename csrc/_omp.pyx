"""Build facts and what the running CPU executes: whether the kernels were built with
OpenMP, which instruction-set paths were built, the CPU's features, thread resolution.

This module is compiled without architecture flags (setup.py), so `lenet_fast._isa`,
which asks it which path the CPU runs before importing any kernel module, works on any
CPU.
"""

from lf_omp cimport LF_HAVE_OPENMP, LF_BUILD_FLAGS, lf_max_threads

cdef extern from "lf_cpu.h":
    int lf_cpu_has(int k)
    int LF_CPU_SSE42, LF_CPU_POPCNT, LF_CPU_SSSE3, LF_CPU_AVX2, LF_CPU_FMA
    int LF_CPU_AVX512F, LF_CPU_AVX512BW, LF_CPU_AVX512DQ, LF_CPU_AVX512VL

cdef extern from *:
    """
    #ifndef LF_BUILD_ISAS
    #define LF_BUILD_ISAS ""
    #endif
    """
    const char* LF_BUILD_ISAS


def built_with_openmp():
    """True if the kernels were compiled with OpenMP (False: serial build)."""
    return bool(LF_HAVE_OPENMP)


def max_threads():
    """The OpenMP default thread count (honours OMP_NUM_THREADS and threadpoolctl); 1 if serial."""
    return lf_max_threads()


def built_isas():
    """The instruction-set paths this build compiled, as setup.py listed them."""
    return [name for name in LF_BUILD_ISAS.decode().split(",") if name]


def module_flags():
    """The compiler flags of this module itself (no architecture flags)."""
    return LF_BUILD_FLAGS.decode()


def cpu_features():
    """What the running CPU and OS execute, by feature name (all False off x86)."""
    return {
        "sse4.2": bool(lf_cpu_has(LF_CPU_SSE42)),
        "popcnt": bool(lf_cpu_has(LF_CPU_POPCNT)),
        "ssse3": bool(lf_cpu_has(LF_CPU_SSSE3)),
        "avx2": bool(lf_cpu_has(LF_CPU_AVX2)),
        "fma": bool(lf_cpu_has(LF_CPU_FMA)),
        "avx512f": bool(lf_cpu_has(LF_CPU_AVX512F)),
        "avx512bw": bool(lf_cpu_has(LF_CPU_AVX512BW)),
        "avx512dq": bool(lf_cpu_has(LF_CPU_AVX512DQ)),
        "avx512vl": bool(lf_cpu_has(LF_CPU_AVX512VL)),
    }
