"""``lenet-fast predict``: classify digit images (IDX, .npy, PNG, JPEG) with a saved model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._io import datasets
from .._io.files import open_regular
from ._common import (
    PROG,
    CLIError,
    _load_model,
    _load_pretrained,
    _one_line,
    _os_error,
    _pretrained_names,
    _thread_count,
)

PILLOW_MISSING = 'reading PNG/JPEG needs Pillow: pip install Pillow (or pip install "lenet-fast[images]")'

# First bytes of the input formats `predict` reads.
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_NPY_MAGIC = b"\x93NUMPY"
_GZIP_MAGIC = b"\x1f\x8b"



HELP = "classify digit images with a saved model"
USAGE = (f"{PROG} predict [options] MODEL INPUT [INPUT ...]\n"
         f"       {PROG} predict [options] --pretrained NAME INPUT [INPUT ...]")
DESCRIPTION = """
Classify digit images. Prints one line per image: '<file>[<index>]<TAB><digit>', with
--proba followed by the 10 class probabilities (4 decimals, tab-separated, digits 0 to
9).
"""
EPILOG = """
Inputs (recognised by their content, not their name): MNIST IDX image files, raw or
gzipped (e.g. t10k-images-idx3-ubyte.gz); .npy arrays, either uint8 grey levels (N, 28,
28) or (28, 28) with 0 = background, 255 = ink, or float32 (N, 1, 32, 32) already
preprocessed (lenet_fast.datasets.preprocess); PNG and JPEG images if Pillow is
installed (pip install Pillow): converted to greyscale; MNIST digits are white ink on
black: a picture whose border is light (more than half of its border pixels above 127)
is taken to be dark ink on a light background and is inverted. Pictures that are not
28x28 are normalized as MNIST's digits were made (lenet_fast.pictures.mnist_digit: the
ink cropped, scaled to fit 20x20 keeping its aspect, its centre of mass placed at the
centre of 28x28); --normalize does it to 28x28 pictures too.
"""


def add_arguments(p, parsers):
    """The options of ``predict``."""
    p.add_argument("inputs", metavar="MODEL INPUT", nargs="+",
                   help="the model file (.npz) written by 'train' (not with --pretrained), then "
                        "IDX, .npy, PNG or JPEG files")
    p.add_argument("--pretrained", choices=_pretrained_names(), default=None,
                   help="use the pretrained model shipped with lenet_fast instead of a MODEL file")
    p.add_argument("--normalize", action="store_true",
                   help="normalize 28x28 PNG/JPEG pictures too (pictures of other sizes always are)")
    p.add_argument("--threads", type=_thread_count, default=None, metavar="T",
                   help="OpenMP threads (default: OMP_NUM_THREADS, else all cores)")
    p.add_argument("--proba", action="store_true",
                   help="also print the 10 class probabilities (modern: softmax of the logits; "
                        "lecun98: softmax of the negated RBF distances)")



def _import_pillow():
    try:
        from PIL import Image
    except ImportError:
        raise CLIError(PILLOW_MISSING) from None
    return Image


def _read_npy(path):
    # Memory-mapped: the header's shape is checked against the file's size without
    # reading it, and only an array of an accepted kind is copied into memory.
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path}: not a single .npy array")
    size = datasets.IMAGE_SIZE
    if array.dtype == np.uint8 and array.shape == (size, size):
        return np.array(array[np.newaxis])
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[1:] == (size, size):
        return np.array(array)
    if array.dtype == np.float32 and array.ndim == 4 and array.shape[1:] == (1, 32, 32):
        return np.array(array, order="C")
    raise ValueError(f"{path}: array of {array.dtype} {array.shape}; expected uint8 "
                     f"(N, {size}, {size}) or ({size}, {size}) grey levels, or float32 "
                     "(N, 1, 32, 32) preprocessed images")


def _read_picture(path, normalize):
    from .._io.pictures import decode_picture, mnist_digit

    _import_pillow()
    f, _ = open_regular(path, ValueError, "image file (PNG or JPEG)")
    with f:
        data = f.read()
    try:
        grey = decode_picture(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return mnist_digit(grey, True if normalize else None)[np.newaxis]


def read_images(path, normalize=False):
    """Images from one `predict` input: uint8 (N, 28, 28) or float32 (N, 1, 32, 32).

    The format is recognised by the file's first bytes: PNG, JPEG, .npy, else
    an IDX image file (gzipped or raw). Pictures (PNG, JPEG) go through
    `lenet_fast.pictures.mnist_digit` (normalized unless 28x28 and not `normalize`).
    """
    f, _ = open_regular(path, ValueError, "image file (IDX, .npy, PNG or JPEG)")
    with f:
        head = f.read(8)
    if head.startswith(_PNG_MAGIC) or head.startswith(_JPEG_MAGIC):
        return _read_picture(path, normalize)
    if head.startswith(_NPY_MAGIC):
        return _read_npy(path)
    if not head.startswith(_GZIP_MAGIC):
        suffix = Path(path).suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg"):
            raise ValueError(f"{path}: not a {suffix[1:].upper()} file")
        if suffix == ".npy":
            raise ValueError(f"{path}: not a .npy file")
    return datasets.read_idx(path, "images")


def run(args):
    inputs = list(args.inputs)
    if args.pretrained is not None:
        model = _load_pretrained(args.pretrained)
    elif len(inputs) < 2:
        raise CLIError("give a MODEL file and at least one INPUT, or --pretrained NAME and the "
                       "INPUTs", code=2)
    else:
        model = _load_model(inputs.pop(0))
    model.n_threads = args.threads
    batches = []
    for path in inputs:
        try:
            batches.append((path, read_images(path, args.normalize)))
        except CLIError:
            raise
        except OSError as exc:
            message = _os_error(exc) if exc.filename is not None else f"{path}: {exc}"
            raise CLIError(f"cannot read {message}") from None
        except (ValueError, TypeError) as exc:  # includes DataFormatError
            raise CLIError(_one_line(exc)) from None
    for path, images in batches:
        if args.proba:
            proba = model.predict_proba(images)
            digits = proba.argmax(axis=1)
        else:
            digits = model.predict(images)
        lines = []
        for i, digit in enumerate(digits):
            line = f"{path}[{i}]\t{int(digit)}"
            if args.proba:
                line += "\t" + "\t".join(f"{p:.4f}" for p in proba[i])
            lines.append(line)
        if lines:
            print("\n".join(lines))
    return 0


# --------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------
