cdef extern from "lf_fpu.h" nogil:
    unsigned int lf_ftz_on()
    void lf_ftz_restore(unsigned int old)
