# lenet_fast.checkpoint, public: lenet_fast's model files (npz): reading and writing.
# Its text is that of the module that holds the code, handed on with its names.
from ._io.checkpoint import (  # noqa: F401
    __doc__, FORMAT, FORMAT_VERSION, MAX_FILE_BYTES, MAX_ENTRIES, MAX_ENTRY_BYTES,
    MAX_TOTAL_BYTES, ModelFile, check_config, HISTORY_MAX_EPOCHS, HISTORY_MAX_KEYS,
    HISTORY_MAX_STRING, HISTORY_MAX_BYTES, save_model, save_training, read_model,
    read_provenance, read_training,
)

__all__ = [
    "FORMAT", "FORMAT_VERSION", "MAX_FILE_BYTES", "MAX_ENTRIES", "MAX_ENTRY_BYTES",
    "MAX_TOTAL_BYTES", "ModelFile", "check_config", "HISTORY_MAX_EPOCHS",
    "HISTORY_MAX_KEYS", "HISTORY_MAX_STRING", "HISTORY_MAX_BYTES", "save_model",
    "save_training", "read_model", "read_provenance", "read_training",
]
