"""The reproduction of the paper's figures: the plan, its runs, its page.

The package's documentation is that of its runner module (below). Its modules: ``_run``
(the plan and the runs), `lenet_fast.reproduce.summary` (the runs summarized beside the
paper's numbers) and `lenet_fast.reproduce.page` (the figures, the markdown and the HTML
page).
"""

from . import _run
from ._run import (  # noqa: F401
    COST, FIGURES, MARKDOWN, PAGE, PROFILES, RESULTS, SUMMARY, VOLATILE_KEYS, ReproduceError,
    check_out_dir, command_line, estimate_seconds, make_plan, measured_step_seconds,
    parse_figures, run_cost, run_reproduce,
)

__doc__ = _run.__doc__
__all__ = ["FIGURES", "PROFILES", "COST", "RESULTS", "SUMMARY", "MARKDOWN", "PAGE",
           "VOLATILE_KEYS", "ReproduceError", "parse_figures",
           "make_plan", "run_cost", "estimate_seconds", "measured_step_seconds",
           "check_out_dir", "run_reproduce", "command_line"]
