"""lenet_fast: LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) on the CPU, fast.

Cython kernels parallelized with OpenMP (`lenet_fast.ops`), their plain NumPy twin
(`lenet_fast.reference`), the model, its trainer and the `lenet-fast` command.
"""

__version__ = "0.1.0"

from ._omp import built_with_openmp, build_info  # noqa: E402
from .tables import LECUN_C3_TABLE  # noqa: E402

__all__ = ["__version__", "built_with_openmp", "build_info", "LECUN_C3_TABLE"]
