# lenet_fast.safetensors_io, public: model files in the safetensors format. Its text is
# that of the module that holds the code, handed on with its names.
from ._io.safetensors_io import (  # noqa: F401
    __doc__, save_safetensors, read_safetensors, is_safetensors, MAX_HEADER_BYTES,
)

__all__ = [
    "save_safetensors", "read_safetensors", "is_safetensors", "MAX_HEADER_BYTES",
]
