"""lenet_fast: LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) on the CPU, fast.

Cython kernels parallelized with OpenMP (`lenet_fast.ops`), their plain NumPy twin
(`lenet_fast.reference`), the model (`LeNet5`), its trainer (`Trainer`), model files
(`load`, `LeNet5.save`) and the `lenet-fast` command.
"""

from ._version import __version__

from ._omp import built_with_openmp  # noqa: E402
from ._isa import build_info  # noqa: E402  (chooses the kernels' instruction-set path)
from .tables import LECUN_C3_TABLE  # noqa: E402
from . import optim  # noqa: E402
from .model import LeNet5, load  # noqa: E402
from .trainer import Trainer, TrainingDiverged, TrainingInterrupted  # noqa: E402
from .checkpoint import CheckpointError  # noqa: E402
from .zoo import pretrained  # noqa: E402

__all__ = [
    "__version__", "built_with_openmp", "build_info", "LECUN_C3_TABLE", "optim",
    "LeNet5", "Trainer", "TrainingDiverged", "TrainingInterrupted", "load",
    "CheckpointError", "pretrained",
]
