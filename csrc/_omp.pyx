"""Build facts and the import-time CPU check: whether the kernels were built with
OpenMP, with which flags and for which CPUs, and thread resolution.

This module is compiled without architecture flags (setup.py), so `require_cpu`, which
`lenet_fast/__init__.py` runs before any kernel module is imported, works on any CPU.
"""

from lf_omp cimport LF_HAVE_OPENMP, LF_BUILD_FLAGS, LF_BUILD_ARCH, lf_max_threads

cdef extern from "lf_cpu.h":
    int lf_cpu_has_avx2()
    int lf_cpu_has_fma()
    const char* LF_MODULE_FLAGS
    const char* LF_BUILD_ARCH_REQUESTED


def built_with_openmp():
    """True if the kernels were compiled with OpenMP (False: serial build)."""
    return bool(LF_HAVE_OPENMP)


def max_threads():
    """The OpenMP default thread count (honours OMP_NUM_THREADS and threadpoolctl); 1 if serial."""
    return lf_max_threads()


def build_info():
    """Compiler flags and architecture choice the kernels were built with.

    Returns
    -------
    dict
        openmp (bool), compile_flags (str, the kernels' flags), arch (the choice:
        "avx2", "native", "portable" or "none") and arch_requested (LENET_FAST_ARCH at
        build time: "auto" unless forced).
    """
    return {
        "openmp": bool(LF_HAVE_OPENMP),
        "compile_flags": LF_BUILD_FLAGS.decode(),
        "arch": LF_BUILD_ARCH.decode(),
        "arch_requested": LF_BUILD_ARCH_REQUESTED.decode(),
    }


def module_flags():
    """The compiler flags of this module itself (no architecture flags)."""
    return LF_MODULE_FLAGS.decode()


def cpu_features():
    """What the running CPU executes: {"avx2": bool, "fma": bool} (False off x86)."""
    return {"avx2": bool(lf_cpu_has_avx2()), "fma": bool(lf_cpu_has_fma())}


def require_cpu(info=None, features=None):
    """Raise ImportError if the kernels need instructions this CPU lacks.

    A build for AVX2 (``build_info()["arch"] == "avx2"``) on a CPU without AVX2 and FMA
    would stop with an illegal instruction (SIGILL) in the first kernel; this says so
    before, with the fix. `info` and `features` default to this build and this CPU.
    """
    info = build_info() if info is None else info
    features = cpu_features() if features is None else features
    if info["arch"] == "avx2":
        missing = [name.upper() for name in ("avx2", "fma") if not features[name]]
        if missing:
            raise ImportError(
                "this lenet_fast was built for CPUs with AVX2 and FMA, and this CPU lacks "
                f"{' and '.join(missing)}: its kernels would stop with an illegal instruction. "
                "Reinstall it built for this machine: LENET_FAST_ARCH=portable pip install "
                "--force-reinstall --no-binary lenet-fast lenet-fast (or pip install . from "
                "a checkout, which probes the CPU)")
