"""Pretrained models shipped with the package: ``lenet_fast.pretrained("modern")``.

Two model files live in the package's ``zoo`` folder, each trained by this project's
own recipe (`lenet_fast.recipes`) with the command in `COMMANDS`, on the MNIST
training set: ``modern.npz`` (``lenet-fast train --seed 0``) and ``lecun98.npz``
(``lenet-fast train --variant lecun98 --seed 0``). Each records, in its
``meta/provenance`` entry, the command that made it, the build that ran it
(`lenet_fast.build_info`), the library version and its MNIST test accuracy (`info`).
``zoo/SHA256SUMS`` holds each file's SHA-256 (``sha256sum -c`` reads it); `pretrained`
checks it before loading, so a damaged or edited file is refused with a clear error.
``scripts/make_pretrained.py`` remakes both files and the sums in one command.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .._io.checkpoint import CheckpointError, read_provenance

#: The pretrained models and the ``lenet-fast`` arguments that train each one.
COMMANDS = {
    "modern": ["train", "--seed", "0"],
    "lecun98": ["train", "--variant", "lecun98", "--seed", "0"],
}
NAMES = tuple(COMMANDS)
FOLDER = Path(__file__).resolve().parent / "zoo"
SUMS = "SHA256SUMS"


def _check_name(name):
    if name not in COMMANDS:
        raise ValueError(f"no pretrained model {name!r}; there are: {', '.join(NAMES)}")


def path(name):
    """The file of pretrained model `name` ("modern" or "lecun98"), checked against its
    SHA-256 (ValueError for an unknown name; FileNotFoundError if it is missing;
    CheckpointError if its digest is not the one recorded).

    Parameters
    ----------
    name : {"modern", "lecun98"}
        The pretrained model (a key of `COMMANDS`).

    Returns
    -------
    pathlib.Path
        The absolute path of ``<name>.npz`` in the package's ``zoo`` folder, its SHA-256
        equal to the one ``zoo/SHA256SUMS`` records.
    """
    _check_name(name)
    file = FOLDER / f"{name}.npz"
    sums = FOLDER / SUMS
    if not file.is_file() or not sums.is_file():
        raise FileNotFoundError(f"the pretrained model {name!r} is not installed ({file}); "
                                "reinstall lenet-fast or run scripts/make_pretrained.py")
    expected = None
    for line in sums.read_text().splitlines():
        digest, _, filename = line.partition("  ")
        if filename.strip() == file.name:
            expected = digest.strip()
    actual = hashlib.sha256(file.read_bytes()).hexdigest()
    if expected is None:
        raise CheckpointError(f"{file}: no SHA-256 recorded for it in {sums}")
    if actual != expected:
        raise CheckpointError(f"{file}: SHA-256 {actual[:16]}... is not the recorded "
                              f"{expected[:16]}...: the file is damaged or was modified; "
                              "reinstall lenet-fast")
    return file


def pretrained(name="modern"):
    """A model trained by this project's recipe for `name`, shipped with the package.

    Parameters
    ----------
    name : {"modern", "lecun98"}

    Returns
    -------
    LeNet5
        Its ``history`` is the training run's per-epoch history; `info` tells the
        command, build and test accuracy.

    Raises
    ------
    ValueError
        For another name.
    CheckpointError
        If the installed file is not the one recorded (damaged or modified).
    """
    from .lenet5 import load

    return load(path(name))


def info(name="modern"):
    """What pretrained model `name` records of itself: a dict with ``command`` (the
    ``lenet-fast`` command line that trained it), ``build`` (`lenet_fast.build_info()` of
    the build that trained it), ``version``, ``test_accuracy`` (on the 10,000 MNIST test
    digits), ``sha256`` (of the file) and ``file``.

    Parameters
    ----------
    name : {"modern", "lecun98"}
        Its file is found and checked by `path`, which raises for an unknown name, a
        missing file or a digest that is not the one recorded.

    Returns
    -------
    dict
        The file's ``meta/provenance`` entry (``command`` str, ``build`` dict,
        ``version`` str, ``test_accuracy`` float in 0..1, and ``made``, the UTC time it
        was made) with ``file`` (str, the absolute path `path` returns) and ``sha256``
        (str, 64 hex digits) added.
    """
    file = path(name)
    recorded = read_provenance(file) or {}
    return dict(recorded, file=str(file),
                sha256=hashlib.sha256(file.read_bytes()).hexdigest())
