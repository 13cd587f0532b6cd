"""``lenet-fast sweep``: many trainings (settings x seeds) on local processes or Dask."""

from __future__ import annotations

import argparse
import sys

from .._training import recipes
from ._common import (
    PROG,
    CLIError,
    _add_data_options,
    _check_writable,
    _load_split,
    _positive_int,
    _resumable_runs,
    _seeds,
)

#: Settings that `lenet-fast sweep --set` varies or fixes: the train command's, less
#: those the sweep sets itself.
_SWEEP_SETTINGS = tuple(k for k in (*recipes.TRAIN_DEFAULTS, "augment")
                        if k not in ("threads", "seed", "out"))


_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True,
             "false": False, "no": False, "off": False, "0": False}


def _setting_parser(train_parser):
    """The type of ``--set KEY=V1,V2``: (key, [values]), each value checked by the train
    command's own option (its type and choices)."""
    actions = {a.dest: a for a in train_parser._actions if a.dest in _SWEEP_SETTINGS}

    def parse(text):
        key, sep, values = text.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or key not in actions:
            raise argparse.ArgumentTypeError(
                f"expected KEY=V1[,V2...] with KEY one of {', '.join(_SWEEP_SETTINGS)}, "
                f"got {text!r}")
        action = actions[key]
        parsed = []
        for raw in values.split(","):
            raw = raw.strip()
            try:
                if action.nargs == 0:  # an on/off flag (--nesterov / --no-nesterov)
                    value = _BOOLEANS.get(raw.lower())
                    if value is None:
                        raise argparse.ArgumentTypeError(f"must be true or false, got {raw!r}")
                else:
                    value = action.type(raw) if action.type is not None else raw
            except argparse.ArgumentTypeError as exc:
                raise argparse.ArgumentTypeError(f"{key}: {exc}") from None
            if action.choices is not None and value not in action.choices:
                raise argparse.ArgumentTypeError(
                    f"{key}: {raw!r} is not one of {', '.join(map(str, action.choices))}")
            if value not in parsed:
                parsed.append(value)
        return key, parsed
    return parse


HELP = "run many trainings (a grid of settings x seeds) in parallel"
DESCRIPTION = """
Train and evaluate every combination of the --set values for every seed, as 'lenet-fast
train' would (same defaults and code; each run on --threads-per-job threads), several
runs at once in worker processes (joblib, loky) or on a Dask cluster (--scheduler). Each
finished run is appended to --out (JSON Lines: settings, test metrics, history, timings;
one atomic, fsynced line per run). Ends with a table of the test error per configuration
(mean, sample std, min, max over the seeds).
"""
EPILOG = """
Rerunning the same command skips the runs already recorded as finished in --out (a run
is identified by its resolved settings, so after a change of the default recipe they run
again) and runs the others, failed ones included. A run that fails is recorded with its
error and the others go on (exit code 1 at the end). Ctrl-C stops the workers (exit code
130); every finished run is already saved. Example: lenet-fast sweep --seeds 0-5 --set
lr=0.02,0.05 --set variant=modern,lecun98 --jobs 2 --out results.jsonl. Needs joblib
(pip install "lenet-fast[sweep]"); --scheduler needs dask.distributed (pip install
"lenet-fast[cluster]").
"""


def add_arguments(p, parsers):
    """Add ``sweep`` to `sub`; its ``--set`` values are checked by the train parser's options."""
    train_parser = parsers["train"]
    p.add_argument("--seeds", type=_seeds, default=[0], metavar="S",
                   help="seeds, e.g. 0-5 or 0,3,7 (default: 0)")
    p.add_argument("--set", dest="sets", type=_setting_parser(train_parser), action="append",
                   default=[], metavar="KEY=V1[,V2...]",
                   help="a training setting and its values (names as the train options, e.g. "
                        "lr, variant, batch_size, epochs, optimizer, schedule, weight_decay, "
                        "nesterov (true/false), momentum, beta1, beta2, warmup, label_smoothing, "
                        "augment, c3, init); repeat for "
                        "a grid; one value fixes it for every run; settings "
                        "not given take the train command's defaults")
    p.add_argument("--out", metavar="FILE", required=True,
                   help="results file (JSON Lines), appended to; also what a rerun resumes from")
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                   help="runs at once (default: usable cores // --threads-per-job)")
    p.add_argument("--threads-per-job", type=_positive_int, default=1, metavar="T",
                   help="OpenMP threads of each run (default: 1); keep jobs x T <= cores")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on the Dask distributed cluster of this scheduler (e.g. "
                        "tcp://10.0.0.5:8786) instead of local processes; every worker needs "
                        "lenet_fast installed and MNIST in --data-dir (or its own cache)")
    _add_data_options(p, train_limit=True)
    p.add_argument("--no-epoch-eval", action="store_true",
                   help="do not evaluate on the test set (or the --holdout) after every epoch")
    p.add_argument("--holdout", type=_positive_int, default=None, metavar="N",
                   help="search on a validation set: hold out the last N training digits "
                        "(e.g. 10000), train on the others and evaluate on those N; the test "
                        "set is not read (not with --test-limit)")


def run(args):
    from .._training import sweep

    sets = {}
    for key, values in args.sets:
        if key in sets:
            raise CLIError(f"--set {key} is given twice; give all its values at once "
                           f"(--set {key}=A,B)", code=2)
        sets[key] = values
    if args.jobs is not None and args.scheduler is not None:
        raise CLIError("--jobs applies to local runs; with --scheduler the cluster's workers "
                       "decide", code=2)
    try:
        if args.scheduler is None:
            sweep._import_joblib()
        else:
            import distributed  # noqa: F401
    except ImportError:
        raise CLIError(sweep.SWEEP_MISSING if args.scheduler is None
                       else sweep.CLUSTER_MISSING) from None
    if args.holdout is not None and args.test_limit is not None:
        raise CLIError("--test-limit limits the test set, which --holdout does not read", code=2)
    _check_writable(args.out, "results file")
    fixed = {"train_limit": args.train_limit, "test_limit": args.test_limit,
             "data_dir": args.data_dir, "download": not args.no_download,
             "epoch_eval": not args.no_epoch_eval}
    if args.holdout is not None:
        fixed["holdout"] = args.holdout
    grid = sweep.make_grid(sets, args.seeds, fixed)
    if args.scheduler is None:  # fetch MNIST once here, not in every worker
        for split in ("train",) if args.holdout else ("train", "test"):
            _load_split(split, args.data_dir, download=not args.no_download,
                        progress=sys.stderr.isatty())
        cores = sweep.default_jobs(1)
        jobs = args.jobs or sweep.default_jobs(args.threads_per_job)
        if jobs * args.threads_per_job > cores:
            print(f"{PROG}: warning: {jobs} job(s) x {args.threads_per_job} thread(s) is more "
                  f"than the {cores} usable core(s); OpenMP threads that wait for each other "
                  "slow down many times over", file=sys.stderr)
    with _resumable_runs(args.out, f"cannot write the results file {args.out}"):
        records = sweep.run_sweep(grid, args.out, jobs=args.jobs,
                                  threads_per_job=args.threads_per_job,
                                  scheduler=args.scheduler, echo=print)
    columns = [key for key, values in sets.items() if len(values) > 1]
    fixed_text = ", ".join(f"{key}={values[0]}" for key, values in sets.items()
                           if len(values) == 1)
    where = ("test" if args.holdout is None else
             f"validation (the last {args.holdout:,} training digits held out)")
    print()
    print(f"{where} error over seeds {_seed_text(args.seeds)}"
          + (f" ({fixed_text})" if fixed_text else "") + ":")
    print(sweep.format_table(sweep.summarize(grid, records, columns), columns,
                             "test" if args.holdout is None else "validation"))
    failed = sum(1 for r in records if r is not None and r.get("status") != "ok")
    if failed:
        print(f"{PROG}: {failed} run(s) failed; their errors are in {args.out}", file=sys.stderr)
        return 1
    return 0


def _seed_text(seeds):
    from .._training.sweep import format_seeds
    return format_seeds(seeds)

