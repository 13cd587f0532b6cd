"""Plain NumPy reference implementation of the LeNet-5 layers.

This module is the slow, readable twin of :mod:`lenet_fast.ops`: every function has the
same signature as its fast counterpart and is written independently in plain,
vectorized NumPy, so the two can be checked against each other.  It never imports or
calls any compiled ``lenet_fast`` code.

The layers follow

    Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-Based Learning Applied to
    Document Recognition", Proceedings of the IEEE, 86(11):2278-2324, 1998.

Conventions
-----------
* Arrays are NCHW (``(N, C, H, W)``) for images and ``(N, features)`` for vectors.
* Convolutions are 5x5, stride 1, no padding ("valid") cross-correlations (no kernel
  flip, like ``torch.nn.functional.conv2d``), with an optional connection table
  ``table[ci, co]`` (LeNet-5's C3 uses a sparse one).
* Subsampling / pooling is 2x2 with stride 2.  The output has ``H // 2`` rows and
  ``W // 2`` columns; with an odd size the last row / column is ignored (its
  gradient is 0).
* float32 and float64 are accepted; results are computed in and returned as
  ``np.result_type`` of the floating-point inputs (float32 with float64 gives
  float64).  Outputs are always new arrays.
* The functions that share a name with a :mod:`lenet_fast.ops` function accept an
  ``n_threads`` keyword and ignore it, for signature parity (the dense layer, the
  activations, the losses and the second-derivative functions have no ``n_threads``).
* Backward functions return the gradients of the scalar ``sum(dy * forward(...))``.

Validation is minimal (shape checks raising ``ValueError``); this is not the
user-facing API.
"""

from ._common import KERNEL, TANH_A, TANH_S
from .layers import (
                     conv_backward,
                     conv_forward,
                     linear_backward,
                     linear_forward,
                     maxpool_backward,
                     maxpool_forward,
                     subsample_backward,
                     subsample_forward,
)
from .outputs import (
                     map_loss,
                     rbf_backward,
                     rbf_forward,
                     relu_backward,
                     relu_forward,
                     scaled_tanh_backward,
                     scaled_tanh_forward,
                     softmax_cross_entropy,
)
from .second import (
                     conv_backward_second,
                     lecun98_hessian_diagonal,
                     linear_backward_second,
                     squash_second,
                     subsample_backward_second,
)

__all__ = [
    "TANH_A",
    "TANH_S",
    "KERNEL",
    "conv_forward",
    "conv_backward",
    "subsample_forward",
    "subsample_backward",
    "maxpool_forward",
    "maxpool_backward",
    "linear_forward",
    "linear_backward",
    "relu_forward",
    "relu_backward",
    "scaled_tanh_forward",
    "scaled_tanh_backward",
    "softmax_cross_entropy",
    "rbf_forward",
    "rbf_backward",
    "map_loss",
    "squash_second",
    "conv_backward_second",
    "subsample_backward_second",
    "linear_backward_second",
    "lecun98_hessian_diagonal",
]
