"""The scikit-learn estimator.

The module's documentation is that of the code it hands on (below).
"""

from ._interop import sklearn as _home
from ._interop.sklearn import (  # noqa: F401
    LeNet5Classifier, EXPECTED_FAILED_CHECKS, expected_failed_checks,
)

__doc__ = _home.__doc__
__all__ = [
    "LeNet5Classifier", "EXPECTED_FAILED_CHECKS", "expected_failed_checks",
]
