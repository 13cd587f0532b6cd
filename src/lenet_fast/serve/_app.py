"""``lenet-fast serve``: a digit-recognition service and its draw-a-digit page.

An ASGI application (Starlette) run by uvicorn; needs ``pip install "lenet-fast[serve]"``.

Endpoints
---------
``POST /v1/predict``
    One digit as a PNG or JPEG body (``Content-Type: image/png`` / ``image/jpeg``),
    several as ``multipart/form-data`` files, JSON ``{"images": [...]}`` (28x28 grey
    levels 0-255 each) or a ``.npy`` array (``application/x-npy``, uint8 (N, 28, 28) or
    (28, 28)). Answers ``{"predictions": [...], "probabilities": [[10 floats], ...]}``
    from one batched pass over all the request's digits. Pictures pass through
    `lenet_fast.pictures.mnist_digit` (inverted if dark on light; normalized as MNIST's
    digits were made unless already 28x28); ``?normalize=true`` normalizes 28x28 pictures
    and arrays too, ``?normalize=false`` none. ``?images=true`` adds ``"images"``: the
    28x28 digits the model saw; ``?features=c1`` adds ``"c1"``: each digit's six C1
    feature maps (the page shows both).
``GET /``
    The draw-a-digit page (``page.html``: self-contained, works offline).
``GET /healthz``, ``GET /metrics``, ``GET /openapi.json``
    Liveness and the model served; the metrics (Prometheus text format); the OpenAPI
    description.

Bad requests get a 4xx and a JSON ``{"error": "<one line>"}``: a body over the limit
(413), a Content-Type not served (415), a file that is not a PNG/JPEG, a truncated one,
an array of the wrong shape or dtype, NaN or out-of-range grey levels (422), a picture
whose header announces more than `Limits.max_pixels` (422, refused before decoding), a
body that does not arrive within `Limits.body_timeout` (408; a slow client holds only its
own connection: bodies are read asynchronously).

Small requests (a few digits: about 0.1 ms of work) are decoded and computed on the
event loop; larger ones in a worker thread (Pillow and the kernels release the GIL), so
that a 1,000-digit request does not hold the others. Each request is one pass of its
own: its answer does not depend on what other requests arrive at the same time.

Processes: ``workers > 1`` runs uvicorn's multi-process mode, which starts its workers
with the ``spawn`` method (fresh interpreters: no fork of a process that has run OpenMP);
the workers share the listening socket and the Prometheus metrics
(prometheus_client's multiprocess mode, in a temporary folder). SIGTERM stops accepting
connections, finishes the requests in flight, and exits 0.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._version import __version__
from .._io.datasets import IMAGE_SIZE
from .._model.lenet5 import load
from .._model._runtime import softmax
from .._io.pictures import PictureError, decode_picture, mnist_digit
from .._model.pretrained import info as zoo_info
from .._model.pretrained import path as zoo_path
from ._metrics import ServeMetrics, metrics_middleware
from ._openapi import openapi_document

SERVE_MISSING = 'lenet-fast serve needs its extra: pip install "lenet-fast[serve]"'
PAGE = Path(__file__).resolve().parent / "page.html"
#: Requests of at most this many digits are computed on the event loop, larger ones in a
#: worker thread.
INLINE_DIGITS = 8
#: JSON or .npy bodies larger than this are parsed in a worker thread.
INLINE_BYTES = 64 * 1024
#: Requests asking for the C1 feature maps may hold at most this many digits.
MAX_FEATURE_DIGITS = 16
_CONFIG_ENV = "LENET_FAST_SERVE_CONFIG"
_PICTURE_TYPES = ("image/png", "image/jpeg", "image/jpg")


@dataclass(frozen=True)
class Limits:
    """What one request may hold.

    Parameters
    ----------
    max_body_bytes : int, default 16 MiB (16,777,216)
        Largest body in bytes, as its Content-Length announces it and as it arrives
        (413).
    max_images : int, default 10,000
        Most digits in one JSON or .npy body (413) and most files and fields in one
        multipart body (422).
    max_pixels : int, default 1 << 24
        Largest width x height of a PNG or JPEG picture, refused from its header before it
        is decoded (422; `lenet_fast.pictures.decode_picture`).
    body_timeout : float, default 10.0
        Seconds within which the whole body must arrive (408).
    """
    max_body_bytes: int = 16 * 2**20
    max_images: int = 10_000
    max_pixels: int = 1 << 24
    body_timeout: float = 10.0


class BadRequest(Exception):
    """A request refused with `status` and a one-line `reason`.

    Parameters
    ----------
    status : int
        The HTTP status of the answer (400, 408, 413, 415 or 422).
    reason : str
        One line saying what is wrong; the answer's body is ``{"error": reason}``.
    """

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ----------------------------------------------------------------------------- input
def _content_type(request):
    value = request.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


async def _read_body(request, limits):
    """The whole body, at most ``limits.max_body_bytes`` (413), within
    ``limits.body_timeout`` seconds (408)."""
    from starlette.requests import ClientDisconnect

    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise BadRequest(400, f"bad Content-Length {length[:40]!r}")
        if int(length) > limits.max_body_bytes:
            raise BadRequest(413, f"the body ({int(length):,} bytes) is larger than the limit "
                                  f"({limits.max_body_bytes:,} bytes)")
    chunks, size = [], 0

    async def read():
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BadRequest(413, f"the body is larger than the limit "
                                      f"({limits.max_body_bytes:,} bytes)")
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
    return b"".join(chunks)


def _flag(request, name):
    value = request.query_params.get(name)
    if value is None:
        return None
    value = value.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise BadRequest(422, f"?{name}= must be true or false, got {value[:40]!r}")


def _picture(data, what, limits, normalize):
    if not data:
        raise BadRequest(422, f"{what}: empty")
    try:
        grey = decode_picture(data, max_pixels=limits.max_pixels)
        return mnist_digit(grey, normalize)
    except (PictureError, ValueError) as exc:
        raise BadRequest(422, f"{what}: {exc}") from None


def _array_digits(images, what, normalize):
    """Checked uint8 (N, 28, 28) digits from an array of grey levels."""
    if images.ndim == 2:
        images = images[np.newaxis]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise BadRequest(422, f"{what} must be (N, 28, 28) grey levels, got shape {images.shape}")
    if images.dtype != np.uint8:
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            raise BadRequest(422, f"{what}: grey levels must be finite numbers (got NaN or infinity)")
        if images.size and (images.min() < 0 or images.max() > 255):
            raise BadRequest(422, f"{what}: grey levels must be in 0..255, got "
                                  f"{images.min():g}..{images.max():g}")
        images = np.rint(images).astype(np.uint8)
    if normalize:
        images = np.stack([mnist_digit(d, True) for d in images]) if len(images) else images
    return np.ascontiguousarray(images)


def _from_json(body, limits, normalize):
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(422, f"the body is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict) or "images" not in doc or not isinstance(doc["images"], list):
        raise BadRequest(422, 'the JSON body must be an object {"images": [...]} holding a list '
                              "of 28x28 grey-level arrays")
    if len(doc["images"]) > limits.max_images:
        raise BadRequest(413, f"{len(doc['images']):,} images; at most {limits.max_images:,} "
                              "per request")
    try:
        images = np.array(doc["images"], dtype=np.float64)
    except (ValueError, TypeError):
        raise BadRequest(422, "images must be 28x28 arrays of numbers (grey levels 0-255)") from None
    if images.ndim == 1 and images.size == 0:
        images = images.reshape(0, IMAGE_SIZE, IMAGE_SIZE)
    return _array_digits(images, "images", normalize)


def _from_npy(body, limits, normalize):
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
    return _array_digits(images, "the array", normalize)


async def _from_multipart(request, body, limits, normalize):
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    form_request = Request(request.scope, replay)
    try:
        form = await form_request.form(max_files=limits.max_images, max_fields=limits.max_images,
                                       max_part_size=limits.max_body_bytes)
    except HTTPException as exc:
        raise BadRequest(422, f"bad multipart body: {exc.detail}") from None
    try:
        files = []
        for i, (name, value) in enumerate(form.multi_items()):
            if not isinstance(value, UploadFile):
                raise BadRequest(422, f"multipart field {name[:40]!r} is not a file")
            files.append((f"file {i} ({(value.filename or name)[:60]!r})", await value.read()))
    finally:
        await form.close()
    if not files:
        raise BadRequest(422, "the multipart body holds no files")

    def decode():
        return np.stack([_picture(data, what, limits, normalize) for what, data in files])
    return await _off_loop(decode, len(files) > INLINE_DIGITS)


async def _off_loop(work, large):
    """work() on the event loop if small, else in a worker thread (so that a large
    request does not hold the small ones)."""
    if large:
        from starlette.concurrency import run_in_threadpool
        return await run_in_threadpool(work)
    return work()


async def read_digits(request, limits):
    """The digits of a `/v1/predict` request: uint8 (N, 28, 28), N >= 1.

    A coroutine: reads the body (`Limits.max_body_bytes`, `Limits.body_timeout`) and
    decodes it by its Content-Type; bodies of more than `INLINE_DIGITS` pictures or
    `INLINE_BYTES` bytes of JSON or .npy are decoded in a worker thread.

    Parameters
    ----------
    request : starlette.requests.Request
        The request; its ``?normalize=`` query parameter is honoured
        (`lenet_fast.pictures.mnist_digit`).
    limits : Limits
        What the request may hold.

    Returns
    -------
    numpy.ndarray of uint8, shape (N, 28, 28)
        Light ink on black, in the order of the request (pictures, files, array rows).

    Raises
    ------
    BadRequest
        An unsupported Content-Type (415), a body over the limits (413) or too slow
        (408), or one that does not hold valid digits (400, 422).
    """
    normalize = _flag(request, "normalize")
    kind = _content_type(request)
    served = {"image/png", "image/jpeg", "image/jpg", "multipart/form-data", "application/json",
              "application/x-npy"}
    if kind not in served:
        raise BadRequest(415, f"unsupported Content-Type {kind[:60]!r}; send image/png, image/jpeg, "
                              "multipart/form-data, application/json or application/x-npy")
    body = await _read_body(request, limits)
    if kind in _PICTURE_TYPES:
        digits = _picture(body, "the image", limits, normalize)[np.newaxis]
    elif kind == "multipart/form-data":
        digits = await _from_multipart(request, body, limits, normalize)
    else:
        parse = _from_json if kind == "application/json" else _from_npy
        digits = await _off_loop(lambda: parse(body, limits, normalize), len(body) > INLINE_BYTES)
    if len(digits) == 0:
        raise BadRequest(422, "no images in the request")
    return digits


# ----------------------------------------------------------------------------- app
def create_app(model, *, description=None, limits=Limits()):
    """The ASGI application serving `model` (a `LeNet5`).

    `description`: a dict shown by ``GET /healthz`` (what model this is); `limits`: what
    one request may hold (`Limits`).

    Parameters
    ----------
    model : LeNet5
        The model answering ``POST /v1/predict``; its `LeNet5.n_threads` are the threads
        of each pass.
    description : dict or None
        JSON-serializable entries added to ``GET /healthz``'s answer (beside ``status``,
        ``version``, ``variant`` and ``pid``).
    limits : Limits
        What one request may hold.

    Returns
    -------
    callable
        The ASGI application (``async (scope, receive, send)``): the Starlette app of
        the endpoints, inside the middleware that counts every response for
        ``GET /metrics``.

    Raises
    ------
    ImportError
        Without starlette or prometheus_client (``pip install "lenet-fast[serve]"``).
    """
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    metrics = ServeMetrics()
    page = PAGE.read_text(encoding="utf-8")
    health = {"status": "ok", "version": __version__, "variant": model.variant,
              "pid": os.getpid(), **(description or {})}
    openapi = openapi_document(MAX_FEATURE_DIGITS)

    def error(status, reason):
        return JSONResponse({"error": reason}, status_code=status)

    def run(digits, images, features):
        """The JSON answer (bytes) for `digits`: one pass of the network over all of them."""
        scores = model.scores(digits)
        result = {"predictions": scores.argmax(axis=1).tolist(),
                  "probabilities": softmax(scores).tolist()}
        if images:
            result["images"] = digits.tolist()
        if features:
            result["c1"] = np.round(model.activations(digits)["c1"], 3).tolist()
        return json.dumps(result, separators=(",", ":")).encode()

    async def predict(request):
        try:
            images = _flag(request, "images")
            features = request.query_params.get("features")
            if features not in (None, "c1"):
                raise BadRequest(422, f"?features= may only be c1, got {features[:40]!r}")
            digits = await read_digits(request, limits)
            if features and len(digits) > MAX_FEATURE_DIGITS:
                raise BadRequest(422, f"?features=c1 takes at most {MAX_FEATURE_DIGITS} digits")
        except BadRequest as exc:
            return error(exc.status, exc.reason)
        metrics.digits.observe(len(digits))
        body = await _off_loop(lambda: run(digits, images, features), len(digits) > INLINE_DIGITS)
        return Response(body, media_type="application/json")

    async def index(request):
        return HTMLResponse(page)

    async def healthz(request):
        return JSONResponse(health)

    async def metrics_endpoint(request):
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def openapi_endpoint(request):
        return JSONResponse(openapi)

    routes = [Route("/", index), Route("/v1/predict", predict, methods=["POST"]),
              Route("/healthz", healthz), Route("/metrics", metrics_endpoint),
              Route("/openapi.json", openapi_endpoint)]
    app = Starlette(routes=routes)
    app.state.metrics = metrics
    return metrics_middleware(app, metrics, {r.path for r in routes})


# ----------------------------------------------------------------------------- running
def load_served_model(model_path=None, pretrained="modern"):
    """(model, description) for a model file, else the pretrained model named.

    Parameters
    ----------
    model_path : str, os.PathLike or None
        A model file (`lenet_fast.load`); None: the pretrained model `pretrained`.
    pretrained : {"modern", "lecun98"}
        The pretrained model (`lenet_fast.zoo`) served when `model_path` is None.

    Returns
    -------
    model : LeNet5
        The model loaded.
    description : dict
        What `create_app` shows on ``GET /healthz``: ``{"model": model_path}`` (as a
        str), or for a pretrained model ``{"model": "pretrained <name>"}`` with its
        recorded ``test_accuracy`` and ``command`` (`lenet_fast.zoo.info`).
    """
    if model_path is not None:
        model = load(model_path)
        return model, {"model": str(model_path)}
    file = zoo_path(pretrained)
    recorded = zoo_info(pretrained)
    model = load(file)
    return model, {"model": f"pretrained {pretrained}",
                   "test_accuracy": recorded.get("test_accuracy"),
                   "command": recorded.get("command")}


def _app_from_settings(settings):
    model, description = load_served_model(settings["model"], settings["pretrained"])
    model.n_threads = settings["threads"]
    return create_app(model, description=description, limits=Limits(**settings["limits"]))


def worker_app():
    """The application of one `--workers` process (uvicorn's factory, in a spawned
    interpreter): its settings come from the environment set by `run`.

    Returns
    -------
    callable
        The ASGI application (`create_app`) of the model, threads and limits that `run`
        wrote, as JSON, into the environment variable ``LENET_FAST_SERVE_CONFIG``.
    """
    return _app_from_settings(json.loads(os.environ[_CONFIG_ENV]))


def run(*, model=None, pretrained="modern", host="127.0.0.1", port=8000, workers=1,
        threads=None, limits=Limits(), log_level="info", ready=None):
    """Serve until SIGTERM or SIGINT; returns 0 after a graceful shutdown (SIGTERM: the
    requests in flight are finished first).

    `model`: a model file, else the pretrained model `pretrained`. `workers` > 1:
    uvicorn's multi-process mode (spawned workers). `ready`: called with the bound port
    once the server listens (single process).

    Parameters
    ----------
    model : str, os.PathLike or None
        The model file served; None: the pretrained model `pretrained`.
    pretrained : {"modern", "lecun98"}
        The pretrained model served when `model` is None.
    host : str
        The address to listen on.
    port : int
        The TCP port; 0: a free port chosen by the system (`ready` is told which).
    workers : int
        Processes serving; more than 1: uvicorn's multi-process mode, sharing the socket
        and the Prometheus metrics.
    threads : int or None
        Kernel threads of each process's model (`LeNet5.n_threads`); None: the OpenMP
        default.
    limits : Limits
        What one request may hold.
    log_level : str
        uvicorn's log level: "critical", "error", "warning", "info", "debug" or "trace".
    ready : callable or None
        Called with the bound port (int) once the server listens; single process only
        (ignored with `workers` > 1).

    Returns
    -------
    int
        0, after a graceful shutdown.

    Raises
    ------
    ImportError
        Without uvicorn, starlette or prometheus_client
        (``pip install "lenet-fast[serve]"``).
    """
    import uvicorn

    settings = {"model": None if model is None else str(model), "pretrained": pretrained,
                "threads": threads, "limits": asdict(limits)}
    common = dict(host=host, port=port, log_level=log_level, access_log=False,
                  timeout_keep_alive=5, timeout_graceful_shutdown=30, lifespan="off")
    # SIGTERM after uvicorn's graceful shutdown: uvicorn raises the signal again once it has
    # restored the previous handler; this one makes that a normal exit (status 0).
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        if workers > 1:
            with tempfile.TemporaryDirectory(prefix="lenet-fast-metrics-") as folder:
                os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", folder)
                os.environ[_CONFIG_ENV] = json.dumps(settings)
                uvicorn.run("lenet_fast.serve:worker_app", factory=True, workers=workers, **common)
            return 0
        app = _app_from_settings(settings)
        server = uvicorn.Server(uvicorn.Config(app, **common))
        if ready is not None:
            _notify_when_started(server, ready)
        server.run()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _notify_when_started(server, ready):
    """Call ready(port) once `server` listens (port 0 gives a free port)."""
    original = server.startup

    async def startup(sockets=None):
        await original(sockets=sockets)
        if server.started:
            ports = [s.getsockname()[1] for srv in server.servers for s in srv.sockets]
            ready(ports[0] if ports else None)
    server.startup = startup


def port_line(port):
    """The line ``lenet-fast serve`` prints once it listens (tests read it).

    Parameters
    ----------
    port : int
        The port the server listens on.

    Returns
    -------
    str
        ``"lenet-fast serve: listening on port <port>"``, without a newline.
    """
    return f"lenet-fast serve: listening on port {port}"
