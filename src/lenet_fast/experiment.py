"""One training run as a function.

The module's documentation is that of the code it hands on (below).
"""

from ._training import experiment as _home
from ._training.experiment import (  # noqa: F401
    RUN_OPTIONS, EXTRA_OPTIONS, TIMING_KEYS, build, fit_and_evaluate, summary,
    settings_of, weights_digest, run, peak_rss_mb,
)

__doc__ = _home.__doc__
__all__ = [
    "RUN_OPTIONS", "EXTRA_OPTIONS", "TIMING_KEYS", "build", "fit_and_evaluate",
    "summary", "settings_of", "weights_digest", "run", "peak_rss_mb",
]
