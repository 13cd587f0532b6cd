"""``lenet-fast evaluate``: a saved model's accuracy, per-class accuracy and confusion matrix."""

from __future__ import annotations

import sys

from .._omp import built_with_openmp
from .._version import __version__
from .._io import datasets
from ._common import (
    _check_writable,
    _load_model,
    _load_split,
    _positive_int,
    _resolve_threads,
    _thread_count,
    _write_metrics,
)

PAPER_LECUN98 = "LeCun et al. 1998 report 0.95% test error for LeNet-5 (0.8% with distortions)"


HELP = "evaluate a saved model on the MNIST test set"
DESCRIPTION = """
Evaluate a saved model (or a training checkpoint) on the MNIST test set: accuracy,
error, loss, per-class accuracy and the confusion matrix. For a lecun98 model the
paper's figure is printed beside ours.
"""


def add_arguments(p, parsers):
    """The options of ``evaluate``."""
    p.add_argument("model", metavar="MODEL", help="model file (.npz) written by 'train'")
    p.add_argument("--data-dir", metavar="D", default=None,
                   help=f"folder with the MNIST IDX files (default: ${datasets.ENV_VAR}, "
                        "else ~/.cache/lenet_fast/mnist)")
    p.add_argument("--no-download", action="store_true",
                   help="fail instead of downloading missing MNIST files")
    p.add_argument("--threads", type=_thread_count, default=None, metavar="T",
                   help="OpenMP threads (default: OMP_NUM_THREADS, else all cores)")
    p.add_argument("--metrics-json", metavar="FILE", default=None,
                   help="also write the metrics and the model's configuration to this JSON file")
    p.add_argument("--test-limit", type=_positive_int, default=None, metavar="N",
                   help="for quick trials: evaluate on the first N test images only")



def run(args):
    from .._training.metrics import evaluate, format_report

    if args.metrics_json is not None:
        _check_writable(args.metrics_json, "metrics JSON")
    model = _load_model(args.model)
    model.n_threads = args.threads
    test = _load_split("test", args.data_dir, download=not args.no_download,
                       progress=sys.stderr.isatty(), limit=args.test_limit)
    metrics = evaluate(model, *test)
    print(f"model {args.model}: {model.variant}, c3={model.c3}, "
          f"{model.num_parameters():,} parameters")
    print(format_report(metrics))
    print()
    print(f"this model: {metrics['error'] * 100:.2f}% test error ({metrics['n']:,} images)")
    if model.variant == "lecun98":
        print(PAPER_LECUN98)
    if args.metrics_json is not None:
        report = dict(metrics)
        report.update(model.config())
        report.update({"command": "evaluate", "model_path": args.model,
                       "threads": _resolve_threads(args.threads),
                       "version": __version__, "openmp": built_with_openmp()})
        _write_metrics(args.metrics_json, report)
    return 0


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------
