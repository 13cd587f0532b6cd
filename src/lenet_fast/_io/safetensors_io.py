"""Model files in the safetensors format (``model.save("m.safetensors")``).

The file holds one float32 tensor per parameter, named like `LeNet5.params`
(``c1.weight``, ``c1.bias``, ...), and string metadata: ``format`` ("lenet_fast"),
``format_version`` ("1"), ``library_version`` and ``config``, the model's
configuration as JSON (``{"variant": ..., "c3": ..., "seed": ..., "init": ...}``). Any
safetensors reader loads it without lenet_fast::

    from safetensors.numpy import load_file, safe_open
    weights = load_file("m.safetensors")          # {"c1.weight": (6, 1, 5, 5) float32, ...}

The training history (``model.history``) is not stored: a loaded model has an empty
one. `lenet_fast.load` reads the file back (it tells the format by the first bytes). Writing
needs the ``safetensors`` package (``pip install "lenet-fast[safetensors]"``); so does
reading, which first checks the file against what a LeNet-5 model file can hold: its
size, the header's size, JSON and metadata, then every tensor's name, dtype ("F32"),
shape and byte range, before any tensor is decoded, so a damaged or hostile file is
refused with a `lenet_fast.CheckpointError` without large allocations. Unlike the npz
format, there is no checksum: a file whose weights were changed by another tool (say,
fine-tuned in PyTorch and saved with ``safetensors.torch.save_file`` with the same
metadata) loads, as long as its structure is right and its values finite.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from .._version import __version__
from .checkpoint import FORMAT, FORMAT_VERSION, CheckpointError, ModelFile, check_config
from .files import atomic_write, open_regular

__all__ = ["save_safetensors", "read_safetensors", "is_safetensors", "MAX_HEADER_BYTES"]

#: Largest header accepted. A LeNet-5 file's header (16 tensor entries and the
#: metadata) takes about 2 KB.
MAX_HEADER_BYTES = 64 * 1024
#: Largest parameter payload of any LeNet-5 configuration (modern, dense C3), in bytes.
_MAX_DATA_BYTES = 61_706 * 4
_EXTENSION = ".safetensors"
FORMATS = ("npz", "safetensors")


def _import_safetensors():
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError('safetensors model files need the safetensors package: '
                          'pip install "lenet-fast[safetensors]"') from exc
    return safetensors.numpy


def wants_safetensors(path, format=None):
    """Whether `LeNet5.save(path, format=format)` writes safetensors: `format` if given
    ("npz" or "safetensors"), else a ``.safetensors`` extension."""
    if format is None:
        return os.fspath(path).lower().endswith(_EXTENSION)
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} or None, got {format!r}")
    return format == "safetensors"


def save_safetensors(model, path):
    """Write `model`'s parameters and configuration to `path` (safetensors), atomically.

    Parameters
    ----------
    model : LeNet5
        The model; its configuration goes into the file's metadata (``config``, JSON).
    path : str or os.PathLike
        The file to write (replaced as a whole, never left half-written).
    """
    st = _import_safetensors()
    tensors = {name: np.ascontiguousarray(value, dtype=np.float32)
               for name, value in model.params.items()}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "library_version": __version__,
                "config": json.dumps(model.config(), sort_keys=True)}
    data = st.save(tensors, metadata=metadata)
    atomic_write(path, lambda f: f.write(data), suffix=_EXTENSION)


def is_safetensors(path):
    """Whether the file at `path` starts like a safetensors file (an 8-byte header size,
    then '{'); False for a missing, unreadable or non-regular file and for zip (npz) files.

    Parameters
    ----------
    path : str or os.PathLike
        The file to look at (its first bytes are read).

    Returns
    -------
    bool
    """
    try:
        f, _ = open_regular(path, CheckpointError, "model file")
        with f:
            head = f.read(9)
    except (OSError, CheckpointError):
        return False
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def _fail(path, why):
    raise CheckpointError(f"{path}: {why}")


def _check_metadata(path, meta):
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        _fail(path, "not a lenet_fast model file (no string __metadata__)")
    if meta.get("format") != FORMAT:
        _fail(path, "not a lenet_fast model file (its metadata has no format 'lenet_fast'; "
                    "a safetensors file of another program?)")
    try:
        version = int(meta.get("format_version", "-1"))
    except ValueError:
        version = -1
    if version > FORMAT_VERSION:
        _fail(path, f"format version {version} is newer than this lenet_fast ({__version__}) "
                    f"reads (version {FORMAT_VERSION}); upgrade lenet_fast")
    if version < 1:
        _fail(path, f"unknown format version {meta.get('format_version')!r}")
    try:
        config = json.loads(meta["config"])
    except (KeyError, ValueError, RecursionError) as e:
        _fail(path, f"bad model configuration ({e})")
    return config, check_config(path, config)


def _check_entries(path, header, config, expected, data_len):
    """Every tensor of `expected` ({name: shape}) is there, F32 of its shape, and the byte
    ranges tile the data."""
    if set(header) != set(expected):
        _fail(path, f"tensors {sorted(set(header) ^ set(expected))} do not match a "
                    f"{config['variant']}/{config['c3']} model")
    ranges = []
    for name, shape in expected.items():
        entry = header[name]
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            _fail(path, f"bad header entry for {name}")
        if entry["dtype"] != "F32":
            _fail(path, f"{name} is {entry['dtype']!r}, expected F32 (float32)")
        if entry["shape"] != list(shape):
            _fail(path, f"{name} has shape {entry['shape']!r}, expected {list(shape)}")
        offsets = entry["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len
                or offsets[1] - offsets[0] != 4 * int(np.prod(shape))):
            _fail(path, f"{name} has bad data offsets {offsets!r}")
        ranges.append(offsets)
    end = 0
    for begin, stop in sorted(ranges):
        if begin != end:
            _fail(path, "tensor data overlaps or leaves gaps")
        end = stop
    if end != data_len:
        _fail(path, f"{data_len - end} bytes after the tensor data")


def read_safetensors(path):
    """Read a model file written by `save_safetensors`: a `lenet_fast.checkpoint.ModelFile`
    with an empty history (module docstring for the checks; `lenet_fast.load` builds the
    model).

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    lenet_fast.checkpoint.ModelFile
        The checked configuration and float32 parameters.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CheckpointError
        If the file is not a lenet_fast safetensors model file, is damaged, or holds
        anything a LeNet-5 model file cannot (sizes, names, dtypes, shapes, non-finite values).
    ImportError
        Without the safetensors package.
    """
    st = _import_safetensors()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    f, status = open_regular(path, CheckpointError, "model file")
    with f:
        size = status.st_size
        if size < 8:
            _fail(path, f"truncated safetensors file ({size} bytes)")
        if size > 8 + MAX_HEADER_BYTES + _MAX_DATA_BYTES:
            _fail(path, f"{size:,} bytes: larger than a LeNet-5 model file can be")
        raw = f.read(size + 1)
    if len(raw) != size:
        _fail(path, "the file changed while being read")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER_BYTES or 8 + n > size:
        _fail(path, f"header of {n:,} bytes: damaged, or not a LeNet-5 model file")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        _fail(path, f"unreadable safetensors header ({e})")
    if not isinstance(header, dict):
        _fail(path, "unreadable safetensors header (not a JSON object)")
    config, expected = _check_metadata(path, header.pop("__metadata__", None))
    _check_entries(path, header, config, expected, size - 8 - n)
    try:
        tensors = st.load(raw)
    except Exception as e:  # the library's own parser (SafetensorError and others)
        _fail(path, f"unreadable safetensors data ({e})")
    for name, value in tensors.items():
        if value.dtype != np.float32 or value.shape != expected[name]:
            _fail(path, f"{name} decoded as {value.dtype} {value.shape}")
        if not np.all(np.isfinite(value)):
            _fail(path, f"{name} contains non-finite values")
    return ModelFile(config, tensors, [])
