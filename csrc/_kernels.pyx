"""Every compiled kernel of lenet_fast, in one extension module per instruction set.

setup.py cythonizes this file once and compiles the C it makes several times, with the
architecture flags of each instruction-set path (portable x86-64-v2, AVX2+FMA, AVX-512),
into the modules ``lenet_fast._kernels_<isa>``; `lenet_fast._isa` imports the best one
the running CPU executes. The Python-facing functions of each kernel family live in
the files included below; the kernels themselves in the ``lf_*.pxd`` files they cimport.
"""

from lf_omp cimport LF_ISA, LF_BUILD_FLAGS

include "_net.pxi"        # the whole-network passes (Plan), blocks and workspaces
include "_conv.pxi"       # conv_forward, conv_backward, conv_scratch_size
include "_pool.pxi"       # subsample_forward/backward, maxpool_forward/backward
include "_linear.pxi"     # linear_forward, linear_backward
include "_optim.pxi"      # sgd, adam, scaled_sgd
include "_augment.pxi"    # affine_warp, elastic_warp, gaussian_smooth, elastic_random_warp


def isa():
    """The instruction-set path this module was compiled for."""
    return LF_ISA.decode()


def compile_flags():
    """The compiler flags this module was built with (its path's architecture flags)."""
    return LF_BUILD_FLAGS.decode()
