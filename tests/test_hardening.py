"""Hostile input at the library's boundary (issue 13): thread counts, hostile and broken
files, memory bombs, crashed saves. Every corrupt file is generated here, in tmp_path.

Cases that could crash or hang the interpreter before the fixes (a segfault, a FIFO that
blocks forever, a multi-GB allocation) run in a child process with a timeout, which
also measures the child's peak memory (``VmHWM``, else ``ru_maxrss``).
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import lenet_fast
from lenet_fast import augment, checkpoint, ops
from lenet_fast._training.augment import gaussian_taps
from lenet_fast._io import files
from lenet_fast import CheckpointError
from lenet_fast import LeNet5
from lenet_fast.optim import Adam
from lenet_fast.schedules import ConstantLR
from lenet_fast._io import checkpoint as _checkpoint  # its private helpers

MB = 2**20
#: The peak a refused hostile file may cost, on top of nothing: the whole child process
#: (interpreter, numpy, lenet_fast) must stay under it.
PEAK_LIMIT = 100 * MB


def _child(code, timeout=60):
    """Run `code` in a fresh interpreter; returns (returncode, stdout, stderr).

    `code` may print ``PEAK`` to report its peak resident memory in bytes.
    """
    # VmHWM: this process image's peak (ru_maxrss would carry over the peak of the
    # forking parent through exec, and the pytest process may be large).
    prelude = textwrap.dedent("""
        import resource, sys
        def peak():
            try:
                with open("/proc/self/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            return int(line.split()[1]) * 1024
            except OSError:
                pass
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    """)
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def _refused_in_child(call, error, timeout=60):
    """Run `call` (an expression) in a child; it must raise `error` (a dotted name) within
    `timeout` seconds, under PEAK_LIMIT of peak memory. Returns the error's message."""
    code = f"""
        import lenet_fast, lenet_fast.cli, lenet_fast.datasets
        try:
            {call}
        except {error} as e:
            print("REFUSED", peak(), str(e).replace(chr(10), " "))
        else:
            print("ACCEPTED", peak())
    """
    try:
        rc, out, err = _child(code, timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{call} hung (> {timeout} s)")
    assert rc == 0, f"{call}: child died with {rc}: {err[-2000:]}"
    words = out.split(" ", 2)
    assert words[0] == "REFUSED", f"{call}: {out} {err[-2000:]}"
    peak = int(words[1])
    assert peak < PEAK_LIMIT, f"{call}: peak memory {peak / MB:.0f} MB"
    return words[2]


# ----------------------------------------------------------------------------- item 3: threads
@pytest.mark.parametrize("n", [ops.MAX_THREADS + 1, 100_000, 2**31, 2**40, 2**64])
def test_huge_thread_counts_are_refused_naming_the_argument(n):
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=rf"n_threads must be <= {ops.MAX_THREADS}"):
        ops.maxpool_forward(x, n_threads=n)
    with pytest.raises(ValueError, match="n_threads"):
        LeNet5(n_threads=n)
    model = LeNet5()
    with pytest.raises(ValueError, match="n_threads"):
        model.n_threads = n
    assert model.n_threads is None  # unchanged by the refused value
    with pytest.raises(ValueError, match="n_threads"):
        augment.Affine(n_threads=n)


def test_the_thread_cap_runs_and_openmp_default_is_capped(monkeypatch):
    """MAX_THREADS itself works (no crash) in every kind of entry point, and a huge
    OMP_NUM_THREADS default is capped rather than passed on."""
    rc, out, err = _child(f"""
        import numpy as np
        from lenet_fast import LeNet5, ops, optim
        x = np.random.default_rng(0).random((8, 1, 32, 32), dtype=np.float32)
        y = np.arange(8) % 10
        m = LeNet5(n_threads={ops.MAX_THREADS})
        loss = m.train_step(x, y, optim.make_optimizer("sgd", lr=0.01))
        ops.conv_forward(x, np.ones((6, 1, 5, 5), np.float32), np.zeros(6, np.float32),
                         n_threads={ops.MAX_THREADS})
        print(ops.resolve_threads(None), np.isfinite(loss))
    """, timeout=120)
    assert rc == 0, err[-2000:]
    assert out.split() == [str(min(os.cpu_count(), ops.MAX_THREADS)), "True"] or \
        int(out.split()[0]) <= ops.MAX_THREADS
    env = dict(os.environ, OMP_NUM_THREADS="100000")
    proc = subprocess.run([sys.executable, "-c",
                           "from lenet_fast import ops; print(ops.resolve_threads(None))"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) == ops.MAX_THREADS


def test_cli_threads_beyond_the_cap_is_a_usage_error(capsys):
    from lenet_fast import cli
    code = cli.main(["evaluate", "no-such-model.npz", "--threads", str(10**6)])
    assert code != 0
    assert "threads" in capsys.readouterr().err


# ----------------------------------------------------------------------------- item 4
@pytest.mark.parametrize("sigma", [0, -1, -0.5, float("nan"), float("inf")])
def test_gaussian_taps_rejects_non_positive_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        gaussian_taps(sigma)


@pytest.mark.parametrize("truncate", [0, -3, float("nan")])
def test_gaussian_taps_rejects_non_positive_truncate(truncate):
    with pytest.raises(ValueError, match="truncate"):
        gaussian_taps(1.0, truncate)


def test_gaussian_taps_still_normalised():
    g = gaussian_taps(4.0)
    assert g.dtype == np.float32 and g.shape == (2 * 12 + 1,)
    assert np.isfinite(g).all() and abs(float(g.sum()) - 1) < 1e-6


# ----------------------------------------------------------------------------- helpers: files
def _model(seed=3):
    model = LeNet5("modern", seed=seed)
    rng = np.random.default_rng(seed)
    model.flat_params += rng.normal(0, 1e-2, model.flat_params.shape).astype(np.float32)
    return model


def _raw(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write_sealed(path, arrays):
    """Write `arrays` with a recomputed digest (what a consistent forger would do)."""
    arrays = {k: v for k, v in arrays.items() if k != "meta/sha256"}
    arrays["meta/sha256"] = np.array(_checkpoint._digest(arrays))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _training_checkpoint(path):
    model = _model()
    opt = Adam(lr=2e-3)
    opt.step(model.flat_params.copy(), np.ones_like(model.flat_params))
    state = {"epoch": 1, "batch": 0, "rng_state": np.random.default_rng(0).bit_generator.state,
             "history": [{"epoch": 1}], "settings": {"batch_size": 64, "epochs": 2, "seed": 0}}
    checkpoint.save_training(path, model, opt, ConstantLR(2e-3), state)
    return path


def _zeros_deflated(zf, name, size):
    """Append an entry of `size` zero bytes, deflated, streamed in 1 MB pieces."""
    block = bytes(MB)
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as f:
        for _ in range(size // MB):
            f.write(block)


def _npy_header(dtype, shape):
    """The .npy header (format 1.0) of an array of `dtype` and `shape`, without data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": shape})
    return buf.getvalue()


def _replace_entry(path, name, data):
    """Rewrite the zip at `path` with entry `name` holding `data` (bytes)."""
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist() if n != name}
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
        zf.writestr(name, data)


# ----------------------------------------------------------------------------- item 5: bombs
def test_idx_header_beyond_mnist_is_refused_before_decompressing(tmp_path):
    """10**9 images announced, then 256 MB of gzipped zeros: refused from the header."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip container
    with open(path, "wb") as f:
        f.write(comp.compress(struct.pack(">4I", 2051, 10**9, 28, 28)))
        block = bytes(MB)
        for _ in range(256):
            f.write(comp.compress(block))
        f.write(comp.flush())
    message = _refused_in_child(f"lenet_fast.datasets.read_idx({str(path)!r}, 'images')",
                                "lenet_fast.datasets.DataFormatError")
    assert "1000000000 images" in message and "60000" in message
    # The same for `lenet-fast predict`, which reads IDX images through the same parser.
    _refused_in_child(f"lenet_fast.cli.predict.read_images({str(path)!r})",
                      "lenet_fast.datasets.DataFormatError")


def test_idx_with_a_plausible_header_and_a_gzip_bomb_after_it(tmp_path):
    """60,000 images announced (47 MB), followed by 256 MB more: read with bounded memory."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        f.write(comp.compress(struct.pack(">4I", 2051, 60000, 28, 28)))
        block = bytes(MB)
        for _ in range(256 + 45):
            f.write(comp.compress(block))
        f.write(comp.flush())
    message = _refused_in_child(f"lenet_fast.datasets.read_idx({str(path)!r}, 'images')",
                                "lenet_fast.datasets.DataFormatError")
    assert "trailing" in message


def test_model_file_with_a_huge_deflated_entry_is_refused_under_100_mb(tmp_path):
    path = tmp_path / "model.npz"
    _model().save(path)
    with zipfile.ZipFile(path, "a") as zf:
        _zeros_deflated(zf, "meta/extra.npy", 300 * MB)
    assert path.stat().st_size < 2 * MB
    message = _refused_in_child(f"lenet_fast.load({str(path)!r})", "lenet_fast.CheckpointError")
    assert "meta/extra" in message


def test_npy_header_declaring_a_huge_shape_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "model.npz"
    _model().save(path)
    for shape in [(10**12,), (2**40, 2**40), (10**6,)]:
        _replace_entry(path, "param/c1.weight.npy", _npy_header(np.float32, shape) + bytes(64))
        message = _refused_in_child(f"lenet_fast.load({str(path)!r})",
                                    "lenet_fast.CheckpointError")
        assert "param/c1.weight" in message
        _model().save(path)


def _set_declared_size(path, name, size):
    """Rewrite the uncompressed size of entry `name` (not ZIP64) in the zip's central
    directory and in the entry's local header."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo(name).header_offset
    assert data[offset:offset + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, offset + 22, size)
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + n] == name.encode():
            struct.pack_into("<I", data, pos + 24, size)
            break
        pos = data.find(b"PK\x01\x02", pos + 4)
    assert pos >= 0
    path.write_bytes(bytes(data))


def test_entry_bigger_than_its_declared_size_is_refused(tmp_path):
    """A zip directory that understates an entry's size (1 KB declared, 64 MB deflated
    behind it): the reader stops at the declared size and the CRC refuses the entry."""
    path = tmp_path / "model.npz"
    _model().save(path)
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("meta/extra.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as f:
            f.write(_npy_header(np.float32, (240,)))
            for _ in range(64):
                f.write(bytes(MB))
    _set_declared_size(path, "meta/extra.npy", len(_npy_header(np.float32, (240,))) + 960)
    message = _refused_in_child(f"lenet_fast.load({str(path)!r})", "lenet_fast.CheckpointError")
    assert "meta/extra" in message


def test_too_many_entries_are_refused(tmp_path):
    path = tmp_path / "model.npz"
    _model().save(path)
    with zipfile.ZipFile(path, "a") as zf:
        for i in range(checkpoint.MAX_ENTRIES + 1):
            zf.writestr(f"meta/x{i}.npy", _npy_header(np.float32, (0,)))
    with pytest.raises(CheckpointError, match="entries"):
        lenet_fast.load(path)


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "model.npz"
    _model().save(path)
    with open(path, "ab") as f:
        f.truncate(checkpoint.MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(CheckpointError, match="larger than"):
        lenet_fast.load(path)


# ----------------------------------------------------------------------------- item 6
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("call", [
    "lenet_fast.load({p!r})",
    "lenet_fast.checkpoint.read_training({p!r})",
    "lenet_fast.cli.predict.read_images({p!r})",
    "lenet_fast.datasets.read_idx({p!r}, 'images')",
])
def test_fifo_is_refused_without_hanging(tmp_path, call):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    message = _refused_in_child(call.format(p=str(fifo)), "ValueError", timeout=20)
    assert "not a regular file" in message


def test_directory_and_device_are_refused(tmp_path):
    for path in [tmp_path, "/dev/zero"]:
        if not os.path.exists(path):
            continue
        with pytest.raises(CheckpointError, match="not a regular file"):
            lenet_fast.load(path)


def test_plain_npy_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "model.npy"
    np.save(path, np.zeros(3, np.float32))
    with pytest.raises(CheckpointError, match="not a"):
        lenet_fast.load(path)
    with pytest.raises(CheckpointError):
        checkpoint.read_training(path)


@pytest.mark.parametrize("version", [np.array("1"), np.array(1.5), np.array(1.0),
                                     np.array(True), np.array([1]), np.array(1, np.int32)])
def test_format_version_must_be_the_int_the_writer_writes(tmp_path, version):
    path = tmp_path / "model.npz"
    _model().save(path)
    arrays = _raw(path)
    arrays["meta/format_version"] = version
    _write_sealed(path, arrays)
    with pytest.raises(CheckpointError, match="format version"):
        lenet_fast.load(path)


@pytest.mark.parametrize("key, inner", [("train/schedule", None), ("train/state", None),
                                        ("train/state", "rng_state"), ("train/state", "epoch"),
                                        ("train/state", "settings")])
def test_missing_training_entries_are_checkpoint_errors(tmp_path, key, inner):
    path = _training_checkpoint(tmp_path / "ckpt.npz")
    arrays = _raw(path)
    if inner is None:
        del arrays[key]
    else:
        state = json.loads(str(arrays[key]))
        del state[inner]
        arrays[key] = np.array(json.dumps(state))
    _write_sealed(path, arrays)
    with pytest.raises(CheckpointError, match=inner or key.split("/")[1]):
        checkpoint.read_training(path)


@pytest.mark.parametrize("text", ["{", "[]", "null", '"constant"'])
def test_malformed_schedule_json_is_a_checkpoint_error(tmp_path, text):
    path = _training_checkpoint(tmp_path / "ckpt.npz")
    arrays = _raw(path)
    arrays["train/schedule"] = np.array(text)
    _write_sealed(path, arrays)
    with pytest.raises(CheckpointError, match="schedule"):
        checkpoint.read_training(path)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "model.npz"
    _model().save(path)
    with zipfile.ZipFile(path, "a") as zf:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        zf.writestr("meta/evil.npy", buf.getvalue())
    with pytest.raises(CheckpointError, match="meta/evil"):
        lenet_fast.load(path)


# ----------------------------------------------------------------------------- item 8
def _temporaries(folder):
    return sorted(name for name in os.listdir(folder) if files.is_temporary_name(name))


def test_kill_9_during_a_save_leaves_nothing_after_the_next_save(tmp_path):
    """A child dies (SIGKILL) in the middle of writing a 64 MB file through the atomic
    writer; the next save into that folder removes the orphan, and nothing else."""
    target = tmp_path / "model.npz"
    _model().save(target)
    keep = tmp_path / ".tmp-mine.npz"          # a user's file that merely looks similar
    keep.write_bytes(b"x")
    code = f"""
        import os, sys
        from lenet_fast._io import files
        def write(f):
            for i in range(64):
                f.write(bytes(1 << 20))
                if i == 32:
                    f.flush()
                    print("HALF", flush=True)
                    sys.stdin.readline()      # parent kills us here
        files.atomic_write({str(target)!r}, write, suffix=".npz")
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HALF"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    orphans = _temporaries(tmp_path)
    assert len(orphans) == 1, os.listdir(tmp_path)
    assert os.path.getsize(tmp_path / orphans[0]) >= 32 * MB
    assert lenet_fast.load(target) is not None     # the old file is intact
    _model(seed=4).save(target)                     # the next save cleans up
    assert _temporaries(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == sorted([".tmp-mine.npz", "model.npz"])


def test_kill_9_in_a_loop_of_real_saves(tmp_path):
    """Many kill -9s at random moments of a child that saves checkpoints in a loop."""
    target = tmp_path / "ckpt.npz"
    code = f"""
        import numpy as np
        from lenet_fast import LeNet5, checkpoint
        from lenet_fast.optim import Adam
        from lenet_fast.schedules import ConstantLR
        m = LeNet5("lecun98")
        opt = Adam()
        opt.step(m.flat_params.copy(), np.ones_like(m.flat_params))
        state = {{"epoch": 1, "batch": 0, "rng_state": {{}}, "history": [{{"e": "x" * 2000000}}],
                  "settings": {{"batch_size": 1, "epochs": 2, "seed": 0}}}}
        print("READY", flush=True)
        while True:
            checkpoint.save_training({str(target)!r}, m, opt, ConstantLR(1e-3), state)
    """
    rng = np.random.default_rng(0)
    orphaned = 0
    for trial in range(30):       # at least 6 kills, more until one has landed inside a save
        if orphaned and trial >= 6:
            break
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "READY"
            time.sleep(float(rng.uniform(0.05, 0.4)))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        orphaned += len(_temporaries(tmp_path))
        if target.exists():
            checkpoint.read_training(target)  # whatever is there is whole
        _model().save(tmp_path / "other.npz")  # any save into the folder cleans up
        assert _temporaries(tmp_path) == []
    assert orphaned >= 1, "no kill landed during a save; the test proved nothing"


def test_live_writers_temporaries_are_kept(tmp_path):
    """A temporary whose writer is alive (here: this process) and young is not touched."""
    path = tmp_path / files.temporary_name("model.npz")
    path.write_bytes(b"partial")
    _model().save(tmp_path / "model.npz")
    assert path.exists()


# ----------------------------------------------------------------------------- item 7
def _small_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def _resume_trainer(opt=None, augmenter=None, **kw):
    from lenet_fast import Trainer
    model = LeNet5("modern", seed=7, n_threads=1)
    opt = opt or Adam(lr=1e-3)
    # the caller's state, before the resume: a step taken, so the optimizer has buffers
    opt.step(model.flat_params, np.full_like(model.flat_params, 1e-3))
    kw.setdefault("epochs", 3)
    return Trainer(model, opt, batch_size=32, progress=False, augment=augmenter, **kw)


@pytest.fixture(scope="module")
def resume_checkpoint(tmp_path_factory):
    """An epoch-001.npz of a 3-epoch run with affine distortions (Adam, one-cycle)."""
    folder = tmp_path_factory.mktemp("resume")
    t = _resume_trainer(augmenter=augment.Affine(), checkpoint_dir=folder, schedule="onecycle")
    t.epochs = 1
    t.fit(_small_data())
    return folder / "epoch-001.npz"


def _forge_state(arrays, change):
    state = json.loads(str(arrays["train/state"]))
    change(state)
    arrays["train/state"] = np.array(json.dumps(state))


def _set(path, value):
    def change(state):
        d = state
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return change


FORGERIES = {
    "optimizer buffer shape": lambda a: a.__setitem__("optim/exp_avg", np.zeros(5, np.float32)),
    "optimizer buffer dtype": lambda a: a.__setitem__("optim/exp_avg", a["optim/exp_avg"].astype(np.float64)),
    "optimizer buffer NaN": lambda a: a.__setitem__("optim/exp_avg_sq", np.full_like(a["optim/exp_avg_sq"], np.nan)),
    "optimizer lr inf": lambda a: a.__setitem__("optim/lr", np.array(np.inf)),
    "optimizer kind": lambda a: a.__setitem__("optim/name", np.array("sgd")),
    "epoch -5": lambda a: _forge_state(a, _set(["epoch"], -5)),
    "epoch past the end": lambda a: _forge_state(a, _set(["epoch"], 99)),
    "epoch not an int": lambda a: _forge_state(a, _set(["epoch"], 1.5)),
    "batch past the epoch": lambda a: _forge_state(a, _set(["batch"], 10**6)),
    "batch -1": lambda a: _forge_state(a, _set(["batch"], -1)),
    "garbage rng state": lambda a: _forge_state(a, _set(["rng_state"], {"bit_generator": "x"})),
    "rng state of another kind": lambda a: _forge_state(
        a, _set(["rng_state"], np.random.MT19937(0).state | {"state": {"key": [1], "pos": 0}})),
    "rng state values": lambda a: _forge_state(a, _set(["rng_state", "state", "state"], "x")),
    "unknown schedule": lambda a: a.__setitem__("train/schedule",
                                                 np.array(json.dumps({"name": "nope"}))),
    "schedule arguments": lambda a: a.__setitem__(
        "train/schedule", np.array(json.dumps({"name": "constant", "lr": -1, "zzz": 2}))),
    "augment state": lambda a: _forge_state(a, _set(["augment", "state"], {"bit_generator": 3})),
    "history not a list": lambda a: _forge_state(a, _set(["history"], 5)),
    "train_seconds": lambda a: _forge_state(a, _set(["train_seconds"], "soon")),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_refused_resume_leaves_model_optimizer_and_augmenter_unchanged(
        forgery, resume_checkpoint, tmp_path):
    arrays = _raw(resume_checkpoint)
    FORGERIES[forgery](arrays)
    path = tmp_path / "forged.npz"
    _write_sealed(path, arrays)

    augmenter = augment.Affine()
    augmenter.reseed(123)
    t = _resume_trainer(augmenter=augmenter)
    weights = t.model.flat_params.copy()
    opt_state = t.optimizer.state_dict()
    aug_state = json.dumps(augmenter.state())
    with pytest.raises(ValueError):  # CheckpointError is a ValueError
        t.fit(_small_data(), resume=path)
    assert np.array_equal(t.model.flat_params, weights), "the model was changed"
    after = t.optimizer.state_dict()
    assert sorted(after) == sorted(opt_state)
    for key in opt_state:
        assert np.array_equal(after[key], opt_state[key]), f"optimizer {key} was changed"
    assert json.dumps(augmenter.state()) == aug_state, "the augmenter was changed"
    assert t.history == []


def test_the_unforged_checkpoint_resumes(resume_checkpoint):
    """The fixture itself is good: the same trainer resumes from it and finishes."""
    t = _resume_trainer(augmenter=augment.Affine())
    history = t.fit(_small_data(), resume=resume_checkpoint)
    assert [r["epoch"] for r in history] == [1, 2, 3]


# ----------------------------------------------------------------------------- item 12
def test_safety_page_states_the_limits_the_code_enforces():
    page = Path(__file__).resolve().parents[1] / "docs" / "source" / "user-guide" / "safety.md"
    safety = page.read_text()
    assert safety.startswith("# Thread and file safety")
    from lenet_fast import datasets
    for phrase in [f"1 to {ops.MAX_THREADS}", f"at most {checkpoint.MAX_FILE_BYTES // MB} MB",
                   f"at most {checkpoint.MAX_ENTRIES}", f"{checkpoint.MAX_ENTRY_BYTES // MB} MB each",
                   f"{checkpoint.MAX_TOTAL_BYTES // MB} MB together",
                   f"{datasets.MAX_RECORDS:,} records", f"{files.STALE_SECONDS // 60} minutes",
                   "allow_pickle=False", "many Python threads at once"]:
        assert phrase in safety, phrase


def test_the_library_never_unpickles():
    """Every np.load in the package passes allow_pickle=False; nothing imports pickle."""
    src = Path(lenet_fast.__file__).parent
    paths = sorted(src.rglob("*.py"))
    assert len(paths) > 40  # every module, in every layer folder
    for path in paths:
        text = path.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, path.name
        for line in text.splitlines():
            if "np.load(" in line and not line.lstrip().startswith("#") and "``" not in line:
                assert "allow_pickle=False" in line, f"{path.name}: {line.strip()}"
