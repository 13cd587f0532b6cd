# lenet_fast.reference, public: the kernels' plain NumPy twin. Its text is that of the
# module that holds the code, handed on with its names.
from ._compute.reference import (  # noqa: F401
    __doc__, TANH_A, TANH_S, KERNEL, conv_forward, conv_backward, subsample_forward,
    subsample_backward, maxpool_forward, maxpool_backward, linear_forward,
    linear_backward, relu_forward, relu_backward, scaled_tanh_forward,
    scaled_tanh_backward, softmax_cross_entropy, rbf_forward, rbf_backward, map_loss,
    squash_second, conv_backward_second, subsample_backward_second,
    linear_backward_second, lecun98_hessian_diagonal,
)

__all__ = [
    "TANH_A", "TANH_S", "KERNEL", "conv_forward", "conv_backward", "subsample_forward",
    "subsample_backward", "maxpool_forward", "maxpool_backward", "linear_forward",
    "linear_backward", "relu_forward", "relu_backward", "scaled_tanh_forward",
    "scaled_tanh_backward", "softmax_cross_entropy", "rbf_forward", "rbf_backward",
    "map_loss", "squash_second", "conv_backward_second", "subsample_backward_second",
    "linear_backward_second", "lecun98_hessian_diagonal",
]
