"""The HTTP service: the draw-a-digit page, predictions, metrics and its OpenAPI document.

The package's documentation is that of its application module (below). Its modules:
``_app`` (the application and the server), ``_input`` (reading a request's digits),
``_limits`` (`Limits`, `BadRequest`), ``_lane`` (the lane of large requests), ``_http``
(uvicorn's protocol with the bounds it leaves out), ``_metrics`` (the Prometheus
metrics), ``_openapi`` (the OpenAPI document) and ``page.html`` (the page).
"""

from . import _app
from ._app import (  # noqa: F401
    INLINE_BYTES, INLINE_DIGITS, INLINE_PIXELS, MAX_FEATURE_DIGITS, BadRequest, Limits,
    create_app, load_served_model, port_line, read_digits, run, worker_app,
)

__doc__ = _app.__doc__
__all__ = ["Limits", "BadRequest", "read_digits", "create_app", "load_served_model",
           "worker_app", "run", "port_line", "INLINE_BYTES", "INLINE_DIGITS", "INLINE_PIXELS",
           "MAX_FEATURE_DIGITS"]
