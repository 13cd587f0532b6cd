"""``lenet-fast reproduce``: LeCun et al. 1998's LeNet-5 experiments over many seeds."""

from __future__ import annotations

import argparse
import os
import sys

from .._io import datasets
from ._common import (
    PROG,
    CLIError,
    _add_data_options,
    _one_line,
    _positive_int,
    _resumable_runs,
    _seeds,
)

HELP = "LeCun et al. 1998's LeNet-5 experiments (Figs. 5, 6, 8, 9) over many seeds"
DESCRIPTION = """
Train the paper's network with the paper's optimizer (lecun98, SDLM, 20 passes) over
many seeds, with and without distortions (drawn on the fly, and the paper's fixed set of
540,000 distorted copies), and on smaller training sets, on local worker processes or a
Dask cluster; then write DIR/reproduce.html (one self-contained page: Fig. 5 error per
pass, Fig. 6 error against the training-set size, Fig. 8 the misclassified digits, Fig.
9 mean, std and 95% intervals beside the paper's 0.95% and 0.8%, the departures from the
paper), DIR/summary.json and DIR/summary.md. Every run is one line of DIR/results.jsonl.
"""
EPILOG = """
Rerunning the same command skips the runs finished in DIR/results.jsonl and runs the
others (Ctrl-C loses no finished run). The full run takes about 40 minutes on 2 cores
(--dry-run prints the plan and the estimate); --quick a few. Needs joblib and matplotlib
(pip install "lenet-fast[sweep,plot]"); --scheduler needs dask.distributed
("lenet-fast[cluster]").
"""


def add_arguments(p, parsers):
    """The options of ``reproduce``."""
    from ..reproduce._run import FIGURES, PROFILES

    def figures(text):
        from ..reproduce._run import parse_figures
        try:
            return parse_figures(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    p.add_argument("--figures", type=figures, default=list(FIGURES), metavar="F",
                   help="which figures, e.g. 5,9 (default: all of "
                        f"{','.join(map(str, FIGURES))})")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="S",
                   help=f"seeds of Figs. 5, 8, 9, e.g. 0-9 (default: {PROFILES['full']['seeds']}; "
                        f"--quick: {PROFILES['quick']['seeds']}); Fig. 6 takes the first "
                        f"{PROFILES['full']['fig6_seeds']}, the fixed set of copies the first "
                        f"{PROFILES['full']['fixed_seeds']}")
    p.add_argument("--quick", dest="profile", action="store_const", const="quick",
                   default="full",
                   help=f"fewer seeds and passes ({PROFILES['quick']['passes']}), smaller Fig. 6 "
                        "sets: a few minutes")
    p.add_argument("--profile", choices=list(PROFILES), help=argparse.SUPPRESS)  # tests: tiny
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                   help="runs at once, one thread each (default: the usable cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on the Dask cluster of this scheduler (workers with one thread "
                        "each; lenet_fast and MNIST in --data-dir on every worker)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="folder of the results (results.jsonl, summary.json, summary.md, "
                        "reproduce.html); a rerun resumes from it")
    p.add_argument("--dry-run", action="store_true",
                   help="print the runs and the time estimate, run nothing")
    _add_data_options(p, train_limit=False, test_limit=False)


def run(args):
    from ..reproduce import _run as reproduce
    from .._training import sweep

    if args.jobs is not None and args.scheduler is not None:
        raise CLIError("--jobs applies to local runs; with --scheduler the cluster's workers "
                       "decide", code=2)
    try:
        plan = reproduce.make_plan(args.figures, args.seeds, args.profile,
                                   data_dir=args.data_dir, download=not args.no_download)
    except ValueError as exc:
        raise CLIError(_one_line(exc), code=2) from None
    if args.dry_run:
        jobs = args.jobs or sweep.default_jobs(1)
        for run in plan["runs"]:
            size = run["config"]["train_limit"] or 60000
            print(f"{run['group']:6} seed {run['seed']:<3} {size:>6,} digits, distortions "
                  f"{run['augment']}: ~{reproduce.run_cost(run['config']) / 60:.1f} min")
        print(f"{len(plan['runs'])} runs; about "
              f"{reproduce.estimate_seconds(plan['runs'], jobs) / 60:.0f} min on {jobs} job(s) "
              "at this project's machine's measured speed (before any is finished)")
        return 0
    try:
        if args.scheduler is None:
            sweep._import_joblib()
        else:
            import distributed  # noqa: F401
        from .._figures.plot import require
        require()
    except ImportError as exc:
        raise CLIError(sweep.CLUSTER_MISSING if args.scheduler is not None and
                       "distributed" in str(exc) else _one_line(exc)) from None
    results = os.path.join(args.out, reproduce.RESULTS)
    try:
        with _resumable_runs(results, f"cannot write in {args.out}"):
            summary = reproduce.run_reproduce(
                args.out, figures=args.figures, seeds=args.seeds, profile=args.profile,
                jobs=args.jobs, scheduler=args.scheduler, data_dir=args.data_dir,
                download=not args.no_download, echo=print, command=reproduce.command_line())
    except reproduce.ReproduceError as exc:
        raise CLIError(_one_line(exc)) from None
    except (datasets.DataNotFoundError, datasets.DataFormatError) as exc:
        raise CLIError(_one_line(exc)) from None
    print()
    print(reproduce.format_markdown(summary), end="")
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"page: {os.path.join(args.out, reproduce.PAGE)}; summary: "
          f"{os.path.join(args.out, reproduce.SUMMARY)}")
    if summary["runs"]["failed"] or summary["runs"]["missing"]:
        print(f"{PROG}: {summary['runs']['failed']} run(s) failed; their errors are in "
              f"{results}", file=sys.stderr)
        return 1
    return 0
