# lenet_fast.datasets, public: mNIST: reading, downloading, checking, preprocessing. Its
# text is that of the module that holds the code, handed on with its names.
from ._io.datasets import (  # noqa: F401
    __doc__, DataFormatError, DataNotFoundError, ENV_VAR, MD5, MAX_RECORDS, MIRRORS,
    default_data_dir, load_mnist, preprocess, check_digits, read_idx,
)

__all__ = [
    "DataFormatError", "DataNotFoundError", "ENV_VAR", "MD5", "MAX_RECORDS", "MIRRORS",
    "default_data_dir", "load_mnist", "preprocess", "check_digits", "read_idx",
]
