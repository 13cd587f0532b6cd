"""The HTTP service: the draw-a-digit page, predictions, metrics and its OpenAPI document.

The package's documentation is that of its application module (below). Its modules:
``_app`` (the application and the server), ``_metrics`` (the Prometheus metrics),
``_openapi`` (the OpenAPI document) and ``page.html`` (the page).
"""

from . import _app
from ._app import (  # noqa: F401
    BadRequest, Limits, create_app, load_served_model, port_line, run, worker_app,
)

__doc__ = _app.__doc__
__all__ = ["Limits", "BadRequest", "create_app", "load_served_model", "worker_app", "run",
           "port_line"]
