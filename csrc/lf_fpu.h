/* Flush-to-zero for the compiled passes. Gradients of a trained network and the
   momentum buffers that decay them reach float32's subnormal range, where each
   multiply-add on x86 takes a microcode assist (~100x slower on Intel cores).
   lf_ftz_on sets FTZ and DAZ on the calling thread and returns the previous state;
   lf_ftz_restore puts it back, so the caller's (numpy's) arithmetic is unchanged.
   Every block of a pass, every reduction chunk and every optimizer update runs under
   it, whichever thread runs it, so results do not depend on the thread count. */
#ifndef LF_FPU_H
#define LF_FPU_H
#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
static inline unsigned int lf_ftz_on(void) {
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);   /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
}
static inline void lf_ftz_restore(unsigned int old) { _mm_setcsr(old); }
#else
static inline unsigned int lf_ftz_on(void) { return 0; }
static inline void lf_ftz_restore(unsigned int old) { (void)old; }
#endif
#endif
