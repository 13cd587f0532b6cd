"""safetensors model files: LeNet5.save by extension or format=, lenet_fast.load, reading
without lenet_fast, and refusal of damaged or hostile files."""

import json
import struct

import numpy as np
import pytest

st = pytest.importorskip("safetensors.numpy", reason='safetensors not installed '
                         '(pip install "lenet-fast[safetensors]")')

import lenet_fast  # noqa: E402
from lenet_fast import CheckpointError, LeNet5, cli  # noqa: E402
from lenet_fast.safetensors_io import MAX_HEADER_BYTES, read_safetensors  # noqa: E402


@pytest.mark.parametrize("variant,c3", [("modern", "lecun"), ("modern", "full"), ("lecun98", "lecun")])
def test_round_trip(variant, c3, tmp_path):
    model = LeNet5(variant, c3=c3, seed=4)
    path = tmp_path / "m.safetensors"
    model.save(path)
    assert path.read_bytes()[8:9] == b"{"                       # safetensors, not a zip
    back = lenet_fast.load(path)
    np.testing.assert_array_equal(back.flat_params, model.flat_params)
    assert back.config() == model.config()
    # any safetensors reader, without lenet_fast
    tensors = st.load_file(str(path))
    assert set(tensors) == set(model.params)
    for name, value in tensors.items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, model.params[name])
    from safetensors import safe_open
    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
    assert meta["format"] == "lenet_fast" and json.loads(meta["config"]) == model.config()


def test_format_argument_and_default(tmp_path):
    model = LeNet5("lecun98", seed=1)
    model.save(tmp_path / "weights.bin", format="safetensors")
    assert (tmp_path / "weights.bin").read_bytes()[8:9] == b"{"
    model.save(tmp_path / "m.npz")                              # npz stays the default
    assert (tmp_path / "m.npz").read_bytes()[:2] == b"PK"
    model.save(tmp_path / "other.safetensors", format="npz")     # format= wins over the name
    assert (tmp_path / "other.safetensors").read_bytes()[:2] == b"PK"
    for name in ("weights.bin", "m.npz", "other.safetensors"):
        np.testing.assert_array_equal(lenet_fast.load(tmp_path / name).flat_params,
                                      model.flat_params)
    with pytest.raises(ValueError, match="format"):
        model.save(tmp_path / "x", format="onnx")


def test_edited_by_another_tool_still_loads(tmp_path):
    """No checksum: weights changed elsewhere (same names, dtypes, shapes, metadata) load."""
    model = LeNet5("modern", seed=0)
    path = tmp_path / "m.safetensors"
    model.save(path)
    from safetensors import safe_open
    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
    tensors = st.load_file(str(path))
    tensors["f6.bias"] = tensors["f6.bias"] + 1
    st.save_file(tensors, str(path), metadata=meta)
    np.testing.assert_array_equal(lenet_fast.load(path).params["f6.bias"],
                                  model.params["f6.bias"] + 1)


def _file(header, data=b"", n=None):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if n is None else n) + raw + data


def _valid(tmp_path):
    model = LeNet5("lecun98", seed=0)
    path = tmp_path / "good.safetensors"
    model.save(path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _hostile_cases(tmp_path):
    header, data = _valid(tmp_path)
    meta = header["__metadata__"]

    def edit(name, **changes):
        h = json.loads(json.dumps(header))
        h[name].update(changes)
        return _file(h, data)

    def with_meta(**changes):
        h = json.loads(json.dumps(header))
        h["__metadata__"] = {**meta, **changes}
        return _file(h, data)

    extra = json.loads(json.dumps(header))
    extra["extra"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
    return {
        "huge header size": (_file(header, data, n=2**62), "header of"),
        "header past the end": (_file(header, b"", n=len(json.dumps(header)) + 100), "header of"),
        "not JSON": (struct.pack("<Q", 5) + b"{abc}" + data, "unreadable safetensors header"),
        "JSON list": (_file([1, 2]), "not a JSON object"),
        "deep nesting": (struct.pack("<Q", 40000) + b"{" + b"[" * 39999, "unreadable"),
        "no metadata": (_file({k: v for k, v in header.items() if k != "__metadata__"}, data),
                        "not a lenet_fast model file"),
        "foreign": (with_meta(format="other"), "not a lenet_fast model file"),
        "newer version": (with_meta(format_version="99"), "newer"),
        "bad config": (with_meta(config='{"variant": "resnet", "c3": "lecun"}'), "configuration"),
        "F64 tensor": (edit("c1.weight", dtype="F64"), "expected F32"),
        "huge shape": (edit("f6.weight", shape=[10**9, 10**9]), "has shape"),
        "offsets out of range": (edit("c1.bias", data_offsets=[0, 2**40]), "bad data offsets"),
        "overlap": (edit("c3.bias", data_offsets=[0, 64]), "overlaps or leaves gaps"),
        "extra tensor": (_file(extra, data + b"\0" * 4), "do not match"),
        "truncated data": (_file(header, data[:-100]), "bad data offsets"),
        "trailing bytes": (_file(header, data + b"\0" * 8), "bytes after the tensor data"),
        "too large": (_file(header, data + b"\0" * (MAX_HEADER_BYTES + 300_000)), "larger than"),
        "tiny": (b"\x01\x00", "truncated"),
        "nan": (None, "non-finite"),
    }


def test_hostile_files_are_refused(tmp_path):
    header, data = _valid(tmp_path)
    nan = bytearray(data)
    begin = header["c1.bias"]["data_offsets"][0]
    nan[begin:begin + 4] = np.array([np.nan], np.float32).tobytes()
    for name, (raw, match) in _hostile_cases(tmp_path).items():
        raw = _file(header, bytes(nan)) if raw is None else raw
        path = tmp_path / "bad.safetensors"
        path.write_bytes(raw)
        with pytest.raises(CheckpointError, match=match):
            read_safetensors(path)
            pytest.fail(f"{name}: not refused")
        if raw[8:9] == b"{":                                    # recognised by lenet_fast.load too
            with pytest.raises(CheckpointError):
                lenet_fast.load(path)
    with pytest.raises(FileNotFoundError):
        lenet_fast.load(tmp_path / "missing.safetensors")


def test_cli_export_and_evaluate_read_safetensors(tmp_path, capsys):
    model = LeNet5("modern", seed=3)
    model.save(tmp_path / "m.npz")
    assert cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.safetensors")]) == 0
    np.testing.assert_array_equal(st.load_file(str(tmp_path / "m.safetensors"))["c1.weight"],
                                  model.params["c1.weight"])
    assert cli.main(["export", str(tmp_path / "m.safetensors"), str(tmp_path / "back.npz")]) == 0
    np.testing.assert_array_equal(lenet_fast.load(tmp_path / "back.npz").flat_params,
                                  model.flat_params)
    assert cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "x.safetensors"),
                     "--no-preprocess"]) == 2


def test_fifo_and_folder_are_refused_without_hanging(tmp_path):
    import os
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="FIFO"):
        read_safetensors(fifo)
    with pytest.raises(CheckpointError, match="FIFO"):
        lenet_fast.load(fifo)                      # not taken for safetensors; refused by the npz path
    with pytest.raises(CheckpointError, match="folder"):
        read_safetensors(tmp_path)
