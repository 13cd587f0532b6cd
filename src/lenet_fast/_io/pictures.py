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

`decode_picture` turns PNG or JPEG bytes into grey levels, refusing an image whose
header announces more than `MAX_PIXELS` before it is decoded.
"""

from __future__ import annotations

import io

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
#: Formats `decode_picture` reads.
FORMATS = ("PNG", "JPEG")


class PictureError(ValueError):
    """Bytes that are not a PNG or JPEG picture this module decodes (the message says why)."""


def _resample_matrix(n_in, n_out):
    """(n_out, n_in) float64 weights resampling a line of n_in pixels to n_out: a
    triangle (linear) filter widened by the scale when shrinking, so that every input
    pixel counts (anti-aliasing); rows sum to 1."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    x = np.arange(n_in) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs(x[None, :] - centres[:, None]) / support)
    w /= w.sum(axis=1, keepdims=True)
    return w


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
    if g.size and g.dtype.kind == "f" and not np.isfinite(g).all():
        raise ValueError("grey levels must be finite (got NaN or infinity)")
    if g.size and (g.min() < 0 or g.max() > 255):
        raise ValueError(f"grey levels must be in 0..255, got {g.min()}..{g.max()}")
    g = ink_on_black(g)
    if normalize is None:
        normalize = g.shape != (IMAGE_SIZE, IMAGE_SIZE)
    if not normalize:
        if g.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"a digit that is not normalized must be {IMAGE_SIZE}x{IMAGE_SIZE}, "
                             f"got {g.shape[0]}x{g.shape[1]}")
        return np.rint(g).astype(np.uint8)
    return _normalize(g)


def _normalize(g):
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    g = np.maximum(g - np.median(_border(g)), 0.0)
    peak = g.max()
    if peak < MIN_CONTRAST:
        return out
    rows = np.flatnonzero((g >= INK_FRACTION * peak).any(axis=1))
    cols = np.flatnonzero((g >= INK_FRACTION * peak).any(axis=0))
    crop = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    h2, w2 = max(1, round(h * scale)), max(1, round(w * scale))
    small = _resample_matrix(h, h2) @ crop @ _resample_matrix(w, w2).T
    small *= 255.0 / small.max()
    mass = small.sum()
    cy = (small.sum(axis=1) * np.arange(h2)).sum() / mass
    cx = (small.sum(axis=0) * np.arange(w2)).sum() / mass
    top = min(max(round(CENTRE - cy), 0), IMAGE_SIZE - h2)
    left = min(max(round(CENTRE - cx), 0), IMAGE_SIZE - w2)
    out[top:top + h2, left:left + w2] = np.rint(np.clip(small, 0, 255))
    return out


def decode_picture(data, *, max_pixels=MAX_PIXELS):
    """The grey levels of a PNG or JPEG picture: uint8 (H, W).

    Colour is converted to grey (ITU-R 601 luma). A picture with transparency is laid on
    the background its ink stands out from: white when its opaque pixels are dark on
    average (dark ink on nothing), else black. Only the first frame of an animation is read.

    Parameters
    ----------
    data : bytes
        The file's content.
    max_pixels : int
        Largest width x height decoded; a larger one is refused from its header.

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W)
        The grey levels (0 black, 255 white), H and W the picture's height and width in
        pixels.

    Raises
    ------
    PictureError
        Not a PNG or JPEG, too large, truncated or damaged.
    ImportError
        Without Pillow.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise PictureError("not a PNG or JPEG image") from None
    except Image.DecompressionBombError:   # Pillow's own bound, far above ours
        raise PictureError(f"image larger than the limit ({max_pixels:,} pixels); refused "
                           "before decoding") from None
    except (OSError, ValueError, SyntaxError) as exc:  # a damaged header
        raise PictureError(f"unreadable image header ({exc})") from None
    with img:
        w, h = img.size
        if w * h > max_pixels:
            raise PictureError(f"image of {w}x{h} pixels is larger than the limit "
                               f"({max_pixels:,} pixels); refused before decoding")
        if w == 0 or h == 0:
            raise PictureError(f"empty image ({w}x{h})")
        try:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
                luma = np.asarray(rgba.convert("L"), dtype=np.float64)
                opaque = alpha > 0.5
                dark = opaque.any() and luma[opaque].mean() < 128
                background = 255.0 if dark else 0.0
                grey = luma * alpha + background * (1.0 - alpha)
                return np.rint(grey).astype(np.uint8)
            grey = img if img.mode == "L" else img.convert("L")
            return np.frombuffer(grey.tobytes(), np.uint8).reshape(h, w)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or damaged data
            raise PictureError(f"damaged or truncated image ({exc})") from None
