cdef extern from "lf_omp.h" nogil:
    int LF_HAVE_OPENMP
    const char* LF_BUILD_FLAGS
    const char* LF_ISA
    int lf_max_threads()
