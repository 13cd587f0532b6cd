"""The Prometheus metrics of `lenet-fast serve` (`lenet_fast.serve`): requests, errors,
latency, digits per pass and the large requests in their lane, one registry per app,
shared across workers with ``PROMETHEUS_MULTIPROC_DIR``."""

from __future__ import annotations

import os
import time


class ServeMetrics:
    """The service's Prometheus metrics, in a registry of its own (several apps may live in
    one process); with ``PROMETHEUS_MULTIPROC_DIR`` set, those of all workers."""

    def __init__(self):
        import prometheus_client as pc

        self.pc = pc
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = pc.CollectorRegistry()
        kw = {"registry": self.registry}
        self.requests = pc.Counter("lenet_fast_requests", "HTTP requests by path and status",
                                   ["path", "status"], **kw)
        self.errors = pc.Counter("lenet_fast_request_errors",
                                 "Requests answered with a 4xx or 5xx, by path and status",
                                 ["path", "status"], **kw)
        self.latency = pc.Histogram(
            "lenet_fast_request_seconds", "Time from request to response, by path", ["path"],
            buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10), **kw)
        self.digits = pc.Histogram(
            "lenet_fast_digits_per_pass", "Digits per batched forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10_000), **kw)
        gauge = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.large = pc.Gauge("lenet_fast_large_requests",
                              "Large requests holding a place in their lane (at work or waiting)",
                              **gauge, **kw)

    def exposition(self):
        """The metrics in Prometheus' text format: (body bytes, content type)."""
        registry = self.registry
        if self.multiprocess:
            from prometheus_client import multiprocess
            registry = self.pc.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return self.pc.generate_latest(registry), self.pc.CONTENT_TYPE_LATEST


def metrics_middleware(app, metrics, paths):
    """Pure ASGI middleware counting every HTTP response (status, latency) by path.

    Parameters
    ----------
    app : ASGI application
        The service.
    metrics : ServeMetrics
        Where the counts go.
    paths : set of str
        The service's paths; any other path is counted as "other".

    Returns
    -------
    ASGI application
        `app` wrapped.
    """
    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        start = time.perf_counter()
        path = scope.get("path", "")
        label = path if path in paths else "other"
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            code = str(status[0])
            metrics.requests.labels(label, code).inc()
            if status[0] >= 400:
                metrics.errors.labels(label, code).inc()
            metrics.latency.labels(label).observe(time.perf_counter() - start)
    return wrapped
