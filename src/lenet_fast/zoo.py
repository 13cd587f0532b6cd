"""The pretrained models' files and facts (`lenet_fast.pretrained` loads one).

The module's documentation is that of the code it hands on (below).
"""

from ._model import pretrained as _home
from ._model.pretrained import (  # noqa: F401
    COMMANDS, NAMES, path, info,
)

__doc__ = _home.__doc__
__all__ = [
    "COMMANDS", "NAMES", "path", "info",
]
