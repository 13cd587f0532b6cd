"""The digits of a `lenet-fast serve` request (`lenet_fast.serve`): its body, read within
the limits, and the pictures, JSON, .npy array or multipart files it holds.

A small request is read and decoded on the event loop (about a millisecond); a large
one (a body over `INLINE_BYTES`, pictures over `INLINE_PIXELS` together, more than
`INLINE_DIGITS` digits) in the lane of large requests (`lenet_fast.serve._lane`).
JSON numbers are checked as they are parsed (grey levels 0..255, never a float beyond
float range), and the parsed document's size is bounded from the body's bytes first.
"""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np

from .._io.datasets import IMAGE_SIZE
from .._io.pictures import PictureError, decode_picture, mnist_digit, picture_size
from ._limits import BadRequest

#: Requests of at most this many digits are computed on the event loop, larger ones in
#: the lane of large requests.
INLINE_DIGITS = 8
#: Bodies of at most this many bytes are read and decoded on the event loop; larger
#: ones take a place in the lane first (a picture's header, a JSON document or a
#: multipart body of this size is parsed in about a millisecond).
INLINE_BYTES = 16 * 1024
#: Pictures of at most this many pixels together (e.g. the page's 280x280 canvas) are
#: decoded on the event loop; larger ones in the lane.
INLINE_PIXELS = 1 << 17
#: Most objects and strings a JSON body may hold: ``{"images": [...]}`` has one and one.
MAX_JSON_OBJECTS = 64
MAX_JSON_STRINGS = 128
PICTURE_TYPES = ("image/png", "image/jpeg", "image/jpg")
SERVED_TYPES = PICTURE_TYPES + ("multipart/form-data", "application/json", "application/x-npy")


def content_type(request):
    """The media type of a request's Content-Type, lower case, without parameters."""
    value = request.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def flag(request, name):
    """The boolean query parameter `name` (true/1/yes, false/0/no), None if absent (422
    if anything else)."""
    value = request.query_params.get(name)
    if value is None:
        return None
    value = value.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise BadRequest(422, f"?{name}= must be true or false, got {value[:40]!r}")


async def read_body(request, limits, job):
    """The whole body, at most ``limits.max_body_bytes`` (413), within
    ``limits.body_timeout`` seconds (408); a body over `INLINE_BYTES` takes a place in
    the lane (`job`) before it is read further (429 if there is none)."""
    from starlette.requests import ClientDisconnect

    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise BadRequest(400, f"bad Content-Length {length[:40]!r}")
        if int(length) > limits.max_body_bytes:
            raise BadRequest(413, f"the body ({int(length):,} bytes) is larger than the limit "
                                  f"({limits.max_body_bytes:,} bytes)")
        if int(length) > INLINE_BYTES:
            job.need()
    chunks, size = [], 0

    async def read():
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BadRequest(413, f"the body is larger than the limit "
                                      f"({limits.max_body_bytes:,} bytes)")
            if size > INLINE_BYTES:
                job.need()
            chunks.append(chunk)

    try:
        if hasattr(asyncio, "timeout"):       # Python 3.11+: no extra task per request
            async with asyncio.timeout(limits.body_timeout):
                await read()
        else:
            await asyncio.wait_for(read(), limits.body_timeout)
    except asyncio.TimeoutError:
        raise BadRequest(408, f"the body did not arrive within {limits.body_timeout:g} s") from None
    except ClientDisconnect:
        raise BadRequest(400, "the client closed the connection before the body was complete") from None
    request.state.body_read = True
    return b"".join(chunks)


# ----------------------------------------------------------------------------- pictures
def _picture_sizes(files, limits):
    """The pixels of all the pictures of `files` together, from their headers (422 if a
    picture or their sum is beyond the limits)."""
    total = 0
    for what, data in files:
        if not data:
            raise BadRequest(422, f"{what}: empty")
        try:
            w, h = picture_size(data, max_pixels=limits.max_pixels, max_side=limits.max_side,
                                max_aspect=limits.max_aspect)
        except PictureError as exc:
            raise BadRequest(422, f"{what}: {exc}") from None
        total += w * h
    if total > limits.max_request_pixels:
        raise BadRequest(422, f"the request's {len(files):,} pictures hold {total:,} pixels; at "
                              f"most {limits.max_request_pixels:,} per request (refused before "
                              "decoding)")
    return total


def _pictures(files, limits, normalize):
    """uint8 (N, 28, 28): the digits of `files` ([(what, bytes)]), their sizes checked
    before any is decoded."""
    _picture_sizes(files, limits)
    digits = []
    for what, data in files:
        try:
            grey = decode_picture(data, max_pixels=limits.max_pixels, max_side=limits.max_side,
                                  max_aspect=limits.max_aspect)
            digits.append(mnist_digit(grey, normalize))
        except (PictureError, ValueError) as exc:
            raise BadRequest(422, f"{what}: {exc}") from None
    return np.stack(digits)


def _multipart_files(body, header, limits):
    """[(what, bytes)]: the files of a multipart/form-data body (422 if it is malformed,
    holds a field that is not a file, or more than ``limits.max_images`` parts)."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    boundary = parse_options_header(header)[1].get(b"boundary")
    if not boundary:
        raise BadRequest(422, "bad multipart body: no boundary in its Content-Type")
    parts, name, value = [], [], []

    def begin():
        if len(parts) >= limits.max_images:
            raise BadRequest(422, f"bad multipart body: more than {limits.max_images:,} parts")
        parts.append(({}, []))

    def header_end():
        parts[-1][0][b"".join(name).strip().lower()] = b"".join(value).strip()
        name.clear()
        value.clear()

    callbacks = {"on_part_begin": begin, "on_header_end": header_end,
                 "on_header_field": lambda data, start, end: name.append(data[start:end]),
                 "on_header_value": lambda data, start, end: value.append(data[start:end]),
                 "on_part_data": lambda data, start, end: parts[-1][1].append(data[start:end])}
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(422, f"bad multipart body: {str(exc)[:100]}") from None
    files = []
    for i, (headers, data) in enumerate(parts):
        params = parse_options_header(headers.get(b"content-disposition", b""))[1]
        field = params.get(b"name", b"").decode("latin-1")
        if b"filename" not in params:
            raise BadRequest(422, f"multipart field {field[:40]!r} is not a file")
        filename = params[b"filename"].decode("latin-1") or field
        files.append((f"file {i} ({filename[:60]!r})", b"".join(data)))
    if not files:
        raise BadRequest(422, "the multipart body holds no files")
    return files


# ----------------------------------------------------------------------------- arrays
def array_digits(images, what, normalize):
    """Checked uint8 (N, 28, 28) digits from an array of grey levels."""
    if images.ndim == 2:
        images = images[np.newaxis]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise BadRequest(422, f"{what} must be (N, 28, 28) grey levels, got shape {images.shape}")
    if normalize:
        images = np.stack([mnist_digit(d, True) for d in images]) if len(images) else images
    return np.ascontiguousarray(images)


class _OutOfRange(Exception):
    """A JSON number that is no grey level (0..255)."""


class _NotFinite(Exception):
    """NaN or Infinity in a JSON body."""


def _json_int(text):
    if len(text) <= 4:                  # no int() of a 5,000-digit number
        value = int(text)
        if 0 <= value <= 255:
            return value
    raise _OutOfRange(text)


def _json_float(text):
    value = float(text)                 # beyond float range: inf (out of range), never an error
    if 0.0 <= value <= 255.0:
        return round(value)             # half to even, as np.rint; a small int, shared
    raise _OutOfRange(text)


def _json_constant(name):
    raise _NotFinite(name)


_NOT_NUMBERS = "images must be 28x28 arrays of numbers (grey levels 0-255)"
#: Images converted at a time from JSON lists (each conversion holds the GIL, which the
#: event loop's thread waits for: a few milliseconds).
_BLOCK = 64


def _image_lists(items, arrays, numbers_only):
    """`items` (the document's "images") as a list of images, each a list of 28 lists of 28
    ints; 422 otherwise.

    Checked by the lists' lengths before numpy sees them: numpy converts a list in one
    call holding the GIL, so a 4-million-value row would hold up the event loop for as
    long. Deeper lists, strings, booleans and nulls are looked for value by value (in
    Python, which gives the GIL back) only where the body could hold them: `arrays` is the
    body's count of '[' bytes, `numbers_only` that it holds no other string than the key,
    no other object and no literal (the parser makes every number an int).
    """
    single = bool(items) and type(items[0]) is list and bool(items[0]) and type(items[0][0]) is not list
    images = [items] if single else items
    for i, image in enumerate(images):
        misfit = _misfit("the image" if single else f"image {i:,}", image)
        if misfit:
            raise BadRequest(422, "images must be (N, 28, 28) grey levels: " + misfit)
    if not (numbers_only and arrays == 1 + len(images) * (IMAGE_SIZE + 1) - single):
        for image in images:
            for row in image:
                for value in row:
                    if type(value) is not int:
                        raise BadRequest(422, _NOT_NUMBERS)
    return images


_JSON_KINDS = {int: "a number", str: "a string", bool: "a boolean", dict: "an object",
               type(None): "null"}


def _kind(value):
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _misfit(what, image):
    """How `image` (JSON lists) is not 28 rows of 28 values, or None if it is."""
    if type(image) is not list:
        return f"{what} is {_kind(image)}, not a list of 28 rows"
    if len(image) != IMAGE_SIZE:
        return f"{what} has {len(image):,} rows, not 28"
    for r, row in enumerate(image):
        if type(row) is not list:
            return f"row {r} of {what} is {_kind(row)}, not a list of 28 values"
        if len(row) != IMAGE_SIZE:
            return f"row {r} of {what} has {len(row):,} values, not 28"
    return None


def _uint8_blocks(images):
    """uint8 (N, 28, 28) of the checked lists of `_image_lists`, `_BLOCK` images a call."""
    out = np.empty((len(images), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for start in range(0, len(images), _BLOCK):
        out[start:start + _BLOCK] = np.array(images[start:start + _BLOCK], dtype=np.uint8)
    return out


def from_json(body, limits, normalize):
    """uint8 (N, 28, 28) from a JSON body ``{"images": [...]}`` of 28x28 grey levels:
    numbers 0..255 (floats rounded), nothing else."""
    arrays, objects, quotes = body.count(b"["), body.count(b"{"), body.count(b'"')
    if arrays > 2 + 29 * limits.max_images:
        raise BadRequest(413, f"the JSON body holds {arrays:,} arrays: more than "
                              f"{limits.max_images:,} images of 28 rows hold")
    if objects > MAX_JSON_OBJECTS or quotes > 2 * MAX_JSON_STRINGS:
        raise BadRequest(422, f'the JSON body must be {{"images": [...]}} holding arrays of '
                              f"numbers; it holds {objects:,} objects and {quotes // 2:,} strings")
    try:
        doc = json.loads(body, parse_int=_json_int, parse_float=_json_float,
                         parse_constant=_json_constant)
    except _OutOfRange as exc:
        text = str(exc)
        shown = text if len(text) <= 24 else f"{text[:12]}...{text[-4:]} ({len(text):,} characters)"
        raise BadRequest(422, f"images: grey levels must be in 0..255, got {shown}") from None
    except _NotFinite as exc:
        raise BadRequest(422, f"images: grey levels must be finite numbers, got {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(422, f"the body is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict) or "images" not in doc or not isinstance(doc["images"], list):
        raise BadRequest(422, 'the JSON body must be an object {"images": [...]} holding a list '
                              "of 28x28 grey-level arrays")
    if len(doc["images"]) > limits.max_images:
        raise BadRequest(413, f"{len(doc['images']):,} images; at most {limits.max_images:,} "
                              "per request")
    numbers_only = (quotes == 2 and objects == 1
                    and not any(word in body for word in (b"true", b"false", b"null")))
    images = _uint8_blocks(_image_lists(doc["images"], arrays, numbers_only))
    return array_digits(images, "images", normalize)


def from_npy(body, limits, normalize):
    """uint8 (N, 28, 28) from a .npy body of uint8 (N, 28, 28) or (28, 28)."""
    fmt = np.lib.format
    stream = io.BytesIO(body)
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(stream, max_header_size=10000)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(stream, max_header_size=10000)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, EOFError, SyntaxError) as exc:
        raise BadRequest(422, f"not a .npy array ({str(exc)[:80]})") from None
    if dtype != np.uint8:
        raise BadRequest(422, f"the array must be uint8 grey levels, got {dtype}")
    if len(shape) not in (2, 3) or tuple(shape[-2:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise BadRequest(422, f"the array must be uint8 (N, 28, 28) or (28, 28), got shape {shape}")
    n = shape[0] if len(shape) == 3 else 1
    if n > limits.max_images:
        raise BadRequest(413, f"{n:,} images; at most {limits.max_images:,} per request")
    data = body[stream.tell():]
    if len(data) != n * IMAGE_SIZE * IMAGE_SIZE:
        raise BadRequest(422, f"the array's header announces {n * IMAGE_SIZE * IMAGE_SIZE:,} bytes "
                              f"of data but the body holds {len(data):,} (truncated?)")
    images = np.frombuffer(data, np.uint8).reshape((n, IMAGE_SIZE, IMAGE_SIZE))
    if fortran:
        images = images.reshape((n, IMAGE_SIZE, IMAGE_SIZE)[::-1]).transpose(2, 1, 0)
    return array_digits(images, "the array", normalize)


# ----------------------------------------------------------------------------- the request
async def read_digits(request, limits, job):
    """The digits of a `/v1/predict` request: uint8 (N, 28, 28), N >= 1.

    A coroutine: reads the body (`Limits.max_body_bytes`, `Limits.body_timeout`) and
    decodes it by its Content-Type. A body over `INLINE_BYTES`, pictures over
    `INLINE_PIXELS` together or more than `INLINE_DIGITS` pictures are read and decoded
    in the lane of large requests (`job`: 429 if the lane is full); the rest on the
    event loop.

    Parameters
    ----------
    request : starlette.requests.Request
        The request; its ``?normalize=`` query parameter is honoured
        (`lenet_fast.pictures.mnist_digit`).
    limits : Limits
        What the request may hold.
    job : lenet_fast.serve._lane.Job
        The request's handle on the lane of large requests.

    Returns
    -------
    numpy.ndarray of uint8, shape (N, 28, 28)
        Light ink on black, in the order of the request (pictures, files, array rows).

    Raises
    ------
    BadRequest
        An unsupported Content-Type (415), a body over the limits (413) or too slow
        (408), no place in the lane (429), or a body that does not hold valid digits
        (400, 422).
    """
    normalize = flag(request, "normalize")
    kind = content_type(request)
    if kind not in SERVED_TYPES:
        raise BadRequest(415, f"unsupported Content-Type {kind[:60]!r}; send image/png, image/jpeg, "
                              "multipart/form-data, application/json or application/x-npy")
    body = await read_body(request, limits, job)
    small = len(body) <= INLINE_BYTES
    if kind in PICTURE_TYPES or kind == "multipart/form-data":
        header = request.headers.get("content-type", "")

        def files():
            if kind in PICTURE_TYPES:
                return [("the image", body)]
            return _multipart_files(body, header, limits)

        if small:                 # parts and headers read here; the pixels decoded by size
            parts = files()
            large = len(parts) > INLINE_DIGITS or _picture_sizes(parts, limits) > INLINE_PIXELS
            digits = await job.run(lambda: _pictures(parts, limits, normalize), large)
        else:
            digits = await job.run(lambda: _pictures(files(), limits, normalize))
    else:
        parse = from_json if kind == "application/json" else from_npy
        digits = await job.run(lambda: parse(body, limits, normalize), not small)
    if len(digits) == 0:
        raise BadRequest(422, "no images in the request")
    return digits
