# lenet_fast.sweep, public: many training runs: a grid of settings and seeds. Its text
# is that of the module that holds the code, handed on with its names.
from ._training.sweep import (  # noqa: F401
    __doc__, SWEEP_MISSING, CLUSTER_MISSING, NOT_IN_KEY, SweepError, parse_seeds,
    format_seeds, make_grid, run_key, ResultsFile, run_safely, default_jobs, run_sweep,
    summarize, format_table,
)

__all__ = [
    "SWEEP_MISSING", "CLUSTER_MISSING", "NOT_IN_KEY", "SweepError", "parse_seeds",
    "format_seeds", "make_grid", "run_key", "ResultsFile", "run_safely", "default_jobs",
    "run_sweep", "summarize", "format_table",
]
