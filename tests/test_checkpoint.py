"""Tests for lenet_fast.checkpoint: model files and training checkpoints (.npz, no pickle)."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import lenet_fast
from lenet_fast import __version__, checkpoint
from lenet_fast import CheckpointError
from lenet_fast.checkpoint import FORMAT_VERSION
from lenet_fast import LeNet5
from lenet_fast.optim import Adam
from lenet_fast.schedules import ConstantLR
from lenet_fast._io import checkpoint as _checkpoint  # its private helpers

CONFIGS = [("modern", "lecun"), ("modern", "full"), ("lecun98", "lecun")]
CONFIG_IDS = ["modern-c3lecun", "modern-c3full", "lecun98"]


@pytest.fixture(scope="module")
def images():
    """Deterministic uint8 digits-like images (the checkpoint tests need no real data)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    img[:, :4] = 0
    return img


def _trained(variant, c3="lecun", seed=3):
    """A model whose weights differ from any fresh initialisation."""
    model = LeNet5(variant, c3=c3, seed=seed)
    rng = np.random.default_rng(seed)
    model.flat_params += rng.normal(0, 1e-2, model.flat_params.shape).astype(np.float32)
    model.params["c3.weight"][...] *= model.table.T[:, :, None, None]
    return model


def _raw(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _reseal(arrays):
    """Recompute the digest after forging `arrays` (what a consistent forger would do)."""
    arrays = {k: v for k, v in arrays.items() if k != "meta/sha256"}
    arrays["meta/sha256"] = np.array(_checkpoint._digest(arrays))
    return arrays


# ----------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("variant, c3", CONFIGS, ids=CONFIG_IDS)
def test_save_load_round_trip(variant, c3, tmp_path, images):
    model = _trained(variant, c3, seed=11)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = lenet_fast.load(path)

    assert isinstance(loaded, LeNet5)
    assert loaded.config() == model.config() == {
        "variant": variant, "c3": c3, "seed": 11, "init": "he" if variant == "modern" else "fanin"}
    assert list(loaded.params) == list(model.params)
    assert np.array_equal(loaded.flat_params, model.flat_params)
    for name in model.params:
        assert np.array_equal(loaded.params[name], model.params[name]), name
        assert np.shares_memory(loaded.params[name], loaded.flat_params), name
    assert np.array_equal(loaded.predict(images), model.predict(images))
    assert np.array_equal(loaded.predict_proba(images), model.predict_proba(images))
    if variant == "lecun98":
        assert np.array_equal(loaded.rbf_centers, model.rbf_centers)
    # str paths work too, and saving again overwrites.
    model.params["c1.bias"][0] += 1.0
    model.save(str(path))
    assert lenet_fast.load(str(path)).params["c1.bias"][0] == model.params["c1.bias"][0]


def test_file_has_no_object_arrays_and_loads_without_pickle(tmp_path):
    path = tmp_path / "m.npz"
    _trained("lecun98").save(path)
    with np.load(path, allow_pickle=False) as z:  # would raise on object arrays
        for key in z.files:
            assert z[key].dtype != object, key
            assert z[key].dtype.kind in "fiuU", (key, z[key].dtype)
        assert str(z["meta/format"]) == checkpoint.FORMAT
        assert int(z["meta/format_version"]) == FORMAT_VERSION
        assert str(z["meta/library_version"]) == __version__
        assert json.loads(str(z["meta/config"])) == {"variant": "lecun98", "c3": "lecun",
                                                     "seed": 3, "init": "fanin"}
        assert {k for k in z.files if k.startswith("param/")} == {
            f"param/{n}" for n in LeNet5("lecun98").params}


# ----------------------------------------------------------------------------- atomic writes
def test_save_leaves_no_temporary_files(tmp_path):
    model = _trained("modern")
    for i in range(3):
        model.save(tmp_path / "model.npz")
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_save_creates_missing_folders(tmp_path):
    path = tmp_path / "a" / "b" / "model.npz"
    _trained("modern").save(path)
    assert lenet_fast.load(path).config()["variant"] == "modern"


def test_failing_save_keeps_the_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    original = _trained("modern", seed=1)
    original.save(path)
    before = path.read_bytes()

    real_savez = np.savez

    def savez_then_fail(file, **arrays):
        real_savez(file, **arrays)  # writes (part of) the temporary file ...
        file.write(b"garbage")
        raise OSError("disk full")  # ... and fails before the rename

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _trained("modern", seed=2).save(path)
    monkeypatch.undo()

    assert path.read_bytes() == before, "a failed save modified the existing file"
    assert sorted(os.listdir(tmp_path)) == ["model.npz"], "temporary file left behind"
    assert np.array_equal(lenet_fast.load(path).flat_params, original.flat_params)


def test_interrupted_save_keeps_the_existing_file(tmp_path, monkeypatch):
    """Also for KeyboardInterrupt (Ctrl-C while saving)."""
    path = tmp_path / "model.npz"
    _trained("lecun98").save(path)
    before = path.read_bytes()

    def interrupted(file, **arrays):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _trained("lecun98", seed=9).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


# ----------------------------------------------------------------------------- damaged files
def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such.npz"):
        lenet_fast.load(tmp_path / "no-such.npz")
    with pytest.raises(FileNotFoundError):
        checkpoint.read_training(tmp_path / "no-such.npz")


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_raises_checkpoint_error(tmp_path, keep):
    path = tmp_path / "model.npz"
    _trained("modern").save(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError):
        lenet_fast.load(path)


def test_not_an_npz_raises_checkpoint_error(tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("this is not a model\n")
    with pytest.raises(CheckpointError, match="not a readable lenet_fast model file"):
        lenet_fast.load(path)


def test_modified_parameter_value_fails_the_checksum(tmp_path):
    path = tmp_path / "model.npz"
    model = _trained("modern")
    model.save(path)
    arrays = _raw(path)
    arrays["param/f6.weight"] = arrays["param/f6.weight"].copy()
    arrays["param/f6.weight"][3, 7] += 0.5  # one value changed, the old digest kept
    _write(path, arrays)
    with pytest.raises(CheckpointError, match="checksum"):
        lenet_fast.load(path)


def test_flipped_byte_in_the_archive_is_refused(tmp_path):
    """A damaged byte inside a stored (uncompressed) parameter array."""
    path = tmp_path / "model.npz"
    _trained("modern").save(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("param/c5.weight.npy")
    # Local header: 30 bytes + name + extra; then the .npy payload. Flip a byte well
    # inside the array data.
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 5000
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):  # zip CRC or our checksum, either is fine
        lenet_fast.load(path)


def test_foreign_npz_raises_checkpoint_error(tmp_path):
    path = tmp_path / "foreign.npz"
    rng = np.random.default_rng(0)
    np.savez(path, a=rng.normal(size=(3, 4)), b=rng.integers(0, 9, 10))
    with pytest.raises(CheckpointError, match="not a lenet_fast model file"):
        lenet_fast.load(path)
    # Even with parameter-like names but no metadata.
    np.savez(path, **{f"param/{k}": v for k, v in LeNet5().params.items()})
    with pytest.raises(CheckpointError, match="not a lenet_fast model file"):
        lenet_fast.load(path)


def test_object_array_file_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "pickle.npz"
    np.savez(path, **{"meta/format": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(CheckpointError):
        lenet_fast.load(path)


def test_newer_format_version_asks_to_upgrade(tmp_path):
    path = tmp_path / "model.npz"
    _trained("modern").save(path)
    arrays = _raw(path)
    arrays["meta/format_version"] = np.array(FORMAT_VERSION + 1, dtype=np.int64)
    _write(path, _reseal(arrays))
    with pytest.raises(CheckpointError, match="upgrade") as info:
        lenet_fast.load(path)
    assert f"version {FORMAT_VERSION + 1}" in str(info.value)


def test_wrong_parameter_shape_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    _trained("modern").save(path)
    arrays = _raw(path)
    arrays["param/f6.weight"] = np.zeros((84, 121), np.float32)
    _write(path, _reseal(arrays))  # a consistent digest: only the shape check can catch it
    with pytest.raises(CheckpointError, match=r"f6\.weight has shape \(84, 121\)"):
        lenet_fast.load(path)


def test_forged_files_with_consistent_digest_are_refused(tmp_path):
    path = tmp_path / "model.npz"
    model = _trained("lecun98")
    packed = _checkpoint._pack(model)

    def forged(**changes):
        arrays = {k: v for k, v in packed.items()}
        for key, value in changes.items():
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value
        _write(path, _reseal(arrays))

    forged(**{"param/c1.weight": np.zeros((6, 1, 5, 5), np.float64)})  # wrong dtype
    with pytest.raises(CheckpointError, match="c1.weight"):
        lenet_fast.load(path)
    forged(**{"param/s2.coef": None})  # a missing parameter
    with pytest.raises(CheckpointError, match="s2.coef"):
        lenet_fast.load(path)
    forged(**{"param/out.weight": np.zeros((10, 84), np.float32)})  # a foreign parameter
    with pytest.raises(CheckpointError, match="out.weight"):
        lenet_fast.load(path)
    nan = packed["param/f6.bias"].copy()
    nan[0] = np.nan
    forged(**{"param/f6.bias": nan})
    with pytest.raises(CheckpointError, match="non-finite"):
        lenet_fast.load(path)
    forged(**{"meta/config": np.array('{"variant": "lenet1", "c3": "lecun"}')})
    with pytest.raises(CheckpointError, match="configuration"):
        lenet_fast.load(path)
    forged(**{"meta/format_version": np.array(0, dtype=np.int64)})
    with pytest.raises(CheckpointError, match="version"):
        lenet_fast.load(path)
    forged()  # and the untouched packing loads
    assert np.array_equal(lenet_fast.load(path).flat_params, model.flat_params)


def test_digest_covers_every_entry(tmp_path):
    """Renaming or retyping an entry (same bytes) also breaks the checksum."""
    path = tmp_path / "model.npz"
    model = _trained("modern")
    model.save(path)
    arrays = _raw(path)
    arrays["meta/config"] = np.array(json.dumps({"c3": "lecun", "seed": 4, "variant": "modern"}))
    _write(path, arrays)
    with pytest.raises(CheckpointError, match="checksum"):
        lenet_fast.load(path)


# ----------------------------------------------------------------------------- training checkpoints
def test_training_checkpoint_round_trip_and_model_load(tmp_path):
    model = _trained("modern", seed=5)
    opt = Adam(lr=2e-3)
    grads = np.random.default_rng(0).normal(size=model.flat_params.shape).astype(np.float32)
    params = model.flat_params.copy()
    opt.step(params, grads)  # give the optimizer some state
    schedule = ConstantLR(2e-3)
    state = {"epoch": 1, "batch": 0, "rng_state": {"x": 1}, "history": [{"epoch": 1}],
             "settings": {"batch_size": 64, "epochs": 2, "seed": 0}}
    path = tmp_path / "ckpt.npz"
    checkpoint.save_training(path, model, opt, schedule, state)

    stored, optim_state, schedule_cfg, loaded_state = checkpoint.read_training(path)
    assert stored.config == model.config()
    for name, value in model.params.items():
        assert np.array_equal(stored.params[name], value), name
    assert schedule_cfg == schedule.to_config()
    assert loaded_state == state
    restored = Adam(lr=1.0)
    restored.load_state_dict(optim_state)
    for key, value in opt.state_dict().items():
        assert np.array_equal(restored.state_dict()[key], value), key

    # lenet_fast.load of a training checkpoint gives its model.
    plain = lenet_fast.load(path)
    assert isinstance(plain, LeNet5)
    assert plain.config() == model.config()
    assert np.array_equal(plain.flat_params, model.flat_params)
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)

    # A plain model file is not a training checkpoint.
    model.save(tmp_path / "model.npz")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        checkpoint.read_training(tmp_path / "model.npz")
