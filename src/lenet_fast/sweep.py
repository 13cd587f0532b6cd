"""Many training runs: a grid of settings and seeds.

The module's documentation is that of the code it hands on (below).
"""

from ._training import sweep as _home
from ._training.sweep import (  # noqa: F401
    SWEEP_MISSING, CLUSTER_MISSING, NOT_IN_KEY, SweepError, parse_seeds, format_seeds,
    make_grid, run_key, ResultsFile, run_safely, default_jobs, run_sweep, summarize,
    format_table,
)

__doc__ = _home.__doc__
__all__ = [
    "SWEEP_MISSING", "CLUSTER_MISSING", "NOT_IN_KEY", "SweepError", "parse_seeds",
    "format_seeds", "make_grid", "run_key", "ResultsFile", "run_safely", "default_jobs",
    "run_sweep", "summarize", "format_table",
]
