# lenet_fast.ops, public: the checked entries of the compiled kernels. Its text is that
# of the module that holds the code, handed on with its names.
from ._compute.ops import (  # noqa: F401
    __doc__, MAX_THREADS, conv_forward, conv_backward, subsample_forward,
    subsample_backward, maxpool_forward, maxpool_backward, linear_forward,
    linear_backward, resolve_threads, usable_cpus, connections,
)

__all__ = [
    "MAX_THREADS", "conv_forward", "conv_backward", "subsample_forward",
    "subsample_backward", "maxpool_forward", "maxpool_backward", "linear_forward",
    "linear_backward", "resolve_threads", "usable_cpus", "connections",
]
