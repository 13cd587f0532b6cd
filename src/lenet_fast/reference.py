"""The kernels' plain NumPy twin.

The module's documentation is that of the code it hands on (below).
"""

from ._compute import reference as _home
from ._compute.reference import (  # noqa: F401
    TANH_A, TANH_S, KERNEL, conv_forward, conv_backward, subsample_forward,
    subsample_backward, maxpool_forward, maxpool_backward, linear_forward,
    linear_backward, relu_forward, relu_backward, scaled_tanh_forward,
    scaled_tanh_backward, softmax_cross_entropy, rbf_forward, rbf_backward, map_loss,
    squash_second, conv_backward_second, subsample_backward_second,
    linear_backward_second, lecun98_hessian_diagonal,
)

__doc__ = _home.__doc__
__all__ = [
    "TANH_A", "TANH_S", "KERNEL", "conv_forward", "conv_backward", "subsample_forward",
    "subsample_backward", "maxpool_forward", "maxpool_backward", "linear_forward",
    "linear_backward", "relu_forward", "relu_backward", "scaled_tanh_forward",
    "scaled_tanh_backward", "softmax_cross_entropy", "rbf_forward", "rbf_backward",
    "map_loss", "squash_second", "conv_backward_second", "subsample_backward_second",
    "linear_backward_second", "lecun98_hessian_diagonal",
]
