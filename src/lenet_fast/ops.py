"""The checked entries of the compiled kernels.

The module's documentation is that of the code it hands on (below).
"""

from ._compute import ops as _home
from ._compute.ops import (  # noqa: F401
    MAX_THREADS, conv_forward, conv_backward, subsample_forward, subsample_backward,
    maxpool_forward, maxpool_backward, linear_forward, linear_backward, resolve_threads,
    usable_cpus, connections,
)

__doc__ = _home.__doc__
__all__ = [
    "MAX_THREADS", "conv_forward", "conv_backward", "subsample_forward",
    "subsample_backward", "maxpool_forward", "maxpool_backward", "linear_forward",
    "linear_backward", "resolve_threads", "usable_cpus", "connections",
]
