"""The old public paths kept for one release (CHANGELOG.md): each warns and forwards.

An old module such as ``lenet_fast/sdlm.py`` holds only ``__getattr__ = forward(__name__)``:
importing it raises a `DeprecationWarning` that names the new path, and each name read
from it is read from the module that now holds the code (so everything the old path
offered still works for that release).
"""

import importlib
import warnings

#: Old path -> (the module that holds its code now, the public path to use instead).
MOVED = {
    "lenet_fast.sdlm": ("lenet_fast._training.optim.sdlm", "lenet_fast.optim"),
    "lenet_fast.trainer": ("lenet_fast._training.trainer",
                           "lenet_fast (Trainer, TrainingDiverged, TrainingInterrupted)"),
    "lenet_fast.busy": ("lenet_fast.bench.busy", "lenet_fast.bench.busy"),
    "lenet_fast.time_to_accuracy": ("lenet_fast.bench.time_to_accuracy",
                                    "lenet_fast.bench.time_to_accuracy"),
    "lenet_fast.reproduce_page": ("lenet_fast.reproduce.page", "lenet_fast.reproduce.page"),
    "lenet_fast.reproduce_summary": ("lenet_fast.reproduce.summary",
                                     "lenet_fast.reproduce.summary"),
}


def message(old, new):
    """The deprecation message of old path `old`, now `new`."""
    return f"{old} is deprecated and goes in the next release; use {new}"


def forward(old):
    """Warn that `old` (a key of `MOVED`) moved; return its module's ``__getattr__``."""
    home, new = MOVED[old]
    warnings.warn(message(old, new), DeprecationWarning, stacklevel=3)
    module = importlib.import_module(home)

    def __getattr__(name):
        return getattr(module, name)

    return __getattr__
