"""Shared fixtures: where the real MNIST files are, and the loaded splits.

The data folder is ``$LENET_FAST_DATA_DIR`` if set, otherwise ``../shared/data/mnist``
next to the repository. When the variable is unset it is set for the session, so
library calls that look the data up by themselves (``load_mnist()``) find it. Tests
that need the data skip with a clear reason when the four IDX files are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lenet_fast import datasets
from lenet_fast._io import datasets as _datasets  # patched: the code reads it there

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _data_dir() -> Path:
    env = os.environ.get(datasets.ENV_VAR)
    return Path(env).expanduser().resolve() if env else DEFAULT_DATA_DIR.resolve()


def _missing_files(folder: Path) -> list[str]:
    """IDX files (raw or .gz) absent from `folder`."""
    return [name for name in MNIST_FILES if _datasets._locate(folder, name) is None]


def pytest_configure(config):
    # At session start: point the library at the data unless the user already did.
    if not os.environ.get(datasets.ENV_VAR):
        os.environ[datasets.ENV_VAR] = str(DEFAULT_DATA_DIR.resolve())


def _read_only(split):
    """Shared between tests: make accidental in-place changes fail loudly."""
    for a in split:
        a.setflags(write=False)
    return split


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder holding the four real MNIST IDX files (skips the test if any is absent)."""
    folder = _data_dir()
    missing = _missing_files(folder)
    if missing:
        pytest.skip(
            f"real MNIST not available: {', '.join(missing)} (raw or .gz) missing from "
            f"{folder}; set {datasets.ENV_VAR} to a folder holding the IDX files"
        )
    return folder


@pytest.fixture(scope="session")
def mnist_train(mnist_dir):
    """(images uint8 (60000, 28, 28), labels uint8 (60000,)) of the training split."""
    return _read_only(datasets.load_mnist("train", mnist_dir, download=False, progress=False))


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    """(images uint8 (10000, 28, 28), labels uint8 (10000,)) of the test split."""
    return _read_only(datasets.load_mnist("test", mnist_dir, download=False, progress=False))
