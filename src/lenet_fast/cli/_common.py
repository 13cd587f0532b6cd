"""What the subcommands of ``lenet-fast`` share: the error they raise, the argument
types, loading MNIST and models, and safe writes. A `CLIError` becomes one
``lenet-fast: error: ...`` line and its exit code (the codes: `lenet_fast.cli`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from pathlib import Path

from .._io import checkpoint, datasets, files
from .._io.files import atomic_write

PROG = "lenet-fast"


class CLIError(Exception):
    """An error reported as one ``lenet-fast: error: ...`` line and an exit code."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


class _UsageError(Exception):
    """Raised by the parser instead of printing usage and exiting."""

    def __init__(self, message, prog):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message, self.prog)


def _one_line(message):
    """Collapse a (possibly multi-line) message into one line."""
    text = ""
    for line in str(message).splitlines():
        line = line.strip()
        if line:
            text += (" " if text.endswith((".", ":", ";")) else "; ") + line if text else line
    return text or "unknown error"


def _os_error(exc):
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


# --------------------------------------------------------------------------
# Argument types: each gives a clear message for a bad value
# --------------------------------------------------------------------------


def _number(convert, what, ok):
    """An argparse type: ``convert(text)`` (int or float), finite and ``ok(value)``; else
    an error saying the value must be `what`."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


_positive_int = _number(int, "a positive integer (>= 1)", lambda v: v >= 1)
_non_negative_int = _number(int, "a non-negative integer (>= 0)", lambda v: v >= 0)
_positive_float = _number(float, "a positive finite number (> 0)", lambda v: v > 0)
_non_negative_float = _number(float, "a finite number >= 0", lambda v: v >= 0)
_smoothing = _number(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def _thread_count(text):
    """--threads: a positive integer up to lenet_fast.ops.MAX_THREADS."""
    from .._compute.ops import MAX_THREADS
    value = _positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_THREADS}, got {text!r}")
    return value


def _positive_int_list(text):
    """A comma-separated list of positive integers, e.g. '1,2'."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be comma-separated positive integers, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"must be comma-separated positive integers (>= 1), got {text!r}")
        if value not in values:
            values.append(value)
    return values


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------




# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _load_split(split, data_dir, *, download, progress, limit=None):
    try:
        images, labels = datasets.load_mnist(split, data_dir, download=download, progress=progress)
    except (datasets.DataNotFoundError, datasets.DataFormatError) as exc:
        raise CLIError(_one_line(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot read MNIST {split!r} data: {_os_error(exc)}") from None
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def _load_model(path):
    from .._model.lenet5 import load

    try:
        return load(path)
    except FileNotFoundError as exc:
        raise CLIError(str(exc) if exc.filename is None else _os_error(exc)) from None
    except checkpoint.CheckpointError as exc:
        raise CLIError(_one_line(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot read model {path}: {_os_error(exc)}") from None


def _check_writable(path, what):
    """Fail early, before a long run, if `path` cannot be written.

    Creates the file's folder if needed (the later write would too) and probes
    it with a temporary file, which is removed.
    """
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{what} {path} is a directory, expected a file name")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files.check_writable(folder)
    except OSError as exc:
        raise CLIError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def write_json_atomic(path, data):
    """Write `data` as JSON to `path` atomically (`lenet_fast._io.files.atomic_write`)."""
    def write(f):
        json.dump(data, f, indent=2, sort_keys=True, allow_nan=True)
        f.write("\n")
    atomic_write(path, write, binary=False, suffix=".json")


def _write_metrics(path, data):
    try:
        write_json_atomic(path, data)
    except OSError as exc:
        raise CLIError(f"cannot write metrics JSON {path}: {_os_error(exc)}") from None


def _resolve_threads(threads):
    from .._compute.ops import resolve_threads
    return resolve_threads(threads)


# --------------------------------------------------------------------------
# train


def _add_data_options(p, *, train_limit, test_limit=True):
    """--data-dir, --no-download, [--train-limit,] [--test-limit] (report, sweep, reproduce)."""
    p.add_argument("--data-dir", metavar="D", default=None,
                   help=f"folder with the MNIST IDX files (default: ${datasets.ENV_VAR}, "
                        "else ~/.cache/lenet_fast/mnist)")
    p.add_argument("--no-download", action="store_true",
                   help="fail instead of downloading missing MNIST files")
    if train_limit:
        p.add_argument("--train-limit", type=_positive_int, default=None, metavar="N",
                       help="for quick trials: train on the first N training images only")
    if test_limit:
        p.add_argument("--test-limit", type=_positive_int, default=None, metavar="N",
                       help="for quick trials: evaluate on the first N test images only")



def _pretrained_names():
    from .._model.pretrained import NAMES
    return NAMES


def _load_pretrained(name):
    from .._model.pretrained import pretrained

    try:
        return pretrained(name)
    except (checkpoint.CheckpointError, FileNotFoundError) as exc:
        raise CLIError(_one_line(exc)) from None


@contextlib.contextmanager
def _resumable_runs(results, cannot_write):
    """The errors of many trainings whose finished runs are saved in `results` as they
    end (sweep, reproduce): each one line, with how to go on; `cannot_write` opens the
    message of a failed write. Missing MNIST is left to the caller."""
    from .._training.sweep import SweepError

    rerun = f"the finished runs are saved in {results}; rerun the same command to run the others"
    try:
        yield
    except SweepError as exc:
        raise CLIError(f"{_one_line(exc)}; {rerun}") from None
    except KeyboardInterrupt:
        raise CLIError(f"interrupted; {rerun}", code=130) from None
    except OSError as exc:
        if isinstance(exc, datasets.DataNotFoundError):
            raise
        raise CLIError(f"{cannot_write}: {_os_error(exc)}") from None


def _seeds(text):
    from .._training.sweep import parse_seeds
    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
