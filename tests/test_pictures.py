"""lenet_fast.pictures (decoding pictures, MNIST-style normalization), the pretrained
models of lenet_fast.zoo, and ``lenet-fast predict --pretrained`` on pictures."""

import io
import shutil
import struct
import sys
import zlib

import numpy as np
import pytest

import lenet_fast
from lenet_fast import cli, zoo
from lenet_fast import CheckpointError
from lenet_fast.metrics import evaluate
from lenet_fast.pictures import PictureError, decode_picture, mnist_digit
from lenet_fast._model import pretrained as _pretrained  # patched where the code reads it


def _centre_and_box(digit):
    mass = digit.astype(float)
    rows, cols = np.indices(digit.shape)
    cy, cx = (mass * rows).sum() / mass.sum(), (mass * cols).sum() / mass.sum()
    r, c = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return (cy, cx), (r[-1] - r[0] + 1, c[-1] - c[0] + 1)


def _place(digit, scale, top, left, size=280):
    picture = np.zeros((size, size), np.uint8)
    big = np.kron(digit, np.ones((scale, scale), np.uint8))
    picture[top:top + big.shape[0], left:left + big.shape[1]] = big
    return picture


def test_normalized_digits_are_shaped_as_mnist(mnist_test):
    images, _ = mnist_test
    for digit in images[:50]:
        out = mnist_digit(_place(digit, 3, 150, 10))
        assert out.dtype == np.uint8 and out.shape == (28, 28) and out.max() == 255
        (cy, cx), (h, w) = _centre_and_box(out)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
        assert max(h, w) in (20, 21) and min(h, w) >= 1   # 20, plus the filter's fringe


def test_aspect_ratio_is_kept():
    bar = np.zeros((300, 300), np.uint8)
    bar[40:240, 100:120] = 255                 # 200 x 20: a stroke of a 1
    out = mnist_digit(bar)
    _, (h, w) = _centre_and_box(out >= 128)
    assert h == 20 and w == 2


def test_placement_and_scale_do_not_change_what_the_model_reads(mnist_test):
    images, labels = mnist_test
    model = lenet_fast.pretrained("modern")
    rng = np.random.default_rng(0)
    digits, truth = images[:300], labels[:300]
    pictures = []
    for d in digits:
        scale = int(rng.integers(1, 8))
        top, left = rng.integers(0, 280 - 28 * scale + 1, size=2)
        pictures.append(mnist_digit(_place(d, scale, top, left)))
    accuracy = (model.predict(np.stack(pictures)) == truth).mean()
    assert accuracy >= 0.97, accuracy


def test_dark_ink_on_light_is_inverted(mnist_test):
    images, _ = mnist_test
    picture = _place(images[0], 4, 20, 60)
    assert np.array_equal(mnist_digit(255 - picture), mnist_digit(picture))
    assert np.array_equal(mnist_digit(255 - images[0]), images[0])      # 28x28: only inverted
    assert np.array_equal(mnist_digit(images[0]), images[0])


def test_no_ink_gives_an_empty_field():
    assert not mnist_digit(np.full((100, 80), 200, np.uint8)).any()
    faint = np.zeros((100, 100))
    faint[40:60, 40:60] = 20                   # below MIN_CONTRAST
    assert not mnist_digit(faint).any()


@pytest.mark.parametrize("grey, words", [
    (np.zeros((30, 30, 3)), "2-D"),
    (np.zeros((0, 5)), "2-D"),
    (np.full((30, 30), np.nan), "finite"),
    (np.full((30, 30), 256.0), "0..255"),
    (np.full((30, 30), -1), "0..255"),
    (np.array([["a"] * 30] * 30), "numbers"),
])
def test_bad_pictures_are_refused(grey, words):
    with pytest.raises(ValueError, match=words):
        mnist_digit(grey)
    with pytest.raises(ValueError, match="must be 28x28"):
        mnist_digit(np.zeros((30, 30)), normalize=False)


def _png(array, mode=None):
    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, "PNG")
    return out.getvalue()


def test_decode_picture():
    pytest.importorskip("PIL")
    grey = np.zeros((40, 30), np.uint8)
    grey[10:30, 12:18] = 255
    assert np.array_equal(decode_picture(_png(grey)), grey)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert np.array_equal(decode_picture(_png(rgb)), grey)
    # black ink on a transparent canvas: laid on white; white ink on transparent: on black
    rgba = np.zeros((40, 30, 4), np.uint8)
    rgba[10:30, 12:18, 3] = 255
    assert np.array_equal(decode_picture(_png(rgba)), 255 - grey)
    rgba[10:30, 12:18, :3] = 255
    assert np.array_equal(decode_picture(_png(rgba)), grey)


def _png_header(width, height):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def test_decode_picture_refuses_bad_files():
    pytest.importorskip("PIL")
    from PIL import Image
    with pytest.raises(PictureError, match="refused before decoding"):
        decode_picture(_png_header(5000, 5000))
    with pytest.raises(PictureError, match="refused before decoding"):
        decode_picture(_png_header(100_000, 100_000))
    with pytest.raises(PictureError, match="truncated"):
        decode_picture(_png(np.full((50, 50), 7, np.uint8))[:60])
    with pytest.raises(PictureError, match="not a PNG or JPEG"):
        decode_picture(b"GIF89a" + b"\0" * 50)
    gif = io.BytesIO()
    Image.new("L", (10, 10)).save(gif, "GIF")
    with pytest.raises(PictureError, match="not a PNG or JPEG"):
        decode_picture(gif.getvalue())


# ----------------------------------------------------------------------------- zoo
@pytest.mark.parametrize("name", zoo.NAMES)
def test_pretrained_models_record_how_they_were_made(name, mnist_test):
    model = lenet_fast.pretrained(name)
    assert model.variant == name
    info = zoo.info(name)
    assert info["command"] == "lenet-fast " + " ".join(zoo.COMMANDS[name])
    assert {"openmp", "compile_flags", "isa", "isa_built"} <= set(info["build"])
    measured = evaluate(model, *mnist_test)["accuracy"]
    assert abs(info["test_accuracy"] - measured) <= 0.002     # this build against the one that made it
    assert measured >= 0.985


def test_a_modified_pretrained_file_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "zoo"
    shutil.copytree(_pretrained.FOLDER, folder)
    monkeypatch.setattr(_pretrained, "FOLDER", folder)
    assert lenet_fast.pretrained("modern").variant == "modern"
    data = bytearray((folder / "modern.npz").read_bytes())
    data[len(data) // 2] ^= 1
    (folder / "modern.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 .* damaged or was modified"):
        lenet_fast.pretrained("modern")
    (folder / _pretrained.SUMS).write_text("")
    with pytest.raises(CheckpointError, match="no SHA-256 recorded"):
        lenet_fast.pretrained("lecun98")
    with pytest.raises(ValueError, match="no pretrained model 'lenet1'"):
        lenet_fast.pretrained("lenet1")


# ----------------------------------------------------------------------------- predict
def test_predict_pretrained_reads_a_small_digit_in_a_corner(mnist_test, tmp_path, capsys):
    """The issue's case: a 0 drawn small in a corner of a 280x280 picture, dark on white."""
    pytest.importorskip("PIL")
    images, labels = mnist_test
    zero = images[np.flatnonzero(labels == 0)[0]]
    path = tmp_path / "corner.png"
    path.write_bytes(_png(255 - _place(zero, 2, 5, 5)))
    assert cli.main(["predict", "--pretrained", "modern", str(path)]) == 0
    assert capsys.readouterr().out.split() == [f"{path}[0]", "0"]
    # 28x28: as it is unless --normalize
    small = np.zeros((28, 28), np.uint8)
    small[:14, :14] = zero[::2, ::2]
    path28 = tmp_path / "small.png"
    path28.write_bytes(_png(small))
    assert cli.main(["predict", "--pretrained", "lecun98", "--normalize", "--proba", str(path28)]) == 0
    line = capsys.readouterr().out.split("\t")
    model = lenet_fast.pretrained("lecun98")
    assert int(line[1]) == model.predict(mnist_digit(small, True)).item()


def test_predict_needs_a_model_or_pretrained(tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path / "x.png")]) == 2
    assert "--pretrained" in capsys.readouterr().err


def test_serve_without_its_extra_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert cli.main(["serve"]) == 1
    assert 'pip install "lenet-fast[serve]"' in capsys.readouterr().err


def test_make_pretrained_writes_where_the_package_reads(monkeypatch):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_pretrained.py"
    if not script.is_file():
        pytest.skip("the scripts are not in this checkout")
    spec = importlib.util.spec_from_file_location("make_pretrained", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = script.parents[1] / "src"
    package = Path(lenet_fast.__file__).resolve().parent
    # the folder the script writes, read as a place inside the package, is the one
    # lenet_fast.pretrained reads (an editable install: the very same folder)
    assert (module.FOLDER.relative_to(src / "lenet_fast")
            == Path(_pretrained.FOLDER).resolve().relative_to(package))
    assert (module.FOLDER / "modern.npz").is_file() or package != src / "lenet_fast"
    assert module.zoo.NAMES == zoo.NAMES
