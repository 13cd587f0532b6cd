"""Accuracy, error and the confusion matrix of a model.

The module's documentation is that of the code it hands on (below).
"""

from ._training import metrics as _home
from ._training.metrics import (  # noqa: F401
    evaluate, format_report,
)

__doc__ = _home.__doc__
__all__ = [
    "evaluate", "format_report",
]
