"""Reading and writing files safely: the one home of lenet_fast's file hardening.

- `open_regular` opens a file for reading without blocking and refuses anything but a
  regular file (a FIFO, a device or a folder given as a model or data file raises at
  once instead of hanging or reading forever).
- `read_into` fills a buffer from a stream a chunk at a time, never reading more than
  the buffer holds (what a file's header announces bounds the memory, not the file).
- `atomic_write` writes a file through a temporary file in the same folder, fsync and
  rename, so a reader sees the old file or the new one, never a mix. A process killed
  in the middle of a save (kill -9, power loss) cannot remove its temporary file; the
  next `atomic_write` into that folder removes such orphans: files named exactly as
  `temporary_name` names them whose writer is gone (a dead process on this machine) or
  that nobody has written to for `STALE_SECONDS`.

Model files and checkpoints (`lenet_fast.checkpoint`), MNIST downloads
(`lenet_fast.datasets`) and the command line's JSON files all go through here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import stat
import tempfile
import time

__all__ = ["STALE_SECONDS", "open_regular", "read_into", "atomic_write", "check_writable",
           "temporary_name", "is_temporary_name", "remove_stale_temporaries"]

#: A temporary file of ours that nobody has written to for this long is an orphan,
#: whatever its name says about its writer (covers other machines on a shared folder
#: and process ids reused since the writer died).
STALE_SECONDS = 600

#: Bytes per read of `read_into`.
READ_CHUNK = 1 << 20

_MARK = ".lf-tmp-"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
# .<start of the target's name>.lf-tmp-<host>-<pid>-<8 random chars, as tempfile makes
# them><suffix>
_PATTERN = re.compile(r"^\.(?P<target>.{0,64})" + re.escape(_MARK)
                      + r"(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]{1,10})-[a-z0-9_]{8}"
                      r"(?P<suffix>\.[A-Za-z0-9]{1,8})?$", re.DOTALL)


def _prefix(target):
    """Start of the temporary name for `target` (a file name), up to the random part."""
    return f".{os.path.basename(target)[:64]}{_MARK}{_HOST}-{os.getpid()}-"


def temporary_name(target, suffix=""):
    """A name `atomic_write` could give the temporary file of `target` (for tests and docs).

    Parameters
    ----------
    target : str or os.PathLike
        The file being written (only its base name is used).
    suffix : str
        Appended after the random part (e.g. ".npz").
    """
    return f"{_prefix(os.fspath(target))}{'x' * 8}{suffix}"


def is_temporary_name(name):
    """True if `name` (a file name) is exactly how `atomic_write` names its temporaries."""
    return _PATTERN.match(name) is not None


def _process_gone(pid):
    """True if no process `pid` runs on this machine (POSIX; False where it cannot tell)."""
    if os.name != "posix" or pid <= 0:
        return False  # os.kill on Windows would terminate the process: never use it there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


def remove_stale_temporaries(folder):
    """Remove the orphaned temporary files of `atomic_write` in `folder`.

    Only regular files whose name matches our pattern exactly are considered; of those,
    a file is removed when its writer was a process of this machine that no longer
    runs, or when it has not been modified for `STALE_SECONDS`. Errors (a file removed
    by someone else meanwhile, no permission) are ignored.

    Returns
    -------
    list of str
        The names removed.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PATTERN.match(entry.name)
        if match is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        pid = int(match["pid"])
        mine = match["host"] == _HOST
        if mine and pid == os.getpid():
            stale = False  # another thread of this process may be writing it
        else:
            stale = (mine and _process_gone(pid)) or now - st.st_mtime > STALE_SECONDS
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def _fsync_folder(folder):
    """Make a rename in `folder` durable, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, write, *, binary=True, suffix="", mode=None):
    """Write a file atomically: `write(f)` fills a temporary file in the same folder,
    which is flushed, fsynced and renamed over `path` (the rename is fsynced too).

    On any failure (including KeyboardInterrupt) the temporary file is removed and an
    existing `path` is untouched. Orphans of writers that were killed are removed first
    (`remove_stale_temporaries`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder is created if missing.
    write : callable
        ``write(f)`` with `f` the open temporary file.
    binary : bool
        Open the temporary file in binary mode (else text, UTF-8).
    suffix : str
        Suffix of the temporary file's name.
    mode : int or None
        Permission bits of the new file (default: 0o600, readable by its owner only).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=suffix, dir=folder)
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def check_writable(folder):
    """Create and remove a temporary file in `folder` (named as `atomic_write` names its
    temporaries); raises OSError if the folder cannot be written."""
    fd, tmp = tempfile.mkstemp(prefix=_prefix("probe"), dir=folder)
    os.close(fd)
    os.unlink(tmp)


def open_regular(path, error, what="file"):
    """Open `path` for reading in binary mode if it is a regular file.

    The file is opened without blocking (a FIFO with no writer would otherwise block
    `open` forever), then checked with fstat on the open descriptor, so it cannot be
    swapped between the check and the read.

    Parameters
    ----------
    path : str or os.PathLike
    error : type
        Exception class raised (with the path in the message) for a non-regular file.
    what : str
        What the file should be, for the message ("model file", "IDX file").

    Returns
    -------
    (file, os.stat_result)
        The open binary file (blocking mode restored) and its status.

    Raises
    ------
    FileNotFoundError, PermissionError, OSError
        As `open` does.
    error
        If `path` is a folder, FIFO, socket or device.
    """
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    nonblock = getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | nonblock)
    except IsADirectoryError:
        raise error(f"{path}: not a regular file (a folder); expected a {what}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a folder" if stat.S_ISDIR(st.st_mode) else
                    "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                    "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                    "a socket" if stat.S_ISSOCK(st.st_mode) else "not a file")
            raise error(f"{path}: not a regular file ({kind}); expected a {what}")
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def read_into(stream, out):
    """Fill the array `out` (any dtype, C- or F-contiguous) from `stream`'s bytes,
    `READ_CHUNK` at a time; returns the bytes read (fewer than ``out.nbytes`` when the
    stream ends first). Never reads past ``out.nbytes``."""
    view = memoryview(out.reshape(-1, order="A").view("u1"))
    pos = 0
    while pos < len(view):
        n = stream.readinto(view[pos:pos + READ_CHUNK])
        if not n:
            break
        pos += n
    return pos
