"""lenet_fast: LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) on the CPU, fast.

Cython kernels parallelized with OpenMP (`lenet_fast.ops`), their plain NumPy twin
(`lenet_fast.reference`), the model (`LeNet5`), its trainer (`Trainer`), model files
(`load`, `LeNet5.save`) and the `lenet-fast` command.

The modules live in one folder per layer, from the ground up: ``kernels/`` (the
checked kernel entries, their NumPy twin, the network's tables), ``io/`` (MNIST and
the model files), ``model/`` (`LeNet5`), ``training/`` (optimizers, schedules,
distortions, the trainer, the recipes, metrics), ``interop/`` (scikit-learn,
PyTorch), ``tools/`` (benchmarks, experiments and sweeps, figures and the report) and
``cli/`` (the command). The short paths (``lenet_fast.ops``, ``lenet_fast.optim``,
...) name the same modules (`lenet_fast._paths`).
"""

from ._version import __version__
from . import _paths

_paths.install()

from ._omp import built_with_openmp  # noqa: E402
from ._isa import build_info  # noqa: E402  (chooses the kernels' instruction-set path)
from .kernels.tables import LECUN_C3_TABLE  # noqa: E402
from .training import optim  # noqa: E402
from .model.lenet5 import LeNet5, load  # noqa: E402
from .training.trainer import Trainer, TrainingDiverged, TrainingInterrupted  # noqa: E402
from .io.checkpoint import CheckpointError  # noqa: E402
from .model.zoo import pretrained  # noqa: E402

__all__ = [
    "__version__", "built_with_openmp", "build_info", "LECUN_C3_TABLE", "optim",
    "LeNet5", "Trainer", "TrainingDiverged", "TrainingInterrupted", "load",
    "CheckpointError", "pretrained",
]


def __getattr__(name):
    # lenet_fast.ops and the other short paths, before anything imported them
    return _paths.attribute(name)
