"""Pictures of digits: decoding PNG/JPEG (with Pillow) and making them look like MNIST.

MNIST's digits were made from scanned binary digits: each was scaled, keeping its
aspect ratio, to fit a 20x20 box (anti-aliased, hence the grey levels), then placed in
a 28x28 field so that its centre of mass is at the field's centre (LeCun et al. 1998,
section III-A; over the 10,000 test digits the mean centre of mass, in row/column
indices, is (14.0, 14.0), with a spread of 0.29: a whole-pixel shift). Light ink on a
dark background. A digit photographed, scanned or drawn on a canvas is none of this,
and a network trained on MNIST reads it badly until it is: `mnist_digit` does it. It
is the one home of this normalization, used by ``lenet-fast serve`` (the service and
its page) and ``lenet-fast predict``.

`decode_picture` turns PNG or JPEG bytes into grey levels (`grey_levels`: any picture
mode scaled to 0..255), refusing from its header, before it is decoded, a picture of
more than `MAX_PIXELS` pixels, with a side longer than `MAX_SIDE` or an aspect beyond
`MAX_ASPECT` (`picture_size`). Decoding and normalizing cost time and memory in
proportion to the pixels: the picture is converted in strips of rows, the digit is
resampled by a filter that reads each pixel a few times (no dense matrices), and the
largest allowed picture (16 Mpixel) peaks under 200 MB.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from .datasets import IMAGE_SIZE

#: Side of the box a normalized digit is scaled to fit (MNIST's).
BOX = 20
#: Where the centre of mass goes, in row/column indices of the 28x28 field (MNIST's mean).
CENTRE = 14.0
#: A picture more than half of whose border pixels are lighter than this is dark ink on a
#: light background, and is inverted.
LIGHT_BACKGROUND = 127
#: Ink that stands less than this many grey levels above the background is no digit: the
#: picture normalizes to an empty field.
MIN_CONTRAST = 32
#: Pixels at least this fraction of the strongest ink bound the digit's box (leaves out
#: faint noise; the anti-aliased edge of real strokes is above it).
INK_FRACTION = 0.1
#: Largest picture decoded (width x height): 16 Mpixel, e.g. 4096x4096. Larger ones are
#: refused from their header.
MAX_PIXELS = 1 << 24
#: Longest side of a picture decoded, in pixels.
MAX_SIDE = 8192
#: Largest ratio of a picture's longer side to its shorter one (a digit needs neither a
#: strip of 8,388,608 x 1 pixels nor anything near it).
MAX_ASPECT = 20
#: Most scans a JPEG may hold: each scan of a progressive JPEG is a pass over the picture.
MAX_JPEG_SCANS = 100
#: Most segments a JPEG may hold before its first scan, and chunks a PNG may hold: Pillow
#: reads each in Python (a 16 MB file of 1.1 million empty chunks took 9 s).
MAX_JPEG_SEGMENTS = 1024
MAX_PNG_CHUNKS = 16384
#: Pixels converted at a time (a strip of rows) when a picture is made grey.
_STRIP_PIXELS = 1 << 20
#: Values resampled at a time (the float64 copy of a block of the picture).
_BLOCK = 1 << 18
#: Pillow modes of more than 8 bits a sample: 16-bit grey (Pillow 9 reads 16-bit PNGs as
#: I), scaled from 0..65535.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
#: Formats `decode_picture` reads.
FORMATS = ("PNG", "JPEG")


class PictureError(ValueError):
    """Bytes that are not a PNG or JPEG picture this module decodes (the message says why)."""


def _resample_axis(a, n_out, axis):
    """2-D `a` resampled to `n_out` samples along `axis` (float64): a triangle (linear)
    filter widened by the scale when shrinking, so that every input sample counts
    (anti-aliasing); each output's weights sum to 1. Only the samples under each output's
    filter are read (about two reads per input sample, no matrix), a block of at most
    `_BLOCK` values at a time."""
    if axis == 1:
        return _resample_axis(a.T, n_out, 0).T
    n_in, across = a.shape
    scale = n_in / n_out
    support = max(scale, 1.0)
    step = max(1, _BLOCK // max(across, 1))
    out = np.zeros((n_out, across))
    for j in range(n_out):
        centre = (j + 0.5) * scale
        lo = max(0, int(np.floor(centre - support - 0.5)))
        hi = min(n_in, int(np.ceil(centre + support - 0.5)) + 1)
        w = np.maximum(0.0, 1.0 - np.abs(np.arange(lo, hi) + 0.5 - centre) / support)
        w /= w.sum()
        for k in range(0, hi - lo, step):
            out[j] += w[k:k + step] @ a[lo + k:min(hi, lo + k + step)]
    return out


def _resample(crop, h2, w2):
    """`crop` (2-D) resampled to (h2, w2), float64: `_resample_axis` along each axis, the
    one that shrinks the most first (the smaller intermediate)."""
    h, w = crop.shape
    if h2 * w <= h * w2:
        return _resample_axis(_resample_axis(crop, h2, 0), w2, 1)
    return _resample_axis(_resample_axis(crop, w2, 1), h2, 0)


def _border(g):
    return np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])


def dark_on_light(grey):
    """Whether the 2-D picture `grey` is dark ink on a light background: more than half
    of its border pixels are lighter than `LIGHT_BACKGROUND`.

    Parameters
    ----------
    grey : numpy.ndarray, shape (H, W)
        Grey levels 0..255 (any real dtype); its border is its first and last rows and
        columns.

    Returns
    -------
    bool
        True if more than half of the border pixels are above `LIGHT_BACKGROUND` (127).
    """
    border = _border(grey)
    return 2 * np.count_nonzero(border > LIGHT_BACKGROUND) > border.size


def ink_on_black(grey):
    """`grey` (2-D, grey levels 0-255) as light ink on a dark background, float64: the
    picture inverted if `dark_on_light`, else as it is.

    Parameters
    ----------
    grey : array_like, shape (H, W)
        Grey levels 0..255 (any real dtype).

    Returns
    -------
    numpy.ndarray of float64, shape (H, W)
        ``255 - grey`` if `dark_on_light`, else `grey` converted (a new array unless it
        already was float64).

    Raises
    ------
    ValueError
        If `grey` is not a non-empty 2-D array.
    """
    g = np.asarray(grey, dtype=np.float64)
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"a picture must be a non-empty 2-D array of grey levels, got shape {g.shape}")
    return 255.0 - g if dark_on_light(g) else g


def mnist_digit(grey, normalize=None):
    """One picture of a digit as an MNIST digit: uint8 (28, 28), light ink on black.

    Parameters
    ----------
    grey : array (H, W) of grey levels 0..255 (any real dtype)
        The picture; dark ink on a light background is recognized (`dark_on_light`: by
        its border) and inverted.
    normalize : bool or None
        True: normalize as MNIST's digits were made: the background level is subtracted,
        the ink cropped, scaled (anti-aliased, keeping its aspect ratio) to fit 20x20 with
        its strongest ink at 255, and placed in 28x28 with its centre of mass at the
        centre (whole pixels, inside the field). A picture with no ink (less than
        `MIN_CONTRAST` grey levels above the background) gives an empty field. False:
        only inverted if needed; the picture must be 28x28. None (default): True unless
        the picture is already 28x28.

    Returns
    -------
    numpy.ndarray of uint8, shape (28, 28)

    Raises
    ------
    ValueError
        If `grey` is not a non-empty 2-D array, holds values that are not finite or
        outside 0..255, or is not 28x28 with ``normalize=False``.
    """
    g = np.asarray(grey)
    if g.dtype == np.uint8 and g.shape == (IMAGE_SIZE, IMAGE_SIZE) and not normalize:
        # the common case (an MNIST-sized picture, as it is), without float copies
        return 255 - g if dark_on_light(g) else np.array(g)
    if not (np.issubdtype(g.dtype, np.integer) or np.issubdtype(g.dtype, np.floating)) \
            or g.dtype == np.bool_:
        raise ValueError(f"grey levels must be numbers, got {g.dtype}")
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"a picture must be a non-empty 2-D array of grey levels, got shape {g.shape}")
    if g.dtype.kind == "f" and not np.isfinite(g).all():
        raise ValueError("grey levels must be finite (got NaN or infinity)")
    if g.min() < 0 or g.max() > 255:
        raise ValueError(f"grey levels must be in 0..255, got {g.min()}..{g.max()}")
    if normalize is None:
        normalize = g.shape != (IMAGE_SIZE, IMAGE_SIZE)
    if not normalize:
        if g.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"a digit that is not normalized must be {IMAGE_SIZE}x{IMAGE_SIZE}, "
                             f"got {g.shape[0]}x{g.shape[1]}")
        return np.rint(ink_on_black(g)).astype(np.uint8)
    return _normalize(g)


def _ink(g):
    """How far each pixel of `g` stands above the background, as light ink on black:
    float32 (4 bytes a pixel, the only copy of the picture made)."""
    border = _border(g).astype(np.float64)
    inverted = dark_on_light(g)
    background = np.median(255.0 - border if inverted else border)  # a whole or half level
    ink = np.empty(g.shape, np.float32)
    if inverted:                      # (255 - g) - background
        np.subtract(np.float32(255.0 - background), g, out=ink, dtype=np.float32)
    else:
        np.subtract(g, np.float32(background), out=ink, dtype=np.float32)
    return np.maximum(ink, 0.0, out=ink)


def _normalize(g):
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    ink = _ink(g)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        return out
    floor = np.float32(INK_FRACTION * peak)
    rows = np.flatnonzero(ink.max(axis=1) >= floor)
    cols = np.flatnonzero(ink.max(axis=0) >= floor)
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    h2, w2 = max(1, round(h * scale)), max(1, round(w * scale))
    small = _resample(crop, h2, w2)
    small *= 255.0 / small.max()
    mass = small.sum()
    cy = (small.sum(axis=1) * np.arange(h2)).sum() / mass
    cx = (small.sum(axis=0) * np.arange(w2)).sum() / mass
    top = min(max(round(CENTRE - cy), 0), IMAGE_SIZE - h2)
    left = min(max(round(CENTRE - cx), 0), IMAGE_SIZE - w2)
    out[top:top + h2, left:left + w2] = np.rint(np.clip(small, 0, 255))
    return out


def _walk(data):
    """(size or None, why the file is refused or None), read from the bytes: the size its
    header announces (PNG's IHDR, JPEG's frame header), and whether it holds more chunks
    (PNG), segments before its first scan or scans (JPEG) than Pillow should walk (Pillow
    reads each in Python; this walk takes a microsecond a chunk)."""
    size = None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if data[12:16] == b"IHDR" and len(data) >= 24:
            size = struct.unpack(">II", data[16:24])
        pos, count = 8, 0
        while pos + 8 <= len(data):
            count += 1
            if count > MAX_PNG_CHUNKS:
                return size, f"PNG of more than {MAX_PNG_CHUNKS:,} chunks"
            if data[pos + 4:pos + 8] == b"IEND":
                break
            pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    elif data[:2] == b"\xff\xd8":
        pos, count = 2, 0
        while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] != 0xDA:
            marker = data[pos + 1]
            count += 1
            if count > MAX_JPEG_SEGMENTS:
                return size, f"JPEG of more than {MAX_JPEG_SEGMENTS:,} segments before its first scan"
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and pos + 9 <= len(data):
                h, w = struct.unpack(">HH", data[pos + 5:pos + 9])    # a frame header (SOFn)
                size = (w, h)
            pos += 2 if 0xD0 <= marker <= 0xD8 or marker == 0x01 else \
                2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        scans = data.count(b"\xff\xda")
        if scans > MAX_JPEG_SCANS:
            return size, f"JPEG of {scans:,} scans (each a pass over the picture); at most {MAX_JPEG_SCANS}"
    return size, None


def _refusal(w, h, max_pixels, max_side, max_aspect):
    """Why a picture of w x h pixels is refused, or None."""
    if 0 < w * h <= max_pixels and max(w, h) <= min(max_side, max_aspect * min(w, h)):
        return None
    what = f"image of {w}x{h} pixels"
    if w == 0 or h == 0:
        return f"empty image ({w}x{h})"
    if w * h > max_pixels:
        return f"{what} is larger than the limit ({max_pixels:,} pixels); refused before decoding"
    if max(w, h) > max_aspect * min(w, h):
        return (f"{what}: its aspect ({max(w, h) / min(w, h):,.0f}:1) is beyond the limit "
                f"({max_aspect:g}:1); refused before decoding")
    if max(w, h) > max_side:
        return f"{what}: a side is longer than the limit ({max_side:,} pixels); refused before decoding"
    return None


def _open(data, max_pixels, max_side, max_aspect):
    """The Pillow image of PNG or JPEG bytes, its header read and checked, not decoded."""
    from PIL import Image, UnidentifiedImageError

    size, too_many = _walk(data)
    if too_many:
        raise PictureError(f"{too_many}; refused before decoding")
    refused = size and _refusal(*size, max_pixels, max_side, max_aspect)
    if refused:
        raise PictureError(refused)
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise PictureError("not a PNG or JPEG image") from None
    except Image.DecompressionBombError:   # Pillow's own bound, far above ours
        raise PictureError(f"image larger than the limit ({max_pixels:,} pixels); refused "
                           "before decoding") from None
    except (OSError, ValueError, SyntaxError, struct.error) as exc:  # a damaged header
        raise PictureError(f"unreadable image header ({exc})") from None
    refused = _refusal(*img.size, max_pixels, max_side, max_aspect)   # Pillow's reading decides
    if refused:
        img.close()
        raise PictureError(refused)
    return img


def picture_size(data, *, max_pixels=MAX_PIXELS, max_side=MAX_SIDE, max_aspect=MAX_ASPECT):
    """The size of a PNG or JPEG picture, read from its header, which must be within the
    limits (as `decode_picture` checks them); nothing is decoded.

    Parameters
    ----------
    data : bytes
        The file's content.
    max_pixels : int
        Most pixels (width x height).
    max_side : int
        Longest side, in pixels.
    max_aspect : float
        Largest ratio of the longer side to the shorter.

    Returns
    -------
    tuple of int
        (width, height) in pixels.

    Raises
    ------
    PictureError
        Not a PNG or JPEG, an unreadable header, or a picture beyond the limits.
    ImportError
        Without Pillow.
    """
    size, too_many = _walk(data)
    if size and not too_many and not _refusal(*size, max_pixels, max_side, max_aspect):
        return size                       # read from the bytes; Pillow reads it again to decode
    with _open(data, max_pixels, max_side, max_aspect) as img:
        return img.size


def decode_picture(data, *, max_pixels=MAX_PIXELS, max_side=MAX_SIDE, max_aspect=MAX_ASPECT):
    """The grey levels of a PNG or JPEG picture: uint8 (H, W).

    Whatever its mode, the picture becomes 8-bit grey by scaling (`grey_levels`: 16-bit
    grey is divided by 257, never clipped); colour becomes its luma (ITU-R 601; a colour
    JPEG is decoded straight to the luma it stores). A picture with transparency is laid
    on the background its ink stands out from: white when its opaque pixels are dark on
    average (dark ink on nothing), else black. Only the first frame of an animation is
    read. The header is checked before anything is decoded (`picture_size`); the time and
    memory of decoding are then in proportion to the pixels (about 5 bytes a pixel beside
    Pillow's decoded picture).

    Parameters
    ----------
    data : bytes
        The file's content.
    max_pixels : int
        Most pixels (width x height) decoded; a larger picture is refused from its header.
    max_side : int
        Longest side decoded, in pixels (refused from the header beyond).
    max_aspect : float
        Largest ratio of the longer side to the shorter (refused from the header beyond).

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W)
        The grey levels (0 black, 255 white), H and W the picture's height and width in
        pixels.

    Raises
    ------
    PictureError
        Not a PNG or JPEG, beyond the limits, truncated or damaged.
    ImportError
        Without Pillow.
    """
    with _open(data, max_pixels, max_side, max_aspect) as img:
        try:
            if img.format == "JPEG":
                img.draft("L", img.size)      # colour: decode its luma only (a quarter the memory)
            img.load()
            return grey_levels(img)
        except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
            raise PictureError(f"damaged or truncated image ({exc})") from None


def _strips(image):
    """(first row, Pillow image of a strip of rows) covering `image`, about
    `_STRIP_PIXELS` pixels each."""
    w, h = image.size
    if w * h <= _STRIP_PIXELS:
        yield 0, image
        return
    rows = max(1, _STRIP_PIXELS // w)
    for top in range(0, h, rows):
        yield top, image.crop((0, top, w, min(h, top + rows)))


def _wide_grey(samples, mode):
    """Samples of a mode of more than 8 bits as grey levels 0..255 (float64): 16-bit
    scaled from 0..65535 (x 255 / 65535, i.e. / 257), F as Pillow keeps it (0..255)."""
    a = samples.astype(np.float64)
    if mode in _SIXTEEN_BIT:
        a = np.clip(a, 0, 65535) / 257.0
    return np.clip(a, 0, 255)


def _luma_alpha(strip):
    """(luma, alpha) of a strip of a picture with transparency: uint8 each (alpha 0
    transparent, 255 opaque)."""
    mode = strip.mode
    if mode in _SIXTEEN_BIT or mode == "F":          # a transparent value, if any
        samples = np.asarray(strip)
        t = strip.info.get("transparency")
        alpha = np.full(samples.shape, 255, np.uint8)
        if isinstance(t, (int, float)):
            alpha[samples == t] = 0
        return np.rint(_wide_grey(samples, mode)).astype(np.uint8), alpha
    if mode == "LA":
        return np.asarray(strip.getchannel("L")), np.asarray(strip.getchannel("A"))
    rgba = strip if mode == "RGBA" else strip.convert("RGBA")
    return np.asarray(rgba.convert("L")), np.asarray(rgba.getchannel("A"))


def grey_levels(image):
    """A Pillow image of any mode as 8-bit grey levels: uint8 (H, W), 0 black, 255 white.

    Each mode's range is scaled to 0..255, never clipped: 16-bit grey (``I;16``,
    ``I;16B``, ..., and ``I``, which Pillow 9 gave 16-bit PNGs) is divided by 257, 1-bit
    becomes 0 and 255, ``F`` is read on Pillow's scale (0.0-255.0, as Pillow's
    ``convert("F")`` makes it from 8-bit grey); colour (RGB, CMYK, YCbCr, HSV, palettes)
    becomes its luma (ITU-R 601). A picture with transparency (an alpha channel, or a
    transparent colour) is laid on white when its opaque pixels are dark on average, else
    on black. The picture is converted in strips of rows: beside the result, the memory
    used is a strip's.

    Parameters
    ----------
    image : PIL.Image.Image
        The picture, loaded or not.

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W)

    Raises
    ------
    PictureError
        A mode with no grey (LAB).
    """
    w, h = image.size
    mode = image.mode
    if mode == "L" and "transparency" not in image.info:      # the common case, one copy
        return np.frombuffer(image.tobytes(), np.uint8).reshape(h, w)
    out = np.empty((h, w), np.uint8)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        # first the background (the mean luma of the opaque pixels), then the composite
        total, count = 0, 0
        for _, strip in _strips(image):
            luma, alpha = _luma_alpha(strip)
            opaque = alpha > 127
            total += int(luma[opaque].sum(dtype=np.int64))
            count += int(np.count_nonzero(opaque))
        background = 255 if count and total / count < 128 else 0
        for top, strip in _strips(image):
            luma, alpha = _luma_alpha(strip)
            # luma x alpha + background x (1 - alpha), rounded: in integers, over 255
            mix = luma.astype(np.uint32) * alpha + np.uint32(background) * (255 - alpha)
            out[top:top + luma.shape[0]] = (mix + 127) // 255
        return out
    for top, strip in _strips(image):
        if mode in _SIXTEEN_BIT or mode == "F":
            grey = np.rint(_wide_grey(np.asarray(strip), mode))
        else:
            try:
                grey = np.asarray(strip if mode == "L" else strip.convert("L"))
            except ValueError as exc:        # e.g. LAB: Pillow has no conversion to grey
                raise PictureError(f"pictures in mode {mode} are not read ({exc})") from None
        out[top:top + grey.shape[0]] = grey
    return out
