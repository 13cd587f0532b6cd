# lenet_fast.zoo, public: the pretrained models' files and facts
# (`lenet_fast.pretrained` loads one). Its text is that of the module that holds the
# code, handed on with its names.
from ._model.pretrained import (  # noqa: F401
    __doc__, COMMANDS, NAMES, path, info,
)

__all__ = [
    "COMMANDS", "NAMES", "path", "info",
]
