"""lenet_fast's model files (npz): reading and writing.

The module's documentation is that of the code it hands on (below).
"""

from ._io import checkpoint as _home
from ._io.checkpoint import (  # noqa: F401
    FORMAT, FORMAT_VERSION, MAX_FILE_BYTES, MAX_ENTRIES, MAX_ENTRY_BYTES,
    MAX_TOTAL_BYTES, ModelFile, check_config, HISTORY_MAX_EPOCHS, HISTORY_MAX_KEYS,
    HISTORY_MAX_STRING, HISTORY_MAX_BYTES, save_model, save_training, read_model,
    read_provenance, read_training,
)

__doc__ = _home.__doc__
__all__ = [
    "FORMAT", "FORMAT_VERSION", "MAX_FILE_BYTES", "MAX_ENTRIES", "MAX_ENTRY_BYTES",
    "MAX_TOTAL_BYTES", "ModelFile", "check_config", "HISTORY_MAX_EPOCHS",
    "HISTORY_MAX_KEYS", "HISTORY_MAX_STRING", "HISTORY_MAX_BYTES", "save_model",
    "save_training", "read_model", "read_provenance", "read_training",
]
