"""OpenMP helpers: whether the kernels were built with OpenMP, and thread resolution."""

from lf_omp cimport LF_HAVE_OPENMP, LF_BUILD_FLAGS, LF_BUILD_ARCH, lf_max_threads


def built_with_openmp():
    """True if the kernels were compiled with OpenMP (False: serial build)."""
    return bool(LF_HAVE_OPENMP)


def max_threads():
    """The OpenMP default thread count (honours OMP_NUM_THREADS and threadpoolctl); 1 if serial."""
    return lf_max_threads()


def build_info():
    """Compiler flags and architecture choice the extensions were built with."""
    return {
        "openmp": bool(LF_HAVE_OPENMP),
        "compile_flags": LF_BUILD_FLAGS.decode(),
        "arch": LF_BUILD_ARCH.decode(),
    }
