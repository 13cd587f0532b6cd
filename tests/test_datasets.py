"""Tests for lenet_fast.datasets: MNIST loading, validation, download, preprocessing."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import struct
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from lenet_fast import datasets
from lenet_fast.datasets import DataFormatError, DataNotFoundError, load_mnist, preprocess
from lenet_fast._io import datasets as _datasets  # patched: the code reads it there

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
ALL_FILES = TRAIN_FILES + TEST_FILES

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# SHA-256 of the decompressed IDX files (header + payload).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def _real_data_dir() -> Path:
    env = os.environ.get("LENET_FAST_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "mnist"


REAL_DATA_DIR = _real_data_dir()
needs_real_data = pytest.mark.skipif(
    any(_datasets._locate(REAL_DATA_DIR, name) is None for name in ALL_FILES),
    reason=f"real MNIST files not found in {REAL_DATA_DIR} (set LENET_FAST_DATA_DIR to a copy)",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """Keep tests away from the user's cache and real network."""
    monkeypatch.delenv("LENET_FAST_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="module")
def real_mnist():
    """Both real splits, loaded once through LENET_FAST_DATA_DIR."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LENET_FAST_DATA_DIR", str(REAL_DATA_DIR))
        return {split: load_mnist(split, download=False) for split in ("train", "test")}


# --------------------------------------------------------------------------
# Helpers building small synthetic IDX files
# --------------------------------------------------------------------------


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(f">{1 + len(dims)}I", magic, *dims) + payload


def write(path: Path, data: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def synthetic(n: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_split(folder: Path, images, labels, gz: bool = True, names=TRAIN_FILES) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write(folder / names[0], idx_bytes(2051, (len(images), 28, 28), images.tobytes()), gz),
        write(folder / names[1], idx_bytes(2049, (len(labels),), labels.tobytes()), gz),
    ]


# --------------------------------------------------------------------------
# The real data set
# --------------------------------------------------------------------------


@needs_real_data
def test_real_shapes_and_dtypes(real_mnist):
    images, labels = real_mnist["train"]
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    images, labels = real_mnist["test"]
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8


@needs_real_data
def test_real_label_counts(real_mnist):
    assert np.bincount(real_mnist["train"][1], minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(real_mnist["test"][1], minlength=10).tolist() == TEST_COUNTS


@needs_real_data
@pytest.mark.parametrize("split, names", [("train", TRAIN_FILES), ("test", TEST_FILES)])
def test_real_content_matches_published_sha256(real_mnist, split, names):
    # Rebuild each IDX file from the decoded arrays: every byte must be right.
    images, labels = real_mnist[split]
    image_file = struct.pack(">4I", 2051, len(images), 28, 28) + images.tobytes()
    label_file = struct.pack(">2I", 2049, len(labels)) + labels.tobytes()
    assert hashlib.sha256(image_file).hexdigest() == SHA256[names[0]]
    assert hashlib.sha256(label_file).hexdigest() == SHA256[names[1]]


@needs_real_data
def test_real_raw_files_load_identically(real_mnist, tmp_path):
    for name in TEST_FILES:
        with gzip.open(_datasets._locate(REAL_DATA_DIR, name), "rb") as src:
            (tmp_path / name).write_bytes(src.read())
    images, labels = load_mnist("test", tmp_path, download=False)
    np.testing.assert_array_equal(images, real_mnist["test"][0])
    np.testing.assert_array_equal(labels, real_mnist["test"][1])


# --------------------------------------------------------------------------
# Reading synthetic files
# --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_synthetic_roundtrip(tmp_path, gz):
    images, labels = synthetic(7)
    write_split(tmp_path, images, labels, gz=gz)
    got_images, got_labels = load_mnist("train", tmp_path, download=False)
    assert got_images.dtype == np.uint8 and got_labels.dtype == np.uint8
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_mixed_raw_and_gzip(tmp_path):
    images, labels = synthetic(3)
    write(tmp_path / TEST_FILES[0], idx_bytes(2051, (3, 28, 28), images.tobytes()), gz=False)
    write(tmp_path / TEST_FILES[1], idx_bytes(2049, (3,), labels.tobytes()), gz=True)
    got_images, got_labels = load_mnist("test", tmp_path, download=False)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_invalid_split(tmp_path):
    with pytest.raises(ValueError, match="train.*test"):
        load_mnist("validation", tmp_path, download=False)


# --------------------------------------------------------------------------
# Corrupt files
# --------------------------------------------------------------------------


def _expect_format_error(folder: Path, filename: str, match: str) -> DataFormatError:
    with pytest.raises(DataFormatError, match=match) as info:
        load_mnist("train", folder, download=False)
    assert filename in str(info.value)
    return info.value


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_bad_magic(tmp_path, gz):
    images, labels = synthetic()
    write_split(tmp_path, images, labels, gz=gz)
    path = write(tmp_path / TRAIN_FILES[0], idx_bytes(2049, (5, 28, 28), images.tobytes()), gz)
    _expect_format_error(tmp_path, path.name, "magic")


def test_bad_label_magic(tmp_path):
    images, labels = synthetic()
    _, path = write_split(tmp_path, images, labels)
    path.write_bytes(gzip.compress(idx_bytes(2051, (5,), labels.tobytes())))
    _expect_format_error(tmp_path, path.name, "magic")


def test_bad_image_dims(tmp_path):
    images, labels = synthetic()
    write_split(tmp_path, images, labels)
    path = write(tmp_path / TRAIN_FILES[0], idx_bytes(2051, (5, 28, 27), images.tobytes()[: 5 * 28 * 27]), True)
    _expect_format_error(tmp_path, path.name, "28x27")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_truncated_payload(tmp_path, gz):
    images, labels = synthetic()
    write_split(tmp_path, images, labels, gz=gz)
    path = write(tmp_path / TRAIN_FILES[0], idx_bytes(2051, (5, 28, 28), images.tobytes()[:-1]), gz)
    _expect_format_error(tmp_path, path.name, "truncated")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_truncated_header(tmp_path, gz):
    images, labels = synthetic()
    write_split(tmp_path, images, labels, gz=gz)
    path = write(tmp_path / TRAIN_FILES[1], struct.pack(">I", 2049) + b"\x00\x00", gz)
    _expect_format_error(tmp_path, path.name, "truncated")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_trailing_bytes(tmp_path, gz):
    images, labels = synthetic()
    write_split(tmp_path, images, labels, gz=gz)
    path = write(tmp_path / TRAIN_FILES[1], idx_bytes(2049, (5,), labels.tobytes() + b"\x00"), gz)
    _expect_format_error(tmp_path, path.name, "trailing")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_huge_count_fails_fast_without_allocating(tmp_path, gz):
    images, labels = synthetic()
    write_split(tmp_path, images, labels, gz=gz)
    # Claims 10**9 images (784 GB) but holds five.
    path = write(tmp_path / TRAIN_FILES[0], idx_bytes(2051, (10**9, 28, 28), images.tobytes()), gz)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        error = _expect_format_error(tmp_path, path.name, "more than the 60000")
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "1000000000 images" in str(error)
    assert elapsed < 1.0
    assert peak < 16 * 2**20


def test_label_out_of_range(tmp_path):
    images, labels = synthetic()
    labels[3] = 10
    _, path = write_split(tmp_path, images, labels)
    error = _expect_format_error(tmp_path, path.name, "outside 0..9")
    assert "index 3" in str(error)


def test_mismatched_counts(tmp_path):
    images, labels = synthetic(5)
    write_split(tmp_path, images, labels[:4])
    error = _expect_format_error(tmp_path, TRAIN_FILES[0], "5 images")
    assert TRAIN_FILES[1] in str(error) and "4 labels" in str(error)


def _corrupt_flipped(data: bytes) -> bytes:
    blob = bytearray(gzip.compress(data))
    for i in range(len(blob) // 2, len(blob) // 2 + 64):  # inside the (random) payload
        blob[i] ^= 0xFF
    return bytes(blob)


@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_flipped,
        lambda data: gzip.compress(data)[:-20],  # stream cut short
        lambda data: b"this is not gzip data at all" + data,  # not gzip
        lambda data: gzip.compress(data)[:-8] + b"\x00" * 8,  # bad CRC and length
        lambda data: gzip.compress(data)[:10] + b"\xff" * 64,  # invalid deflate block type
    ],
    ids=["flipped-bytes", "cut-short", "not-gzip", "bad-crc", "bad-deflate"],
)
def test_corrupt_gzip(tmp_path, corrupt):
    images, labels = synthetic()
    path, _ = write_split(tmp_path, images, labels)
    path.write_bytes(corrupt(idx_bytes(2051, (5, 28, 28), images.tobytes())))
    _expect_format_error(tmp_path, path.name, "corrupt gzip")


# --------------------------------------------------------------------------
# Missing data
# --------------------------------------------------------------------------


def test_missing_without_download(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("train", tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path) in message
    assert all(name in message for name in TRAIN_FILES)
    assert "LENET_FAST_DATA_DIR" in message and "--data-dir" in message and "data_dir=" in message
    assert "download=False" in message


def test_missing_with_network_down(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("LENET_FAST_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("test", progress=False)
    message = str(info.value)
    assert str(tmp_path / "data") in message
    assert "LENET_FAST_DATA_DIR" in message
    assert "network is unreachable (test)" in message
    assert all(name in message for name in TEST_FILES)
    assert os.listdir(tmp_path / "data") == []  # no temporary files left behind


def test_default_data_dir(tmp_path, monkeypatch):
    assert datasets.default_data_dir() == tmp_path / "xdg-cache" / "lenet_fast" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.default_data_dir() == tmp_path / "home" / ".cache" / "lenet_fast" / "mnist"
    monkeypatch.setenv("LENET_FAST_DATA_DIR", str(tmp_path / "elsewhere"))
    assert datasets.default_data_dir() == tmp_path / "elsewhere"


def test_found_through_xdg_cache(tmp_path):
    images, labels = synthetic()
    write_split(tmp_path / "xdg-cache" / "lenet_fast" / "mnist", images, labels)
    np.testing.assert_array_equal(load_mnist("train", download=False)[0], images)


# --------------------------------------------------------------------------
# Downloading (offline, from a local HTTP server)
# --------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def mirror_server(tmp_path, monkeypatch):
    """Serve tmp_path/www over HTTP with three mirrors and patch MIRRORS/MD5.

    ``missing/`` has nothing (404), ``bad/`` serves files with the wrong
    content, ``good/`` serves the right files. Yields the arrays to expect.
    """
    www = tmp_path / "www"
    images, labels = synthetic(6, seed=1)
    good = write_split(www / "good", images, labels, gz=True)
    write_split(www / "bad", images[::-1].copy(), labels, gz=True)
    (www / "missing").mkdir()
    for path in good:
        monkeypatch.setitem(datasets.MD5, path.name, hashlib.md5(path.read_bytes()).hexdigest())

    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(_datasets, "MIRRORS", [f"{base}/missing/", f"{base}/bad/", f"{base}/good/"])
    try:
        yield {"images": images, "labels": labels, "base": base, "good": good}
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("progress", [False, True], ids=["quiet", "progress-bar"])
def test_download_falls_back_to_good_mirror(mirror_server, tmp_path, monkeypatch, progress):
    cache = tmp_path / "xdg-cache" / "lenet_fast" / "mnist"
    images, labels = load_mnist("train", progress=progress)
    np.testing.assert_array_equal(images, mirror_server["images"])
    np.testing.assert_array_equal(labels, mirror_server["labels"])
    # Exactly the two files, no temporary leftovers, same bytes as served.
    assert sorted(os.listdir(cache)) == sorted(f"{name}.gz" for name in TRAIN_FILES)
    for served in mirror_server["good"]:
        assert (cache / served.name).read_bytes() == served.read_bytes()

    # Second load uses the cache and never touches the network.
    def no_network(*args, **kwargs):
        raise AssertionError("network used although the files are cached")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    np.testing.assert_array_equal(load_mnist("train", progress=False)[0], images)


def test_download_into_explicit_data_dir(mirror_server, tmp_path):
    target = tmp_path / "nested" / "target"
    load_mnist("train", target, progress=False)
    assert sorted(os.listdir(target)) == sorted(f"{name}.gz" for name in TRAIN_FILES)


def test_download_all_mirrors_fail_checksum(mirror_server, tmp_path, monkeypatch):
    base = mirror_server["base"]
    monkeypatch.setattr(_datasets, "MIRRORS", [f"{base}/missing/", f"{base}/bad/"])
    target = tmp_path / "target"
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("train", target, progress=False)
    message = str(info.value)
    assert "MD5 mismatch" in message and "404" in message
    assert f"{base}/bad/{TRAIN_FILES[0]}.gz" in message
    assert os.listdir(target) == []


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class DroppedResponse:
        headers = {"Content-Length": "1000"}

        def __init__(self):
            self._body = io.BytesIO(b"x" * 100)

        def read(self, size=-1):
            data = self._body.read(size)
            if not data:
                raise ConnectionResetError("connection reset by peer (test)")
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *args, **kwargs: DroppedResponse())
    with pytest.raises(DataNotFoundError, match="connection reset by peer"):
        load_mnist("train", tmp_path / "target", progress=False)
    assert os.listdir(tmp_path / "target") == []


# --------------------------------------------------------------------------
# preprocess
# --------------------------------------------------------------------------


def test_preprocess_shape_values_and_padding():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[1] = 255
    images[2] = np.arange(28 * 28).reshape(28, 28) % 256
    out = preprocess(images)
    assert out.shape == (3, 1, 32, 32) and out.dtype == np.float32
    assert np.allclose(out[0], -0.1, rtol=0, atol=1e-6)
    assert np.allclose(out[1, 0, 2:30, 2:30], 1.175, rtol=0, atol=1e-6)
    expected = -0.1 + images[2].astype(np.float64) * (1.275 / 255)
    assert np.allclose(out[2, 0, 2:30, 2:30], expected, rtol=0, atol=1e-6)
    border = np.ones((32, 32), dtype=bool)
    border[2:30, 2:30] = False
    assert np.all(np.abs(out[:, 0][:, border] + 0.1) <= 1e-6)


def test_preprocess_single_image():
    image = np.full((28, 28), 255, dtype=np.uint8)
    out = preprocess(image)
    assert out.shape == (1, 1, 32, 32) and out.dtype == np.float32
    assert abs(out[0, 0, 16, 16] - 1.175) <= 1e-6
    assert abs(out[0, 0, 0, 0] + 0.1) <= 1e-6


def test_preprocess_fills_out_buffer():
    images, _ = synthetic(1500)  # more than one internal chunk
    out = np.full((1500, 1, 32, 32), np.nan, dtype=np.float32)
    result = preprocess(images, out=out)
    assert result is out
    np.testing.assert_array_equal(out, preprocess(images))
    assert not np.isnan(out).any()


def test_preprocess_empty_batch():
    assert preprocess(np.zeros((0, 28, 28), dtype=np.uint8)).shape == (0, 1, 32, 32)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int8])
def test_preprocess_rejects_wrong_dtype(dtype):
    with pytest.raises(TypeError, match="uint8"):
        preprocess(np.zeros((2, 28, 28), dtype=dtype))


@pytest.mark.parametrize("shape", [(2, 32, 32), (28,), (2, 1, 28, 28), (28, 27)])
def test_preprocess_rejects_wrong_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        preprocess(np.zeros(shape, dtype=np.uint8))


def test_preprocess_rejects_bad_out():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    with pytest.raises(TypeError, match="float32"):
        preprocess(images, out=np.empty((2, 1, 32, 32), dtype=np.float64))
    with pytest.raises(ValueError, match="shape"):
        preprocess(images, out=np.empty((3, 1, 32, 32), dtype=np.float32))


@needs_real_data
def test_preprocess_real_digits(real_mnist):
    images = real_mnist["test"][0][:100]
    out = preprocess(images)
    assert abs(out.min() + 0.1) <= 1e-6 and abs(out.max() - 1.175) <= 1e-6
