# lenet_fast.metrics, public: accuracy, error and the confusion matrix of a model. Its
# text is that of the module that holds the code, handed on with its names.
from ._training.metrics import (  # noqa: F401
    __doc__, evaluate, format_report,
)

__all__ = [
    "evaluate", "format_report",
]
