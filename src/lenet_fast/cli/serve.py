"""``lenet-fast serve``: digit recognition over HTTP, with a draw-a-digit page."""

from __future__ import annotations

from ._common import (
    CLIError,
    _load_model,
    _load_pretrained,
    _number,
    _positive_float,
    _positive_int,
    _pretrained_names,
    _thread_count,
)

HELP = "serve digit recognition over HTTP, with a draw-a-digit page"
DESCRIPTION = """
Serve a model over HTTP (Starlette on uvicorn; needs pip install "lenet-fast[serve]"):
POST /v1/predict (PNG, JPEG, multipart files, JSON or .npy digits), GET / (a page to
draw a digit), /healthz, /metrics (Prometheus), /openapi.json. SIGTERM finishes the
requests in flight, then exits 0. See lenet_fast.serve.
"""


def add_arguments(p, parsers):
    """The options of ``serve``."""
    p.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help="model file (.npz or .safetensors); default: the pretrained model")
    p.add_argument("--pretrained", choices=_pretrained_names(), default="modern",
                   help="the pretrained model served without a MODEL (default: modern)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_number(int, "a port number 0..65535", lambda v: 0 <= v <= 65535),
                   default=8000, help="port (default: 8000; 0: any free port)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="worker processes (default: 1; more are started by uvicorn with the "
                        "spawn method)")
    p.add_argument("--threads", type=_thread_count, default=None, metavar="T",
                   help="OpenMP threads per worker (default: OMP_NUM_THREADS, else all cores)")
    p.add_argument("--max-body-mb", type=_positive_float, default=16.0, metavar="MB",
                   help="largest request body in MiB (default: 16)")
    p.add_argument("--max-images", type=_positive_int, default=10_000, metavar="N",
                   help="most digits in one request (default: 10000)")
    p.add_argument("--body-timeout", type=_positive_float, default=10.0, metavar="S",
                   help="seconds a request's body may take to arrive (default: 10; then 408)")
    p.add_argument("--header-timeout", type=_positive_float, default=10.0, metavar="S",
                   help="seconds a request's head (request line and headers) may take to "
                        "arrive once it has begun (default: 10; then 408 and the connection "
                        "is closed)")
    p.add_argument("--idle-timeout", type=_positive_float, default=5.0, metavar="S",
                   help="seconds a connection may stay silent with no request in flight, and "
                        "a client may take no byte of its answer, before the connection is "
                        "closed (default: 5)")
    p.add_argument("--max-header-kb", type=_positive_float, default=16.0, metavar="KB",
                   help="largest request head in KiB (default: 16; then 431 and the connection "
                        "is closed)")
    p.add_argument("--max-connections", type=_positive_int, default=None, metavar="N",
                   help="most connections open at once; at the limit the one quiet the longest "
                        "is closed (default: the open-file limit, ulimit -n, less 64, at most "
                        "4096)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])


def run(args):
    try:
        import python_multipart  # noqa: F401
        import PIL  # noqa: F401
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        from ..serve import _app as serve
    except ImportError:
        raise CLIError('lenet-fast serve needs its extra: pip install "lenet-fast[serve]"') from None
    if args.model is not None:
        _load_model(args.model)       # a clear error before the server starts
    else:
        _load_pretrained(args.pretrained)
    limits = serve.Limits(max_body_bytes=int(args.max_body_mb * 2**20), max_images=args.max_images,
                          body_timeout=args.body_timeout, header_timeout=args.header_timeout,
                          idle_timeout=args.idle_timeout,
                          max_header_bytes=int(args.max_header_kb * 2**10),
                          max_connections=args.max_connections)

    def ready(port):
        print(serve.port_line(port), flush=True)

    return serve.run(model=args.model, pretrained=args.pretrained, host=args.host, port=args.port,
                     workers=args.workers, threads=args.threads, limits=limits,
                     log_level=args.log_level, ready=ready)
