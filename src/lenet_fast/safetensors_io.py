"""Model files in the safetensors format.

The module's documentation is that of the code it hands on (below).
"""

from ._io import safetensors_io as _home
from ._io.safetensors_io import (  # noqa: F401
    save_safetensors, read_safetensors, is_safetensors, MAX_HEADER_BYTES,
)

__doc__ = _home.__doc__
__all__ = [
    "save_safetensors", "read_safetensors", "is_safetensors", "MAX_HEADER_BYTES",
]
