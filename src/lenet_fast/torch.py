# lenet_fast.torch, public: the PyTorch module and the weight copies both ways. Its text
# is that of the module that holds the code, handed on with its names.
from ._interop.torch import (  # noqa: F401
    __doc__, LeNet5Torch, MaskedConv2d, ScaledTanh, Subsampling, RBF, to_torch,
    from_torch,
)

__all__ = [
    "LeNet5Torch", "MaskedConv2d", "ScaledTanh", "Subsampling", "RBF", "to_torch",
    "from_torch",
]
