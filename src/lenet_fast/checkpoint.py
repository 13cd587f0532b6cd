"""Model files and training checkpoints: .npz archives, no pickle.

A file holds the format name and version, the library version, the model's
configuration, its parameters, its training history (``model.history``, optional:
files without it load with an empty history) and a SHA-256 digest over all of it (so
a tampered or damaged file is refused). Training checkpoints add the optimizer's state, the
schedule, the epoch and batch reached, the shuffling generator's state and the
history, so a resumed run ends with the same weights as an uninterrupted one.

Files are written atomically: a temporary file in the same folder, fsync, rename.
"""

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from . import __version__

FORMAT = "lenet_fast"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A model file or checkpoint that cannot be used (damaged, foreign, too new)."""


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


def atomic_write(path, write, *, binary=True, suffix=""):
    """Write a file atomically: `write(f)` fills a temporary file in the same folder,
    which is flushed, fsynced and renamed over `path` (the rename is fsynced too). On
    any failure the temporary file is removed and an existing `path` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


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


def save_model(model, path):
    """Write `model` (with `model.history`) to `path` (.npz), atomically."""
    _atomic_savez(path, _pack(model, _history_entry(model)))


def save_training(path, model, optimizer, schedule, state):
    """Write a training checkpoint: the model plus what `Trainer` needs to resume.

    `state` is a JSON-able dict (epoch, batch, generator state, history, settings).
    """
    extra = {f"optim/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()}
    extra["train/schedule"] = np.array(json.dumps(schedule.to_config(), sort_keys=True))
    extra["train/state"] = np.array(json.dumps(state, sort_keys=True))
    _atomic_savez(path, _pack(model, extra))


def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable lenet_fast model file ({e})") from None
    fmt = arrays.get("meta/format")
    if fmt is None or fmt.dtype.kind != "U" or str(fmt) != FORMAT:
        raise CheckpointError(f"{path}: not a lenet_fast model file")
    version = int(arrays.get("meta/format_version", -1))
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version} is newer than this lenet_fast "
                              f"({__version__}) reads (version {FORMAT_VERSION}); upgrade lenet_fast")
    if version < 1:
        raise CheckpointError(f"{path}: unknown format version {version}")
    stored = arrays.pop("meta/sha256", None)
    if stored is None or str(stored) != _digest(arrays):
        raise CheckpointError(f"{path}: checksum mismatch; the file is damaged or was modified")
    return path, arrays


def _model_from(path, arrays):
    from .model import LeNet5
    try:
        config = json.loads(str(arrays["meta/config"]))
        model = LeNet5(config["variant"], c3=config["c3"], seed=config.get("seed", 0),
                       init=config.get("init", "auto"))
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: bad model configuration ({e})") from None
    names = set(model.params)
    stored = {k[len("param/"):] for k in arrays if k.startswith("param/")}
    if stored != names:
        raise CheckpointError(f"{path}: parameters {sorted(stored ^ names)} do not match a "
                              f"{config['variant']} model")
    for name in names:
        value = arrays[f"param/{name}"]
        if value.shape != model.params[name].shape or value.dtype != np.float32:
            raise CheckpointError(f"{path}: {name} has shape {value.shape} {value.dtype}, expected "
                                  f"{model.params[name].shape} float32")
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: {name} contains non-finite values")
        model.params[name] = value
    return model


def load(path):
    """Load a model saved with `LeNet5.save` (or a training checkpoint's model).

    The model's ``history`` is the training history saved with it (a list of
    per-epoch dicts, as `Trainer.fit` returns; [] for files without one).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CheckpointError
        If the file is truncated, modified, foreign, of a newer format or has wrong shapes.
    """
    path, arrays = _read(path)
    model = _model_from(path, arrays)
    model.history = _history_from(path, arrays)
    return model


def load_training(path):
    """Load a training checkpoint: (model, optimizer_state, schedule_config, state)."""
    path, arrays = _read(path)
    model = _model_from(path, arrays)
    if "train/state" not in arrays:
        raise CheckpointError(f"{path}: a model file, not a training checkpoint (no optimizer state)")
    optim_state = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
    schedule = json.loads(str(arrays["train/schedule"]))
    state = json.loads(str(arrays["train/state"]))
    return model, optim_state, schedule, state
