"""lenet_fast: LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) on the CPU, fast.

Cython kernels parallelized with OpenMP (`lenet_fast.ops`), their plain NumPy twin
(`lenet_fast.reference`), the model (`LeNet5`), its trainer (`Trainer`), model files
(`load`, `LeNet5.save`) and the `lenet-fast` command.

Every public object has one path: a name of this package (``__all__``), or a name of one
of the public modules in `MODULES`, each with its own ``__all__``. The code lives in
private folders, one per layer from the ground up (``_compute``: the kernels' checked
entries, their NumPy twin and the network's tables; ``_io``: MNIST and the model files;
``_model``; ``_training``: optimizers, schedules, distortions, the trainer, recipes,
settings, one run and sweeps; ``_interop``; ``_figures``), then the public packages
`lenet_fast.bench`, `lenet_fast.serve` and `lenet_fast.reproduce`, and the command
(`lenet_fast.cli`). A public module imports its names from those folders; nothing in
the package imports a public module. ``lenet_fast.<module>`` is importable as a module
and, once ``lenet_fast`` is imported, as an attribute.
"""

import importlib

from ._version import __version__
from ._omp import built_with_openmp
from ._isa import build_info  # (chooses the kernels' instruction-set path)
from ._compute.tables import LECUN_C3_TABLE
from ._model.lenet5 import LeNet5, load
from ._training.trainer import Trainer, TrainingDiverged, TrainingInterrupted
from ._training.settings import RunSettings, SettingsError
from ._io.checkpoint import CheckpointError
from ._model.pretrained import pretrained
from ._moved import MOVED

#: The public modules and packages, each a ``lenet_fast.<name>`` with its ``__all__``.
MODULES = (
    "ops", "reference", "datasets", "pictures", "checkpoint", "safetensors_io",
    "onnx_export", "zoo", "model", "optim", "schedules", "augment", "metrics", "recipes",
    "experiment", "sweep", "sklearn", "torch", "plot", "report", "bench", "serve",
    "reproduce", "cli",
)

__all__ = [
    "__version__", "built_with_openmp", "build_info", "LECUN_C3_TABLE",
    "LeNet5", "Trainer", "TrainingDiverged", "TrainingInterrupted", "RunSettings",
    "SettingsError", "load",
    "CheckpointError", "pretrained",
]


def __getattr__(name):
    # lenet_fast.ops and the other public modules before anything imported them, and the
    # old paths of MOVED (which warn)
    if name in MODULES or f"{__name__}.{name}" in MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(MODULES))
