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

Every error is a JSON ``{"error": "<one line>"}``, the framework's and the HTTP
layer's included: a body over the limit (413), a Content-Type not served (415), a
file that is not a PNG/JPEG, a truncated one, an array of the wrong shape or dtype,
JSON grey levels that are not numbers in 0..255 (422), a picture whose header
announces more than `Limits.max_pixels`, a side over `Limits.max_side` or an aspect
over `Limits.max_aspect` (422, refused before decoding), a body that does not arrive
within `Limits.body_timeout` (408), a request head over `Limits.max_header_bytes`
(431) or slower than `Limits.header_timeout` (408), no place left for a large request
(429, ``Retry-After``), a path or method not served (404, 405), a request HTTP cannot
parse (400). A connection silent for `Limits.idle_timeout` with no request in flight
is closed; at most `Limits.max_connections` are open (`lenet_fast.serve._http`).

Small requests (a few digits in a small body: about 0.1 ms of work) are decoded and
computed on the event loop; larger ones in the lane of large requests: a bounded
number of worker threads with a bounded queue (`Limits.large_threads`,
`Limits.large_queue`; `lenet_fast.serve._lane`), so that neither a 1,000-digit
request nor the largest picture holds the others, and their memory is bounded. Each
request is one pass of its own: its answer does not depend on what other requests
arrive at the same time.

Processes: ``workers > 1`` runs uvicorn's multi-process mode, which starts its workers
with the ``spawn`` method (fresh interpreters: no fork of a process that has run OpenMP);
the workers share the listening socket and the Prometheus metrics
(prometheus_client's multiprocess mode, in a temporary folder). SIGTERM stops accepting
connections, finishes the requests in flight, and exits 0.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .._version import __version__
from .._model.lenet5 import load
from .._model._runtime import softmax
from .._model.pretrained import info as zoo_info
from .._model.pretrained import path as zoo_path
from . import _http
from ._input import INLINE_BYTES, INLINE_DIGITS, INLINE_PIXELS, flag, read_digits
from ._lane import Lane
from ._limits import BadRequest, Limits
from ._metrics import ServeMetrics, metrics_middleware
from ._openapi import openapi_document

SERVE_MISSING = 'lenet-fast serve needs its extra: pip install "lenet-fast[serve]"'
PAGE = Path(__file__).resolve().parent / "page.html"
#: Requests asking for the C1 feature maps may hold at most this many digits.
MAX_FEATURE_DIGITS = 16
#: Answers larger than this are sent in pieces of `_PIECE` bytes, their request keeping
#: its place in the lane of large requests until the last piece is handed over (so the
#: answers waiting for slow clients are as few as the lane's places).
STREAM_BYTES = 1 << 20
_PIECE = 1 << 16
_CONFIG_ENV = "LENET_FAST_SERVE_CONFIG"


# ----------------------------------------------------------------------------- app
def create_app(model, *, description=None, limits=Limits()):
    """The ASGI application serving `model` (a `LeNet5`).

    `description`: a dict shown by ``GET /healthz`` (what model this is); `limits`: what
    one request may hold (`Limits`). Every error it answers, the framework's 404 and 405
    included, is ``{"error": "<one line>"}``.

    Parameters
    ----------
    model : LeNet5
        The model answering ``POST /v1/predict``; its `LeNet5.n_threads` are the threads
        of each pass.
    description : dict or None
        JSON-serializable entries added to ``GET /healthz``'s answer (beside ``status``,
        ``version``, ``variant`` and ``pid``).
    limits : Limits
        What one request may hold, and the lane of large requests
        (`Limits.large_threads`, `Limits.large_queue`).

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
    from starlette.exceptions import HTTPException
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    metrics = ServeMetrics()
    lane = Lane(limits.large_threads, limits.large_queue, metrics.large)
    page = PAGE.read_text(encoding="utf-8")
    health = {"status": "ok", "version": __version__, "variant": model.variant,
              "pid": os.getpid(), **(description or {})}
    openapi = openapi_document(MAX_FEATURE_DIGITS)

    def error(status, reason, headers=None):
        return JSONResponse({"error": reason}, status_code=status, headers=headers)

    def run(digits, images, features):
        """The JSON answer (bytes) for `digits`: one pass of the network over all of them."""
        scores = model.scores(digits)
        parts = ['{"predictions":', _json_rows(scores.argmax(axis=1), 4096),
                 ',"probabilities":', _json_rows(softmax(scores), 256)]
        if images:
            parts += [',"images":', _json_rows(digits, 16)]
        if features:
            parts += [',"c1":', _json_rows(np.round(model.activations(digits)["c1"], 3), 1)]
        return "".join(parts + ["}"]).encode()

    async def predict(request):
        job = lane.job()
        try:
            images = flag(request, "images")
            features = request.query_params.get("features")
            if features not in (None, "c1"):
                raise BadRequest(422, f"?features= may only be c1, got {features[:40]!r}")
            digits = await read_digits(request, limits, job)
            if features and len(digits) > MAX_FEATURE_DIGITS:
                raise BadRequest(422, f"?features=c1 takes at most {MAX_FEATURE_DIGITS} digits")
            metrics.digits.observe(len(digits))
            body = await job.run(lambda: run(digits, images, features), len(digits) > INLINE_DIGITS)
        except BadRequest as exc:
            job.close()
            # A body too slow or cut (408, 400), or over the limit from a client waiting
            # for "100 Continue" (it will not send it): the connection is closed. The rest
            # of any other body not read (413, 415, 422, 429) is read and dropped by the
            # HTTP layer (_http) within the body timeout, so that the client, which may
            # send its whole body before it reads, gets this answer instead of a reset.
            waiting = "100-continue" in request.headers.get("expect", "").lower()
            if (exc.status in (400, 408) or (exc.status == 413 and waiting)) \
                    and not getattr(request.state, "body_read", False):
                exc.headers["Connection"] = "close"
            return error(exc.status, exc.reason, exc.headers)
        except BaseException:
            job.close()
            raise
        if len(body) <= STREAM_BYTES:
            job.close()
            return Response(body, media_type="application/json")
        return _HeldAnswer(body, job, limits.body_timeout)

    async def http_error(request, exc):
        """The framework's 404 and 405, as the service's JSON."""
        if exc.status_code == 404:
            reason = f"no such path {request.url.path[:80]!r}; the service's: " + \
                     ", ".join(r.path for r in routes)
        elif exc.status_code == 405:
            reason = f"{request.method[:20]} is not served on {request.url.path}; " \
                     f"{(exc.headers or {}).get('Allow', '')} is"
        else:
            reason = str(exc.detail)[:200]
        return error(exc.status_code, reason, exc.headers)

    async def internal_error(request, exc):
        return error(500, "internal error (the server's log says more)")

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
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error,
                                                       Exception: internal_error})
    app.state.metrics = metrics
    app.state.lane = lane
    return metrics_middleware(app, metrics, {r.path for r in routes})


def _json_rows(array, per):
    """JSON text of `array`'s rows, encoded `per` rows at a time: each piece a short hold of
    the GIL, which the event loop's thread waits for (one json.dumps of a 10,000-digit
    answer held it for a second)."""
    pieces = (json.dumps(array[i:i + per].tolist(), separators=(",", ":"))[1:-1]
              for i in range(0, len(array), per))
    return "[" + ",".join(pieces) + "]"


class _HeldAnswer:
    """A large JSON answer sent in pieces (each waits until the client has taken enough of
    the previous ones), given up with its connection if not sent within `seconds`; its
    request's place in the lane is released once it is sent or dropped."""

    def __init__(self, body, job, seconds):
        self.body, self.job, self.seconds = body, job, seconds

    async def __call__(self, scope, receive, send):
        import asyncio

        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self.body)).encode())]})
            view = memoryview(self.body)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.seconds
            for start in range(0, len(view), _PIECE):
                if loop.time() > deadline and _http.ABORT in scope:
                    scope[_http.ABORT]()            # the client takes it too slowly
                    return
                await send({"type": "http.response.body", "body": bytes(view[start:start + _PIECE]),
                            "more_body": start + _PIECE < len(view)})
        finally:
            self.job.close()


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


def _return_freed_memory():
    """glibc only: memory blocks of 256 KB and more (pictures, arrays, bodies) are mapped
    and unmapped on their own, so that what a large request used goes back to the system
    when it is freed; glibc's default raises that threshold up to 32 MB as such blocks
    are freed, and keeps what it frees below it (a server's size would then creep up to
    the largest requests it ever saw, one arena per worker thread)."""
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold, m_arena_max = -3, -8
    mallopt(m_mmap_threshold, 256 * 1024)
    mallopt(m_arena_max, 2)


def _app_from_settings(settings):
    _return_freed_memory()
    model, description = load_served_model(settings["model"], settings["pretrained"])
    model.n_threads = settings["threads"]
    limits = Limits(**settings["limits"])
    _http.configure(limits)        # this process's connections: timeouts, head, cap
    app = create_app(model, description=description, limits=limits)
    # what is loaded by now (modules, the model) leaves the cyclic collector's reach: its
    # full collections, which hold the interpreter's lock, walk only what requests made
    gc.collect()
    gc.freeze()
    # The event loop's thread gives up the lock at every socket call and C call of a request
    # and, while the lane's thread works, waits up to the switch interval to get it back,
    # each time. A one-digit client's slowest request during a 10,000-picture request
    # (2-core VM): 27-272 ms, median 130 ms of 16 rounds at the default 5 ms; 11-273 ms,
    # median 20 ms of 32 rounds at 1 ms.
    sys.setswitchinterval(0.001)
    return app


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
        What one request may hold, and what a connection may take (its timeouts, its
        head, the cap on connections: `lenet_fast.serve._http`).
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
    # uvicorn's protocol with the bounds it leaves out (_http), no WebSockets
    common = dict(host=host, port=port, log_level=log_level, access_log=False,
                  timeout_keep_alive=limits.idle_timeout, timeout_graceful_shutdown=30,
                  lifespan="off", http=_http.GuardedProtocol, ws="none",
                  h11_max_incomplete_event_size=limits.max_header_bytes)
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
