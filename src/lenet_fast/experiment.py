# lenet_fast.experiment, public: one training run as a function. Its text is that of the
# module that holds the code, handed on with its names.
from ._training.experiment import (  # noqa: F401
    __doc__, RUN_OPTIONS, EXTRA_OPTIONS, HOLDOUT_KEYS, TIMING_KEYS, build, fit_and_evaluate,
    summary, settings_of, weights_digest, run, error_of, peak_rss_mb,
)

__all__ = [
    "RUN_OPTIONS", "EXTRA_OPTIONS", "HOLDOUT_KEYS", "TIMING_KEYS", "build",
    "fit_and_evaluate", "summary", "settings_of", "weights_digest", "run", "error_of",
    "peak_rss_mb",
]
