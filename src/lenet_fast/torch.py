"""The PyTorch module and the weight copies both ways.

The module's documentation is that of the code it hands on (below).
"""

from ._interop import torch as _home
from ._interop.torch import (  # noqa: F401
    LeNet5Torch, MaskedConv2d, ScaledTanh, Subsampling, RBF, to_torch, from_torch,
)

__doc__ = _home.__doc__
__all__ = [
    "LeNet5Torch", "MaskedConv2d", "ScaledTanh", "Subsampling", "RBF", "to_torch",
    "from_torch",
]
