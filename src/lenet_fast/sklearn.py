# lenet_fast.sklearn, public: the scikit-learn estimator. Its text is that of the module
# that holds the code, handed on with its names.
from ._interop.sklearn import (  # noqa: F401
    __doc__, LeNet5Classifier, EXPECTED_FAILED_CHECKS, expected_failed_checks,
)

__all__ = [
    "LeNet5Classifier", "EXPECTED_FAILED_CHECKS", "expected_failed_checks",
]
