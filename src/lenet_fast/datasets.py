"""MNIST: reading, downloading, checking, preprocessing.

The module's documentation is that of the code it hands on (below).
"""

from ._io import datasets as _home
from ._io.datasets import (  # noqa: F401
    DataFormatError, DataNotFoundError, ENV_VAR, MD5, MAX_RECORDS, MIRRORS,
    default_data_dir, load_mnist, preprocess, check_digits, read_idx,
)

__doc__ = _home.__doc__
__all__ = [
    "DataFormatError", "DataNotFoundError", "ENV_VAR", "MD5", "MAX_RECORDS", "MIRRORS",
    "default_data_dir", "load_mnist", "preprocess", "check_digits", "read_idx",
]
