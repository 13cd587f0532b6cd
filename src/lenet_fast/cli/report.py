"""``lenet-fast report``: an HTML page of figures about a trained model."""

from __future__ import annotations

import sys
from pathlib import Path

from .._io.files import atomic_write
from ._common import (
    CLIError,
    _add_data_options,
    _check_writable,
    _load_model,
    _load_split,
    _os_error,
    _positive_int,
)

HELP = "write an HTML page of figures about a trained model"
DESCRIPTION = """
Evaluate a saved model on the MNIST test set and write one self-contained HTML page
(figures inlined as PNG; it opens with no network): the model's configuration, parameter
count and test accuracy beside LeCun et al. 1998's figures, the learning curves (from
the training history saved with the model), the confusion matrix, the most confidently
wrong test digits, the C1 and C3 kernels (C3 laid out as the paper's Table I) and the
feature maps of C1, S2, C3 and S4 for one digit.
"""
EPILOG = """
Needs matplotlib: pip install "lenet-fast[plot]".
"""


def add_arguments(p, parsers):
    """The options of ``report``."""
    p.add_argument("model", metavar="MODEL", help="model file (.npz) written by 'train'")
    p.add_argument("--out", metavar="FILE", default="report.html",
                   help="the HTML file to write (default: report.html)")
    p.add_argument("--errors", type=_positive_int, default=16, metavar="K",
                   help="how many of the most confidently wrong digits to show (default: 16)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="T",
                   help="OpenMP threads (default: OMP_NUM_THREADS, else all cores)")
    _add_data_options(p, train_limit=False)


def run(args):
    from .._figures import plot, report

    try:
        plot.require()
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    _check_writable(args.out, "report")
    model = _load_model(args.model)
    model.n_threads = args.threads
    test = _load_split("test", args.data_dir, download=not args.no_download,
                       progress=sys.stderr.isatty(), limit=args.test_limit)
    page = report.build_html(model, *test, title=f"lenet_fast report: {Path(args.model).name}",
                             errors=args.errors)
    try:
        atomic_write(args.out, lambda f: f.write(page), binary=False, suffix=".html")
    except OSError as exc:
        raise CLIError(f"cannot write the report {args.out}: {_os_error(exc)}") from None
    print(f"report written to {args.out}")
    return 0

