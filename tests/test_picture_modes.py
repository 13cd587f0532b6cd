"""Pictures in every mode Pillow reads, and pictures that are bombs (issue 26).

Every PNG colour type and bit depth (written here byte by byte, since Pillow writes only
some of them), JPEG in grey, colour and CMYK, and Pillow images in the modes no PNG or
JPEG decodes to: each holds real MNIST test digits and must come back as the same grey
levels (scaled to 8 bits, never clipped) and be read as the same digits. Then pictures
whose cost would not be bounded by what a 28x28 digit needs: refused from their header,
or decoded and normalized in time and memory proportional to their pixels.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL", reason='Pillow is not installed: pip install ".[images]"')
from PIL import Image  # noqa: E402

import lenet_fast  # noqa: E402
from lenet_fast import pictures  # noqa: E402
from lenet_fast._io import pictures as _pictures  # noqa: E402  # its private resampling
from lenet_fast.pictures import PictureError, decode_picture, mnist_digit  # noqa: E402

MB = 2**20


# ----------------------------------------------------------------------------- PNG writer
def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_file(samples, colour_type, bit_depth, palette=None, trns=None):
    """A PNG file holding `samples`: integers (H, W) or (H, W, channels) at `bit_depth`,
    of PNG colour type `colour_type` (0 grey, 2 RGB, 3 palette, 4 grey and alpha, 6
    RGBA), written byte by byte (filter 0 on every row)."""
    samples = np.asarray(samples)
    h, w = samples.shape[:2]
    flat = samples.reshape(h, -1)
    if bit_depth == 16:
        rows = flat.astype(">u2")
    elif bit_depth == 8:
        rows = flat.astype(np.uint8)
    else:                                           # 1, 2 or 4 bits, most significant first
        per = 8 // bit_depth
        padded = np.zeros((h, -(-flat.shape[1] // per) * per), np.uint8)
        padded[:, :flat.shape[1]] = flat
        groups = padded.reshape(h, -1, per).astype(np.uint16)
        shifts = np.arange(per - 1, -1, -1) * bit_depth
        rows = (groups << shifts).sum(axis=2).astype(np.uint8)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth,
                                                             colour_type, 0, 0, 0))
    if palette is not None:
        out += _chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    return out + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _saved(image, fmt="PNG", **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def digits(mnist_test):
    """One test digit of each class (the first the modern model reads right), and the model."""
    images, labels = mnist_test
    model = lenet_fast.pretrained("modern")
    right = model.predict(images[:200]) == labels[:200]
    chosen = [int(np.flatnonzero((labels[:200] == d) & right)[0]) for d in range(10)]
    return images[chosen], labels[chosen], model


def _read(model, greys):
    """What the model reads in pictures of grey levels, normalized as the service does."""
    return model.predict(np.stack([mnist_digit(g) for g in greys])).tolist()


def _files(x):
    """(name, PNG or JPEG bytes, the grey levels it must decode to, exact) for one
    digit `x` (uint8 28x28, light ink on black)."""
    x16 = x.astype(np.uint32) * 257
    ink = np.zeros((28, 28, 4), np.uint8)           # black ink on transparent: the page's kind
    ink[..., 3] = x
    ink16 = np.zeros((28, 28, 4), np.uint32)
    ink16[..., 3] = x16
    two = np.rint(x / 85.0).astype(np.uint8)        # 2-bit grey: 0, 85, 170, 255
    four = np.rint(x / 17.0).astype(np.uint8)
    one = (x >= 128).astype(np.uint8)
    grey_palette = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    rgb = np.repeat(x[..., None], 3, axis=2)
    # dark on light: a picture laid on white where transparent (its opaque pixels are dark)
    on_white = (255 - x).astype(np.uint8)
    files = [
        ("grey 1-bit", png_file(one, 0, 1), one * 255, True),
        ("grey 2-bit", png_file(two, 0, 2), two * 85, True),
        ("grey 4-bit", png_file(four, 0, 4), four * 17, True),
        ("grey 8-bit", png_file(x, 0, 8), x, True),
        ("grey 16-bit (x 257)", png_file(x16, 0, 16), x, True),
        ("grey 16-bit (x 257 + 100)", png_file(np.minimum(x16 + 100, 65535), 0, 16), x, True),
        ("grey 8-bit, tRNS 0", png_file(x, 0, 8, trns=struct.pack(">H", 0)), x, True),
        ("grey 16-bit, tRNS 0", png_file(x16, 0, 16, trns=struct.pack(">H", 0)), x, True),
        ("grey and alpha 8-bit", png_file(np.stack([np.zeros_like(x), x], axis=2), 4, 8),
         on_white, True),
        ("grey and alpha 16-bit", png_file(np.stack([np.zeros_like(x16), x16], axis=2), 4, 16),
         on_white, True),
        ("RGB 8-bit", png_file(rgb, 2, 8), x, True),
        ("RGB 16-bit", png_file(rgb.astype(np.uint32) * 257, 2, 16), x, True),
        ("RGBA 8-bit", png_file(ink, 6, 8), on_white, True),
        ("RGBA 16-bit", png_file(ink16, 6, 16), on_white, True),
        ("palette 8-bit", png_file(x, 3, 8, palette=grey_palette), x, True),
        ("palette, tRNS", png_file(x, 3, 8, palette=grey_palette, trns=b"\0"), x, True),
        ("Pillow 1", _saved(Image.fromarray(one * 255).convert("1")), one * 255, True),
        ("Pillow L", _saved(Image.fromarray(x)), x, True),
        ("Pillow LA", _saved(Image.fromarray(x).convert("LA")), x, True),
        ("Pillow P", _saved(Image.fromarray(x).convert("P")), x, True),
        ("Pillow RGB", _saved(Image.fromarray(rgb)), x, True),
        ("Pillow RGBA", _saved(Image.fromarray(ink)), on_white, True),
        ("Pillow I;16", _saved(Image.fromarray(x16.astype(np.uint16))), x, True),
        ("Pillow I;16B", _saved(Image.frombytes("I;16B", (28, 28), x16.astype(">u2").tobytes())),
         x, True),
        ("JPEG L", _saved(Image.fromarray(x), "JPEG", quality=95), x, False),
        ("JPEG RGB", _saved(Image.fromarray(rgb), "JPEG", quality=95), x, False),
        ("JPEG CMYK", _saved(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95), x, False),
    ]
    return files


def test_every_file_mode_decodes_to_8_bit_grey_by_scaling(digits):
    """Each digit in each file: the grey levels it holds, then the digit the model reads
    (the issue's defect: 16-bit grey was clipped to pure black and white)."""
    images, labels, model = digits
    read = {}
    for i, x in enumerate(images):
        for name, data, expected, exact in _files(x):
            grey = decode_picture(data)
            assert grey.dtype == np.uint8 and grey.shape == (28, 28), name
            if exact:
                assert np.array_equal(grey, expected), (name, labels[i])
            else:                                   # JPEG: lossy, a few grey levels
                assert np.abs(grey.astype(int) - expected).mean() < 3, (name, labels[i])
            read.setdefault(name, []).append(grey)
    assert len(read) == 27
    for name, greys in read.items():
        assert _read(model, greys) == labels.tolist(), name


def test_the_issues_16_bit_digit_18(mnist_test):
    images, labels = mnist_test
    model = lenet_fast.pretrained("modern")
    data = _saved(Image.fromarray(images[18].astype(np.uint16) * 257))
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    grey = decode_picture(data)
    assert np.array_equal(grey, images[18])
    assert model.predict(mnist_digit(grey)).tolist() == [labels[18]] == [3]


def _in_memory(x):
    """(mode, Pillow image, expected grey levels) for the modes no PNG or JPEG decodes to."""
    x16 = x.astype(np.uint16) * 257
    rgb = np.repeat(x[..., None], 3, axis=2)
    ycbcr = Image.fromarray(rgb).convert("YCbCr")         # Pillow's Y may differ by 1 from x
    return [
        ("I", Image.fromarray(x16.astype(np.int32)), x),
        ("I;16", Image.fromarray(x16), x),
        ("I;16L", Image.frombytes("I;16L", (28, 28), x16.astype("<u2").tobytes()), x),
        ("I;16B", Image.frombytes("I;16B", (28, 28), x16.astype(">u2").tobytes()), x),
        ("I;16N", Image.frombytes("I;16N", (28, 28), x16.astype("=u2").tobytes()), x),
        ("F", Image.fromarray(x.astype(np.float32)), x),
        ("1", Image.fromarray(x).convert("1", dither=Image.Dither.NONE), (x >= 128) * 255),
        ("L", Image.fromarray(x), x),
        ("RGBX", Image.fromarray(rgb).convert("RGBX"), x),
        ("YCbCr", ycbcr, np.asarray(ycbcr)[..., 0]),           # its luma: Y
        ("HSV", Image.fromarray(rgb).convert("HSV"), x),
        ("CMYK", Image.fromarray(rgb).convert("CMYK"), x),
        ("RGBa", Image.fromarray(rgb).convert("RGBA").convert("RGBa"), x),
        ("PA", Image.fromarray(x).convert("P").convert("PA"), x),
    ]


def test_every_pillow_mode_is_scaled_to_8_bit_grey(digits):
    """Modes no PNG or JPEG decodes to (Pillow 9 read 16-bit grey PNGs as I): the same
    rule, each mode's range scaled to 0..255."""
    images, _, _ = digits
    for name, image, _ in _in_memory(images[0]):
        assert image.mode == name
    for x in images:
        for name, image, expected in _in_memory(x):
            grey = pictures.grey_levels(image)
            assert grey.dtype == np.uint8 and grey.shape == (28, 28), name
            assert np.array_equal(grey, expected), name
    with pytest.raises(PictureError, match="LAB"):
        pictures.grey_levels(Image.new("LAB", (4, 4)))


# ----------------------------------------------------------------------------- bombs
def _one_bit_png(width, height):
    return _saved(Image.new("1", (width, height)))


@pytest.mark.parametrize("size, words", [
    ((8_388_608, 1), "aspect"),                 # the issue's 1,191-byte picture
    ((1, 8_388_608), "aspect"),
    ((10_000, 1_000), "side"),
    ((5000, 5000), "pixels"),
    ((100_000, 100_000), "pixels"),
])
def test_bombs_are_refused_from_their_header(size, words):
    data = _one_bit_png(*size) if size[0] * size[1] < 2**27 else png_header(*size)
    start = time.perf_counter()
    with pytest.raises(PictureError, match=f"refused before decoding.*{words}|{words}.*refused before decoding"):
        decode_picture(data)
    with pytest.raises(PictureError, match="refused before decoding"):
        pictures.picture_size(data)
    assert time.perf_counter() - start < 0.5


def png_header(width, height):
    """A PNG whose header announces width x height 8-bit grey pixels (with little data)."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _chunk(b"IEND", b""))


def test_the_limits_can_be_set_per_call():
    data = _saved(Image.new("L", (300, 100)))
    assert decode_picture(data).shape == (100, 300)
    assert pictures.picture_size(data) == (300, 100)
    with pytest.raises(PictureError, match="aspect"):
        decode_picture(data, max_aspect=2)
    with pytest.raises(PictureError, match="side"):
        decode_picture(data, max_side=299)
    with pytest.raises(PictureError, match="pixels"):
        decode_picture(data, max_pixels=29_999)


def _dense_resample(n_in, n_out):
    """The (n_out, n_in) weights the normalization used to build: a triangle filter
    widened by the scale when shrinking, rows summing to 1 (the reference)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    w = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / support)
    return w / w.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("shape, out", [((1, 1), (1, 1)), ((3, 5), (12, 20)), ((40, 7), (20, 4)),
                                         ((397, 61), (20, 3)), ((20, 20), (20, 20)),
                                         ((1, 500), (1, 20)), ((1000, 3), (20, 1))])
def test_resampling_is_the_triangle_filter_without_its_matrix(shape, out):
    rng = np.random.default_rng(sum(shape))
    crop = rng.random(shape, dtype=np.float32) * 255
    expected = _dense_resample(shape[0], out[0]) @ crop.astype(np.float64) @ \
        _dense_resample(shape[1], out[1]).T
    np.testing.assert_allclose(_pictures._resample(crop, *out), expected, rtol=1e-9, atol=1e-9)


def test_normalizing_costs_memory_and_time_in_proportion_to_the_pixels():
    """mnist_digit on the largest picture the limits allow (4096 x 4096) and on the
    longest one (8192 x 410): at most 6 bytes of numpy memory per pixel (the picture is
    1), no dense resampling matrix (a 20 x 8192 float64 one alone would be 1.3 MB, the
    old 20 x 8,388,608 one 1.3 GB)."""
    rng = np.random.default_rng(0)
    for h, w in [(4096, 4096), (410, 8192), (8192, 410)]:
        picture = np.full((h, w), 255, np.uint8)
        top, left = h // 4, w // 4
        picture[top:top + h // 2, left:left + w // 2] = rng.integers(0, 120, (h // 2, w // 2),
                                                                    dtype=np.uint8)
        tracemalloc.start()
        start = time.perf_counter()
        digit = mnist_digit(picture)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert digit.shape == (28, 28) and digit.max() == 255
        assert peak < 6 * h * w, f"{h}x{w}: {peak / MB:.0f} MB"
        assert seconds < 5.0, f"{h}x{w}: {seconds:.1f} s"     # about 0.2 s alone on 2 cores


def test_decoding_the_worst_allowed_picture_stays_under_200_mb():
    """A 4096 x 4096 RGBA PNG (16-bit: the most bytes to inflate per pixel; Paeth filter:
    the costliest to undo), decoded and normalized in a fresh interpreter: its peak
    memory beyond the interpreter's. The decoder used to hold float64 copies of the
    picture (450-670 MB)."""
    code = textwrap.dedent(f"""
        import io, sys
        import numpy as np
        from PIL import Image
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from serve_helpers import worst_png
        from lenet_fast.pictures import decode_picture, mnist_digit
        def peak():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        data = worst_png()
        Image.new("L", (64, 64)).save(io.BytesIO(), "PNG")
        mnist_digit(np.zeros((64, 64), np.uint8) + 7)
        before = peak()
        grey = decode_picture(data)
        digit = mnist_digit(grey)
        print(before, peak(), grey.shape)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = (int(v) for v in out.stdout.split()[:2])
    assert after - before < 200 * MB, f"{(after - before) / MB:.0f} MB"
