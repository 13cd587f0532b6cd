"""LeNet-5's presets, the RBF output's codes, the softmax and the MAP loss's constant.

The module's documentation is that of the code it hands on (below). `LeNet5` and `load`
are names of ``lenet_fast`` itself; read here they still work for one release, with a
`DeprecationWarning` (CHANGELOG.md).
"""

import warnings

from . import _model as _home
from ._compute.codes import RBF_CODES  # noqa: F401
from ._model import lenet5 as _lenet5
from ._model.lenet5 import MAP_J  # noqa: F401
from ._model._runtime import softmax  # noqa: F401
from ._moved import message

__doc__ = _home.__doc__
__all__ = ["MAP_J", "RBF_CODES", "softmax"]


def __getattr__(name):
    if name in ("LeNet5", "load"):
        warnings.warn(message(f"lenet_fast.model.{name}", f"lenet_fast.{name}"),
                      DeprecationWarning, stacklevel=2)
        return getattr(_lenet5, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
