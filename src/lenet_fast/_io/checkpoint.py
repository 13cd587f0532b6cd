"""Model files and training checkpoints: .npz archives, no pickle.

A file holds the format name and version, the library version, the model's
configuration, its parameters, its training history (``model.history``, optional:
files without it load with an empty history) and a SHA-256 digest over all of it (so
a tampered or damaged file is refused). Training checkpoints add the optimizer's state, the
schedule, the epoch and batch reached, the shuffling generator's state and the
history, so a resumed run ends with the same weights as an uninterrupted one.

Files are written atomically (`lenet_fast._io.files.atomic_write`: a temporary file in the
same folder, fsync, rename; orphans of killed writers are removed by the next save).

Reading trusts nothing in the file: only a regular file of at most `MAX_FILE_BYTES` is
opened; the zip directory's declared sizes and every entry's .npy header (plain
numbers, booleans or text: never objects, so never pickle) are checked against what a
LeNet-5 file can hold before anything is read, and each entry is read with bounded
memory (at most its declared size). Whatever is wrong raises `CheckpointError`.
"""

import hashlib
import json
import math
import os
import re
import struct
import zipfile
from typing import NamedTuple

import numpy as np

from .._version import __version__
from .._compute.tables import C3_CHOICES, INITS, param_shapes
from .files import atomic_write, open_regular, read_into

FORMAT = "lenet_fast"
FORMAT_VERSION = 1

#: Limits of what a lenet_fast file can hold. The largest real files are a few MB (a
#: checkpoint: 61,706 parameters, two optimizer buffers, a JSON history); anything
#: beyond these is refused before it is read, so a hostile file costs < 100 MB of memory.
MAX_FILE_BYTES = 16 * 2**20
MAX_ENTRIES = 128
MAX_ENTRY_BYTES = 8 * 2**20      # one array, uncompressed, as the zip directory declares it
MAX_TOTAL_BYTES = 32 * 2**20     # all arrays together, uncompressed
_MAX_DIRECTORY_BYTES = MAX_ENTRIES * 512
_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,200}\.npy$")
_DTYPE_KINDS = "biufU"           # bool, integers, floats, text


class CheckpointError(ValueError):
    """A model file or checkpoint that cannot be used (damaged, foreign, too new)."""


class ModelFile(NamedTuple):
    """What a model file holds, checked; `lenet_fast.load` builds the model from it.

    Parameters
    ----------
    config : dict
        The configuration, as `LeNet5.config` returns it.
    params : dict of str to ndarray
        float32 arrays by name, of the configuration's shapes, finite.
    history : list of dict
        The training history, as `Trainer.fit` records it ([] for files without one).
    """
    config: dict
    params: dict
    history: list


def check_config(path, config):
    """The parameter shapes of the model that `config`, a model file's configuration,
    describes.

    Parameters
    ----------
    path : str
        The file, for the error messages.
    config : dict
        The configuration read from the file.

    Returns
    -------
    dict of str to tuple
        Parameter name -> shape.

    Raises
    ------
    CheckpointError
        Unless `config` describes a LeNet5.
    """
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: bad model configuration (a {type(config).__name__}, "
                              "not a JSON object)")
    seed, init = config.get("seed", 0), config.get("init", "auto")
    try:
        shapes = dict(param_shapes(config["variant"]))
        if config["c3"] not in C3_CHOICES:
            raise ValueError(f"c3 must be one of {C3_CHOICES}, got {config['c3']!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if type(seed) is not int or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: bad model configuration ({e})") from None
    return shapes


#: Bounds of a saved training history (``meta/history``, JSON): a list of at most
#: HISTORY_MAX_EPOCHS dicts of at most HISTORY_MAX_KEYS entries, each a string key of
#: at most HISTORY_MAX_STRING characters and a number or a string of at most that many,
#: HISTORY_MAX_BYTES of JSON in all (4 MB as the stored text array: a fraction of what
#: one entry of a model file may take).
HISTORY_MAX_EPOCHS = 5_000
HISTORY_MAX_KEYS = 64
HISTORY_MAX_STRING = 256
HISTORY_MAX_BYTES = 1 << 20


def _history_problem(history):
    """Why `history` is not a list of dicts of numbers/strings within the bounds, or None."""
    if not isinstance(history, list):
        return f"a {type(history).__name__}, not a list"
    if len(history) > HISTORY_MAX_EPOCHS:
        return f"{len(history)} entries (at most {HISTORY_MAX_EPOCHS})"
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            return f"entry {i} is a {type(record).__name__}, not a dict"
        if len(record) > HISTORY_MAX_KEYS:
            return f"entry {i} has {len(record)} keys (at most {HISTORY_MAX_KEYS})"
        for key, value in record.items():
            if not isinstance(key, str) or len(key) > HISTORY_MAX_STRING:
                return f"entry {i} has a key that is not a string of <= {HISTORY_MAX_STRING} characters"
            if isinstance(value, str):
                if len(value) > HISTORY_MAX_STRING:
                    return f"entry {i}, {key!r}: string longer than {HISTORY_MAX_STRING} characters"
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"entry {i}, {key!r}: a {type(value).__name__}, not a number or string"
    return None


def _history_entry(model):
    """The ``meta/history`` entry of `model.history` (JSON text); ValueError if unfit."""
    history = [{k: v.item() if isinstance(v, np.generic) else v for k, v in record.items()}
               if isinstance(record, dict) else record
               for record in (getattr(model, "history", None) or [])]
    problem = _history_problem(history)
    if problem is None:
        text = json.dumps(history, sort_keys=True)
        if len(text.encode()) > HISTORY_MAX_BYTES:
            problem = f"{len(text.encode()):,} bytes of JSON (at most {HISTORY_MAX_BYTES:,})"
    if problem is not None:
        raise ValueError(f"model.history must be a list of dicts of numbers and strings: "
                         f"{problem}")
    return {"meta/history": np.array(text)}


def _history_from(path, arrays):
    """The training history stored in `arrays`: ``meta/history``, else a training
    checkpoint's, else []; CheckpointError if it is not a valid history."""
    if "meta/history" in arrays:
        entry = arrays["meta/history"]
        if entry.dtype.kind != "U" or entry.ndim != 0 or len(str(entry)) > HISTORY_MAX_BYTES:
            raise CheckpointError(f"{path}: meta/history is not a JSON text of at most "
                                  f"{HISTORY_MAX_BYTES:,} bytes")
        try:
            history = json.loads(str(entry))
        except ValueError as e:
            raise CheckpointError(f"{path}: meta/history is not valid JSON ({e})") from None
    elif "train/state" in arrays:
        try:
            history = json.loads(str(arrays["train/state"])).get("history", [])
        except (ValueError, AttributeError) as e:
            raise CheckpointError(f"{path}: unreadable training state ({e})") from None
    else:
        return []
    problem = _history_problem(history)
    if problem is not None:
        raise CheckpointError(f"{path}: bad training history: {problem}")
    return history


def _digest(arrays):
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype.str).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _atomic_savez(path, arrays):
    atomic_write(path, lambda f: np.savez(f, **arrays), suffix=".npz")


def _pack(model, extra=None):
    arrays = {
        "meta/format": np.array(FORMAT),
        "meta/format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "meta/library_version": np.array(__version__),
        "meta/config": np.array(json.dumps(model.config(), sort_keys=True)),
    }
    for name, value in model.params.items():
        arrays[f"param/{name}"] = np.array(value, dtype=np.float32)
    if extra:
        arrays.update(extra)
    arrays["meta/sha256"] = np.array(_digest(arrays))
    return arrays


def save_model(model, path, provenance=None):
    """Write `model` (with `model.history`) to `path` (.npz), atomically.

    Parameters
    ----------
    model : LeNet5
        The model to save.
    path : str or os.PathLike
        The file to write (replaced as a whole, never left half-written).
    provenance : dict or None
        JSON-able: where the model comes from (the command that made it, the build,
        its test accuracy: `lenet_fast.zoo`), stored in ``meta/provenance`` under the
        file's checksum; `read_provenance` reads it back.
    """
    extra = _history_entry(model)
    if provenance is not None:
        extra["meta/provenance"] = np.array(json.dumps(provenance, sort_keys=True))
    _atomic_savez(path, _pack(model, extra))


def save_training(path, model, optimizer, schedule, state):
    """Write a training checkpoint: the model plus what `Trainer` needs to resume.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, atomically.
    model : LeNet5
        The model being trained.
    optimizer : lenet_fast.optim.Optimizer
        Its state dict is saved.
    schedule : schedule object
        Its ``to_config()`` is saved.
    state : dict
        JSON-able: epoch, batch, generator state, history, settings.
    """
    extra = {f"optim/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()}
    extra["train/schedule"] = np.array(json.dumps(schedule.to_config(), sort_keys=True))
    extra["train/state"] = np.array(json.dumps(state, sort_keys=True))
    _atomic_savez(path, _pack(model, extra))


def _check_directory(f, size, path):
    """Check the zip's end record before `zipfile` reads the directory it points to:
    a few entries, a small directory, no ZIP64 (no lenet_fast file needs it)."""
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        raise CheckpointError(f"{path}: not a readable lenet_fast model file (not a zip archive)")
    n_entries, directory_bytes = struct.unpack("<10xHL6x", tail[pos:pos + 22])
    if pos >= 20 and tail[pos - 20:pos - 16] == b"PK\x06\x07":
        raise CheckpointError(f"{path}: a ZIP64 archive; lenet_fast files are small zip archives")
    if n_entries > MAX_ENTRIES or directory_bytes > _MAX_DIRECTORY_BYTES:
        raise CheckpointError(f"{path}: its zip directory declares {n_entries} entries in "
                              f"{directory_bytes} bytes; a lenet_fast file has at most "
                              f"{MAX_ENTRIES} entries")
    f.seek(0)


def _check_entries(infos, path):
    """The zip directory's names and declared sizes against what a lenet_fast file holds."""
    if len(infos) > MAX_ENTRIES:
        raise CheckpointError(f"{path}: {len(infos)} entries, more than a lenet_fast file "
                              f"has ({MAX_ENTRIES})")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise CheckpointError(f"{path}: duplicate entries in the archive")
    total = 0
    for info in infos:
        name = info.filename
        if not _NAME.match(name):
            raise CheckpointError(f"{path}: unexpected entry {name[:80]!r} (not a .npy array)")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"{path}: entry {name[:-4]} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"{path}: entry {name[:-4]} uses an unsupported compression")
        if info.file_size > MAX_ENTRY_BYTES:
            raise CheckpointError(f"{path}: entry {name[:-4]} declares {info.file_size:,} bytes, "
                                  f"more than an array of a lenet_fast file can hold "
                                  f"({MAX_ENTRY_BYTES:,}); refused before reading it")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise CheckpointError(f"{path}: its entries declare {total:,} bytes, more than a "
                              f"lenet_fast file holds ({MAX_TOTAL_BYTES:,})")


def _read_entry(zf, info, path):
    """One array, its .npy header checked (shape, dtype, size) before its data is read."""
    name = info.filename[:-4]
    fmt = np.lib.format
    with zf.open(info) as s:
        try:
            version = fmt.read_magic(s)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(s, max_header_size=10000)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(s, max_header_size=10000)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as e:
            raise CheckpointError(f"{path}: entry {name} is not a readable .npy array ({e})") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.kind not in _DTYPE_KINDS:
            raise CheckpointError(f"{path}: entry {name} holds {dtype} values; lenet_fast files hold "
                                  "plain numbers and text only (no objects, no pickle)")
        nbytes = math.prod(shape) * dtype.itemsize
        held = info.file_size - s.tell()
        if nbytes != held:
            raise CheckpointError(f"{path}: entry {name} declares shape {shape} of {dtype} "
                                  f"({nbytes:,} bytes) but holds {held:,} bytes")
        array = np.empty(shape, dtype, order="F" if fortran else "C")
        if read_into(s, array) != nbytes:   # at most the declared size, a chunk at a time
            raise CheckpointError(f"{path}: entry {name} is truncated")
    return array


def _read_arrays(path):
    """All arrays of the file at `path`, by entry name (without .npy), read safely."""
    f, st = open_regular(path, CheckpointError, "lenet_fast model file")
    with f:
        if st.st_size > MAX_FILE_BYTES:
            raise CheckpointError(f"{path}: {st.st_size:,} bytes, larger than a lenet_fast model "
                                  f"file can be ({MAX_FILE_BYTES:,})")
        try:
            _check_directory(f, st.st_size, path)
            with zipfile.ZipFile(f) as zf:
                infos = zf.infolist()
                _check_entries(infos, path)
                return {info.filename[:-4]: _read_entry(zf, info, path) for info in infos}
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                NotImplementedError, RuntimeError, struct.error) as e:
            raise CheckpointError(f"{path}: not a readable lenet_fast model file ({e})") from None


def _is_scalar(a, kind):
    return isinstance(a, np.ndarray) and a.shape == () and a.dtype.kind == kind


def _read(path):
    path = os.fspath(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    arrays = _read_arrays(path)
    fmt = arrays.get("meta/format")
    if fmt is None or not _is_scalar(fmt, "U") or str(fmt) != FORMAT:
        raise CheckpointError(f"{path}: not a lenet_fast model file")
    version = arrays.get("meta/format_version")
    if version is None or version.dtype != np.int64 or version.shape != ():
        got = "nothing" if version is None else f"{version.dtype} {version.shape} {version!r}"
        raise CheckpointError(f"{path}: the format version must be a 0-d int64 (as lenet_fast "
                              f"writes it), got {got}")
    version = int(version)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version} is newer than this lenet_fast "
                              f"({__version__}) reads (version {FORMAT_VERSION}); upgrade lenet_fast")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unknown format version {version}")
    stored = arrays.pop("meta/sha256", None)
    if stored is None or not _is_scalar(stored, "U") or str(stored) != _digest(arrays):
        raise CheckpointError(f"{path}: checksum mismatch; the file is damaged or was modified")
    return path, arrays


def _model_file(path, arrays):
    """The checked `ModelFile` of a read file's `arrays`, its history still empty."""
    try:
        config = json.loads(str(arrays["meta/config"]))
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model configuration ({e})") from None
    shapes = check_config(path, config)
    stored = {k[len("param/"):] for k in arrays if k.startswith("param/")}
    if stored != set(shapes):
        raise CheckpointError(f"{path}: parameters {sorted(stored ^ set(shapes))} do not match a "
                              f"{config['variant']} model")
    params = {}
    for name, shape in shapes.items():
        value = arrays[f"param/{name}"]
        if value.shape != shape or value.dtype != np.float32:
            raise CheckpointError(f"{path}: {name} has shape {value.shape} {value.dtype}, expected "
                                  f"{shape} float32")
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: {name} contains non-finite values")
        params[name] = value
    return ModelFile(config, params, [])


def read_model(path):
    """Read the model file (or a training checkpoint's model) at `path`: a `ModelFile`.

    `lenet_fast.load` is the user's entry: it also reads safetensors files, builds the
    model, and documents the errors (FileNotFoundError, CheckpointError).

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file.

    Returns
    -------
    ModelFile
    """
    path, arrays = _read(path)
    return _model_file(path, arrays)._replace(history=_history_from(path, arrays))


def read_provenance(path):
    """The ``provenance`` dict saved with a model file (`save_model`).

    Parameters
    ----------
    path : str or os.PathLike
        The .npz model file.

    Returns
    -------
    dict or None
        None if the file has none; a damaged file or entry raises CheckpointError.
    """
    path, arrays = _read(path)
    if "meta/provenance" not in arrays:
        return None
    return _json_entry(path, arrays, "meta/provenance")


def _json_entry(path, arrays, key):
    """The JSON object stored in entry `key`, or a CheckpointError naming it."""
    if key not in arrays:
        raise CheckpointError(f"{path}: no {key} entry; not a complete training checkpoint")
    if not _is_scalar(arrays[key], "U"):
        raise CheckpointError(f"{path}: {key} is not a text entry")
    try:
        value = json.loads(str(arrays[key]))
    except ValueError as e:
        raise CheckpointError(f"{path}: {key} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: {key} must be a JSON object, got {type(value).__name__}")
    return value


def _is_int(value, low=None):
    return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)


def _check_state(path, state):
    """The training state's fields and their types (ranges the trainer checks against its
    own settings)."""
    fields = {"epoch": lambda v: _is_int(v, 0), "batch": lambda v: _is_int(v, 0),
              "rng_state": lambda v: isinstance(v, dict),
              "history": lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
              "settings": lambda v: isinstance(v, dict)
              and all(_is_int(v.get(k), 1) for k in ("batch_size", "epochs"))
              and _is_int(v.get("seed"))}
    optional = {"train_seconds": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v) and v >= 0,
                "train_images": lambda v: _is_int(v, 0),
                "augment": lambda v: v is None or (isinstance(v, dict) and "config" in v
                                                   and "state" in v)}
    for key, ok in fields.items():
        if key not in state:
            raise CheckpointError(f"{path}: the training state has no {key}")
        if not ok(state[key]):
            raise CheckpointError(f"{path}: the training state's {key} is malformed: "
                                  f"{str(state[key])[:200]}")
    for key, ok in optional.items():
        if key in state and not ok(state[key]):
            raise CheckpointError(f"{path}: the training state's {key} is malformed: "
                                  f"{str(state[key])[:200]}")


def read_training(path):
    """Read a training checkpoint: (`ModelFile`, optimizer_state, schedule_config, state).

    Checks the entries' presence and types (CheckpointError otherwise): the optimizer
    state (finite values), the schedule's configuration (a JSON object with a name) and
    the training state (epoch, batch, rng_state, history, settings). Whether they fit a
    given trainer (epoch range, generator kind, optimizer) is `Trainer`'s to check.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint.

    Returns
    -------
    tuple
        (`ModelFile`, optimizer state dict, schedule configuration dict, training state
        dict).
    """
    path, arrays = _read(path)
    stored = _model_file(path, arrays)
    if "train/state" not in arrays:
        raise CheckpointError(f"{path}: a model file, not a training checkpoint (no optimizer state)")
    optim_state = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
    if "name" not in optim_state:
        raise CheckpointError(f"{path}: no optimizer state (optim/name)")
    for key, value in optim_state.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"{path}: optimizer state {key} holds non-finite values")
    schedule = _json_entry(path, arrays, "train/schedule")
    if not isinstance(schedule.get("name"), str):
        raise CheckpointError(f"{path}: train/schedule has no schedule name")
    state = _json_entry(path, arrays, "train/state")
    _check_state(path, state)
    return stored._replace(history=state["history"]), optim_state, schedule, state
