/* OpenMP availability, resolved at compile time: the same sources build with or
   without -fopenmp (without it, prange is a plain loop). */
#ifndef LF_OMP_H
#define LF_OMP_H
#ifdef _OPENMP
#include <omp.h>
#define LF_HAVE_OPENMP 1
static int lf_max_threads(void) { return omp_get_max_threads(); }
#else
#define LF_HAVE_OPENMP 0
static int lf_max_threads(void) { return 1; }
#endif
#ifndef LF_BUILD_FLAGS
#define LF_BUILD_FLAGS ""
#endif
#ifndef LF_ISA
#define LF_ISA ""
#endif
#endif
