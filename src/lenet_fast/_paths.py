"""The short public import paths: ``lenet_fast.ops``, ``lenet_fast.optim``, ...

Each module lives in the folder of its layer (``kernels/``, ``io/``, ``model/``,
``training/``, ``interop/``, ``tools/``); the paths that the documentation shows
are the short ones, and this table says where each one lives. Importing
``lenet_fast.ops`` (as a module, or as the package's attribute) gives the module of its home
itself (the same object as ``lenet_fast.kernels.ops``), so its functions, its
constants and anything patched into it are the same under either name. Code inside
the package imports from the homes (tests/test_structure.py checks it).
"""

import importlib
import importlib.abc
import importlib.util
import sys

#: Short name under ``lenet_fast`` -> the module's home, relative to ``lenet_fast``.
PUBLIC = {
    "ops": "kernels.ops",
    "reference": "kernels.reference",
    "datasets": "io.datasets",
    "checkpoint": "io.checkpoint",
    "safetensors_io": "io.safetensors_io",
    "onnx_export": "io.onnx_export",
    "pictures": "io.pictures",
    "zoo": "model.zoo",
    "optim": "training.optim",
    "sdlm": "training.optim.sdlm",
    "schedules": "training.schedules",
    "augment": "training.augment",
    "metrics": "training.metrics",
    "trainer": "training.trainer",
    "recipes": "training.recipes",
    "sklearn": "interop.sklearn",
    "torch": "interop.torch",
    "experiment": "tools.experiment",
    "sweep": "tools.sweep",
    "plot": "tools.plot",
    "report": "tools.report",
    "bench": "tools.bench",
    "busy": "tools.bench.busy",
    "time_to_accuracy": "tools.bench.time_to_accuracy",
    "serve": "tools.serve",
    "reproduce": "tools.reproduce",
    "reproduce_page": "tools.reproduce_page",
    "reproduce_summary": "tools.reproduce_summary",
}

_PREFIX = __name__.rpartition(".")[0] + "."


class _ShortPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``lenet_fast.<short name>`` and puts the module of its home in its place."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(_PREFIX) and fullname[len(_PREFIX):] in PUBLIC:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None  # a placeholder, replaced by the home's module in exec_module

    def exec_module(self, module):
        home = importlib.import_module(_PREFIX + PUBLIC[module.__name__[len(_PREFIX):]])
        sys.modules[module.__name__] = home  # the import statement hands this one out


def install():
    """Make the short paths importable (once per process)."""
    if not any(isinstance(finder, _ShortPaths) for finder in sys.meta_path):
        sys.meta_path.append(_ShortPaths())


def attribute(name):
    """``lenet_fast.<name>`` for the package's ``__getattr__``: the module of a short path."""
    if name in PUBLIC:
        return importlib.import_module(_PREFIX + name)
    raise AttributeError(f"module {_PREFIX[:-1]!r} has no attribute {name!r}")
