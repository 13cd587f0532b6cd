"""The ``lenet-fast`` command: train, evaluate, predict, info, bench, report, sweep,
reproduce, export, serve.

Run ``lenet-fast --help`` (or ``python -m lenet_fast --help``) and
``lenet-fast <command> --help`` for the options. ``main(argv)`` returns the exit
code, so the command can also be driven in-process (tests do).

Exit codes: 0 success; 1 error (missing or bad data, unreadable model or input
file, training diverged, cannot write output); 2 usage error (bad option or
option value, options that conflict with a ``--resume`` checkpoint);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from . import checkpoint, datasets, files, recipes
from ._version import __version__
from .files import atomic_write, open_regular
from .optim import OPTIMIZERS, make_optimizer
from .schedules import SCHEDULES, schedule_from_config
from .tables import INITS
from ._isa import build_info
from ._omp import built_with_openmp, max_threads

PROG = "lenet-fast"

#: Settings a resumed run takes from its checkpoint (and may not change).
_RESUME_INHERITED = ("variant", "c3", "init", "batch_size", "seed", "optimizer", "lr", "schedule",
                     "augment", "weight_decay", "nesterov", "label_smoothing")

PAPER_LECUN98 = "LeCun et al. 1998 report 0.95% test error for LeNet-5 (0.8% with distortions)"

PILLOW_MISSING = 'reading PNG/JPEG needs Pillow: pip install Pillow (or pip install "lenet-fast[images]")'

# First bytes of the input formats `predict` reads.
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_NPY_MAGIC = b"\x93NUMPY"
_GZIP_MAGIC = b"\x1f\x8b"


class CLIError(Exception):
    """An error reported as one ``lenet-fast: error: ...`` line and an exit code."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


class _UsageError(Exception):
    """Raised by the parser instead of printing usage and exiting."""

    def __init__(self, message, prog):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message, self.prog)


def _one_line(message):
    """Collapse a (possibly multi-line) message into one line."""
    text = ""
    for line in str(message).splitlines():
        line = line.strip()
        if line:
            text += (" " if text.endswith((".", ":", ";")) else "; ") + line if text else line
    return text or "unknown error"


def _os_error(exc):
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


# --------------------------------------------------------------------------
# Argument types: each gives a clear message for a bad value
# --------------------------------------------------------------------------


def _number(convert, what, ok):
    """An argparse type: ``convert(text)`` (int or float), finite and ``ok(value)``; else
    an error saying the value must be `what`."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


_positive_int = _number(int, "a positive integer (>= 1)", lambda v: v >= 1)
_non_negative_int = _number(int, "a non-negative integer (>= 0)", lambda v: v >= 0)
_positive_float = _number(float, "a positive finite number (> 0)", lambda v: v > 0)
_non_negative_float = _number(float, "a finite number >= 0", lambda v: v >= 0)
_smoothing = _number(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def _thread_count(text):
    """--threads: a positive integer up to lenet_fast.ops.MAX_THREADS."""
    from .ops import MAX_THREADS
    value = _positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_THREADS}, got {text!r}")
    return value


def _positive_int_list(text):
    """A comma-separated list of positive integers, e.g. '1,2'."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be comma-separated positive integers, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"must be comma-separated positive integers (>= 1), got {text!r}")
        if value not in values:
            values.append(value)
    return values


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def _show(value, none_text):
    return none_text if value is None else value


def _recipe(key):
    """The per-variant default of a training setting, as help text."""
    return ", ".join(f"{recipe[key]} for {v}" for v, recipe in recipes.RECIPES.items())


def _add_train_parser(sub):
    """Add the ``train`` subcommand to `sub` (the subparsers of `build_parser`)."""
    d = recipes.TRAIN_DEFAULTS
    p = sub.add_parser(
        "train", help="train LeNet-5 on MNIST and save the model",
        description="Train LeNet-5 on the MNIST training set (60,000 digits), then evaluate it "
                    "on the test set (10,000 digits; the test set is never trained on, only "
                    "evaluated after every epoch for the learning curves, see --no-epoch-eval) "
                    "and save the model with its training history. Prints the test "
                    "accuracy/error, the time spent in training steps with images/s, and "
                    "where the model was saved.",
        epilog="Ctrl-C stops after the current batch, saves a checkpoint (in --checkpoint-dir "
               "as interrupted.npz, else next to --out as <out>.interrupted.npz) and prints "
               "the command that resumes it; exit code 130. A second Ctrl-C stops at once "
               "without saving. With --resume, --variant, --c3, --init, --batch-size, --seed, "
               "--optimizer, --lr, --schedule, --weight-decay, --nesterov, --label-smoothing and "
               "--augment come from the checkpoint (giving a different "
               "value is an error) and --epochs defaults to the checkpoint's run length. "
               "Resuming to the run's own length gives bit-for-bit the weights of the "
               "uninterrupted run. A larger --epochs extends the run, which only --schedule "
               "constant allows (the other schedules are laid out for the original length): "
               "then the result is the same as a run of that length from the start.")
    p.add_argument("--variant", choices=("modern", "lecun98"), default=argparse.SUPPRESS,
                   help="'modern': ReLU, max pooling, softmax output; 'lecun98': the paper's "
                        "scaled tanh, trainable subsampling and RBF output with the MAP loss "
                        f"(default: {d['variant']})")
    p.add_argument("--c3", choices=("lecun", "full"), default=argparse.SUPPRESS,
                   help="C3 connections: LeCun's table (60 of 96 map pairs) or dense "
                        f"(default: {_recipe('c3')})")
    p.add_argument("--init", choices=INITS, default=argparse.SUPPRESS,
                   help="weight initialisation: 'he'; 'fanin-sqrt', U(+-2.4/sqrt(F)) for fan-in "
                        "F; 'fanin', U(+-2.4/F), the paper's formula as printed (with it the "
                        "paper's SDLM steps saturate the network; see lenet_fast.model); 'auto': "
                        "he for modern, fanin for lecun98, fanin-sqrt with --optimizer sdlm "
                        "(default: auto)")
    p.add_argument("--epochs", type=_positive_int, default=argparse.SUPPRESS, metavar="N",
                   help="passes over the training set; with --resume, the run's total "
                        f"(default: {_recipe('epochs')}; 20 with --optimizer sdlm; with "
                        "--resume, the checkpoint's)")
    p.add_argument("--batch-size", type=_positive_int, default=argparse.SUPPRESS, metavar="B",
                   help=f"images per training step (default: {_recipe('batch_size')}; "
                        "1 with --optimizer sdlm)")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=argparse.SUPPRESS,
                   help="'adam'; 'sgd' with momentum 0.9; or 'sdlm', the paper's stochastic "
                        "diagonal Levenberg-Marquardt (mu 0.02, curvature re-estimated on 500 "
                        "training digits before each epoch, every step of a chunk of steps in "
                        "one compiled call; --variant lecun98 only); its defaults are the "
                        "paper's recipe: 20 epochs at batch size 1 on the lecun98 schedule, "
                        "with the paper's rates x0.4 (--lr 0.0002) and --init fanin-sqrt "
                        "(see lenet_fast.sdlm) "
                        f"(default: {_recipe('optimizer')})")
    p.add_argument("--lr", type=_positive_float, default=argparse.SUPPRESS, metavar="X",
                   help="base (for onecycle: peak) learning rate "
                        f"(default: {_recipe('lr')}; with another --optimizer, its own default: "
                        "1e-3 for adam, 0.01 for sgd, 0.0002 for sdlm)")
    p.add_argument("--schedule", choices=tuple(SCHEDULES),
                   default=argparse.SUPPRESS,
                   help="learning-rate schedule over the whole run: constant; step (divided by "
                        "10 after each third); cosine (decay to 0); onecycle (warm up to --lr "
                        "over 30%%, then anneal); lecun98 (the paper's, by epoch: --lr for "
                        "epochs 1-2, then x0.4 for 3-5, x0.2 for 6-8, x0.1 for 9-12, x0.02 after) "
                        f"(default: {_recipe('schedule')}; lecun98 with --optimizer sdlm)")
    p.add_argument("--weight-decay", type=_non_negative_float, default=argparse.SUPPRESS,
                   metavar="X", help="L2 weight decay of --optimizer sgd or adam "
                                     f"(default: {_recipe('weight_decay')}; 0 with another "
                                     "--optimizer than the recipe's)")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                   help="Nesterov momentum for --optimizer sgd "
                        f"(default: {_recipe('nesterov')}; off with another --optimizer)")
    p.add_argument("--label-smoothing", type=_smoothing, default=argparse.SUPPRESS, metavar="X",
                   help="label smoothing of the modern preset's cross-entropy, in [0, 1): the "
                        "target puts 1-X on the label and X/10 on every class "
                        f"(default: {_recipe('label_smoothing')})")
    p.add_argument("--threads", type=_thread_count, default=argparse.SUPPRESS, metavar="T",
                   help="OpenMP threads for the kernels; results do not depend on it "
                        f"(default: {_show(d['threads'], 'OMP_NUM_THREADS, else all cores')})")
    p.add_argument("--data-dir", metavar="D", default=None,
                   help=f"folder with the MNIST IDX files, raw or .gz (default: ${datasets.ENV_VAR}, "
                        "else ~/.cache/lenet_fast/mnist)")
    p.add_argument("--no-download", action="store_true",
                   help="fail instead of downloading missing MNIST files")
    p.add_argument("--seed", type=_non_negative_int, default=argparse.SUPPRESS, metavar="S",
                   help="seed of the weight initialisation and of the shuffling; the same seed "
                        f"gives the same weights whatever --threads (default: {d['seed']})")
    p.add_argument("--augment", choices=("none", "affine", "elastic"), default=argparse.SUPPRESS,
                   help="random distortions of the training digits, drawn afresh for every "
                        "batch: 'affine', LeCun et al. 1998's planar affine maps (translation "
                        "+-2 px, scaling +-10%%, squeezing +-10%%, horizontal shear +-0.2); "
                        "'elastic', Simard et al. 2003's elastic distortions (sigma 4, alpha "
                        f"16); see lenet_fast.augment (default: {recipes.AUGMENT_DEFAULT})")
    p.add_argument("--out", metavar="FILE", default=argparse.SUPPRESS,
                   help="where to save the trained model (.npz) "
                        f"(default: {_show(d['out'], 'lenet5-<variant>.npz in the current directory')})")
    p.add_argument("--checkpoint-dir", metavar="D", default=None,
                   help="write a resumable checkpoint epoch-NNN.npz there after every epoch "
                        "(and interrupted.npz on Ctrl-C)")
    p.add_argument("--resume", metavar="CKPT", default=None,
                   help="continue the run saved in this checkpoint (epoch-NNN.npz or an "
                        "interrupted.npz)")
    p.add_argument("--metrics-json", metavar="FILE", default=None,
                   help="also write the settings, test metrics, timings and per-epoch history "
                        "to this JSON file")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they go to stderr)")
    p.add_argument("--train-limit", type=_positive_int, default=None, metavar="N",
                   help="for quick trials: train on the first N training images only")
    p.add_argument("--test-limit", type=_positive_int, default=None, metavar="N",
                   help="for quick trials: evaluate on the first N test images only")
    p.add_argument("--no-epoch-eval", action="store_true",
                   help="do not evaluate on the test set after every epoch (by default each "
                        "epoch's test loss and accuracy go into the history saved with the "
                        "model, for the learning curves of 'lenet-fast report')")
    p.set_defaults(func=cmd_train)
    return p


def _add_evaluate_parser(sub):
    """Add the ``evaluate`` subcommand to `sub` (the subparsers of `build_parser`)."""
    p = sub.add_parser(
        "evaluate", help="evaluate a saved model on the MNIST test set",
        description="Evaluate a saved model (or a training checkpoint) on the MNIST test set: "
                    "accuracy, error, loss, per-class accuracy and the confusion matrix. For a "
                    "lecun98 model the paper's figure is printed beside ours.")
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
    p.set_defaults(func=cmd_evaluate)
    return p


def _add_predict_parser(sub):
    """Add the ``predict`` subcommand to `sub` (the subparsers of `build_parser`)."""
    p = sub.add_parser(
        "predict", help="classify digit images with a saved model",
        usage=f"{PROG} predict [options] MODEL INPUT [INPUT ...]\n"
              f"       {PROG} predict [options] --pretrained NAME INPUT [INPUT ...]",
        description="Classify digit images. Prints one line per image: "
                    "'<file>[<index>]<TAB><digit>', with --proba followed by the 10 class "
                    "probabilities (4 decimals, tab-separated, digits 0 to 9).",
        epilog="Inputs (recognised by their content, not their name): MNIST IDX image files, "
               "raw or gzipped (e.g. t10k-images-idx3-ubyte.gz); .npy arrays, either uint8 "
               "grey levels (N, 28, 28) or (28, 28) with 0 = background, 255 = ink, or float32 "
               "(N, 1, 32, 32) already preprocessed (lenet_fast.datasets.preprocess); PNG and "
               "JPEG images if Pillow is installed (pip install Pillow): converted to "
               "greyscale; MNIST digits are white ink on black: a picture whose border is light "
               "(more than half of its border pixels above 127) is taken to be dark ink on a "
               "light background and is inverted. Pictures that are not 28x28 are normalized as MNIST's digits were "
               "made (lenet_fast.pictures.mnist_digit: the ink cropped, scaled to fit 20x20 "
               "keeping its aspect, its centre of mass placed at the centre of 28x28); "
               "--normalize does it to 28x28 pictures too.")
    p.add_argument("inputs", metavar="MODEL INPUT", nargs="+",
                   help="the model file (.npz) written by 'train' (not with --pretrained), then "
                        "IDX, .npy, PNG or JPEG files")
    p.add_argument("--pretrained", choices=_pretrained_names(), default=None,
                   help="use the pretrained model shipped with lenet_fast instead of a MODEL file")
    p.add_argument("--normalize", action="store_true",
                   help="normalize 28x28 PNG/JPEG pictures too (pictures of other sizes always are)")
    p.add_argument("--threads", type=_thread_count, default=None, metavar="T",
                   help="OpenMP threads (default: OMP_NUM_THREADS, else all cores)")
    p.add_argument("--proba", action="store_true",
                   help="also print the 10 class probabilities (modern: softmax of the logits; "
                        "lecun98: softmax of the negated RBF distances)")
    p.set_defaults(func=cmd_predict)
    return p


def _add_info_parser(sub):
    """Add the ``info`` subcommand to `sub` (the subparsers of `build_parser`)."""
    p = sub.add_parser(
        "info", help="show versions, the OpenMP build and where MNIST is looked for",
        description="Show the lenet_fast, Python and numpy versions, whether the kernels were "
                    "built with OpenMP, the default thread count, the compiler flags and "
                    "architecture of the build, whether Pillow is available, and the MNIST "
                    "folder that would be used and whether the data is there.")
    p.add_argument("--data-dir", metavar="D", default=None,
                   help="check this folder instead of the default one")
    p.set_defaults(func=cmd_info)
    return p


def _add_bench_parser(sub):
    """Add the ``bench`` subcommand to `sub` (the subparsers of `build_parser`)."""
    p = sub.add_parser(
        "bench", help="measure training and inference speed (images/s, GFLOP/s), vs PyTorch",
        description="Measure the images/s of training steps (forward + backward + SGD momentum "
                    "update) and of inference, for each batch size and thread count, with the "
                    "achieved GFLOP/s and its share of the practical peak that the command "
                    "measures itself (numpy's float32 matmul, 2048 x 2048, at the row's thread "
                    "count) and of the nominal peak (cores x GHz x FLOP/cycle of the CPU's "
                    "widest vectors). If PyTorch is installed, the same network is timed in "
                    "PyTorch too, and for inference ONNX Runtime and OpenVINO run lenet_fast's "
                    "own ONNX export (uint8 digits in, probabilities out) where installed, "
                    "interleaved round by round. Prints markdown tables.",
        epilog="Install the optional PyTorch as a CPU build, e.g. pip install torch "
               "--index-url https://download.pytorch.org/whl/cpu (plain 'pip install torch' "
               "may fetch a multi-GB CUDA build). "
               "Takes about 1-2 minutes with the defaults; see lenet_fast.bench for the FLOP "
               "count and the protocol.")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write every number, the machine and the versions to this JSON file")
    p.add_argument("--threads", type=_positive_int_list, default=[1, 2], metavar="T[,T...]",
                   help="thread counts to measure (default: 1,2)")
    p.add_argument("--batch-sizes", type=_positive_int_list, default=None,
                   metavar="B[,B...]", help="batch sizes to measure (default: 1,16,64,256)")
    p.add_argument("--variant", choices=("modern", "lecun98"), default="modern",
                   help="lenet_fast preset (default: modern); PyTorch always runs the modern "
                        "network with a dense C3")
    p.add_argument("--c3", choices=("lecun", "full"), default="full",
                   help="lenet_fast's C3 connections (default: full, the same network as PyTorch)")
    p.add_argument("--repeats", type=_positive_int, default=5, metavar="R",
                   help="timed rounds per library and row; medians are reported (default: 5)")
    p.add_argument("--round-time", type=_positive_float, default=0.4, metavar="S",
                   help="seconds of one timed round (default: 0.4)")
    p.add_argument("--retries", type=_non_negative_int, default=2, metavar="N",
                   help="measure a row again, up to N times, while other processes leave it "
                        "fewer free cores than it has threads (default: 2)")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    p.add_argument("--no-runtimes", action="store_true",
                   help="do not time ONNX Runtime and OpenVINO")
    p.add_argument("--isa", metavar="PATHS", default=None,
                   help="run the benchmark once per kernel instruction-set path (all, or a "
                        "comma list of portable, avx2, avx512; each in a child process with "
                        "LENET_FAST_ISA set) and print lenet_fast's images/s per path side by "
                        "side (default: only the path this CPU picks)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--time-to-accuracy", action="store_true",
                      help="instead: train the default recipe (dense C3) in lenet_fast and in "
                           "PyTorch, same initial weights, data order, optimizer and schedule, "
                           "at each --threads count, and print the seconds of training to the "
                           "first epoch at >= 99.0%% test accuracy, the accuracy per epoch and "
                           "the ratio (about 2 minutes; needs MNIST; see "
                           "lenet_fast.time_to_accuracy)")
    mode.add_argument("--busy", action="store_true",
                      help="instead: keep one core busy with a child process and time training "
                           "at 1 and at 2 threads in alternating rounds, lenet_fast and PyTorch, "
                           "for each --batch-sizes (default there: 64,256); prints the 2/1 "
                           "thread ratio (see lenet_fast.busy)")
    p.add_argument("--seed", type=_non_negative_int, default=0, metavar="S",
                   help="--time-to-accuracy: weights and data order of both runs (default: 0)")
    p.add_argument("--data-dir", metavar="D", default=None,
                   help=f"folder with the MNIST IDX files (default: ${datasets.ENV_VAR}, else "
                        "~/.cache/lenet_fast/mnist); nothing is downloaded, random images are "
                        "used when MNIST is absent")
    p.set_defaults(func=cmd_bench)
    return p


def build_parser():
    """The argument parser of the ``lenet-fast`` command."""
    parser = _Parser(
        prog=PROG,
        description="LeNet-5 (LeCun et al. 1998) on MNIST with Cython/OpenMP kernels: "
                    "train, evaluate, predict.",
        epilog=f"Run '{PROG} <command> --help' for a command's options. MNIST is read from "
               f"--data-dir, else ${datasets.ENV_VAR}, else the cache folder "
               "(~/.cache/lenet_fast/mnist); missing files are downloaded there. "
               "Exit codes: 0 ok, 1 error, 2 usage error, 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)

    train_parser = _add_train_parser(sub)
    _add_evaluate_parser(sub)
    _add_predict_parser(sub)
    _add_info_parser(sub)
    _add_bench_parser(sub)
    _add_report_parser(sub)
    _add_sweep_parser(sub, train_parser)
    _add_reproduce_parser(sub)
    _add_export_parser(sub)
    _add_serve_parser(sub)
    return parser


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _load_split(split, data_dir, *, download, progress, limit=None):
    try:
        images, labels = datasets.load_mnist(split, data_dir, download=download, progress=progress)
    except (datasets.DataNotFoundError, datasets.DataFormatError) as exc:
        raise CLIError(_one_line(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot read MNIST {split!r} data: {_os_error(exc)}") from None
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def _load_model(path):
    from .model import load

    try:
        return load(path)
    except FileNotFoundError as exc:
        raise CLIError(str(exc) if exc.filename is None else _os_error(exc)) from None
    except checkpoint.CheckpointError as exc:
        raise CLIError(_one_line(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot read model {path}: {_os_error(exc)}") from None


def _check_writable(path, what):
    """Fail early, before a long run, if `path` cannot be written.

    Creates the file's folder if needed (the later write would too) and probes
    it with a temporary file, which is removed.
    """
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{what} {path} is a directory, expected a file name")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files.check_writable(folder)
    except OSError as exc:
        raise CLIError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def write_json_atomic(path, data):
    """Write `data` as JSON to `path` atomically (`lenet_fast.files.atomic_write`)."""
    def write(f):
        json.dump(data, f, indent=2, sort_keys=True, allow_nan=True)
        f.write("\n")
    atomic_write(path, write, binary=False, suffix=".json")


def _write_metrics(path, data):
    try:
        write_json_atomic(path, data)
    except OSError as exc:
        raise CLIError(f"cannot write metrics JSON {path}: {_os_error(exc)}") from None


def _resolve_threads(threads):
    from .ops import resolve_threads
    return resolve_threads(threads)


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------


def _interrupt_path(out, checkpoint_dir):
    if checkpoint_dir is not None:
        return os.path.join(checkpoint_dir, "interrupted.npz")
    stem = out[:-len(".npz")] if out.endswith(".npz") else out
    return stem + ".interrupted.npz"


def _checkpoint_settings(path):
    """Settings of the run saved in checkpoint `path`, validated, for --resume."""
    try:
        stored, optim_state, schedule_cfg, state = checkpoint.read_training(path)
    except FileNotFoundError as exc:
        raise CLIError(f"cannot resume: {exc if exc.filename is None else _os_error(exc)}") from None
    except checkpoint.CheckpointError as exc:
        raise CLIError(f"cannot resume: {_one_line(exc)}") from None
    except OSError as exc:
        raise CLIError(f"cannot resume from {path}: {_os_error(exc)}") from None
    try:
        name = str(np.asarray(optim_state["name"]))
        base_lr = float(np.asarray(optim_state["base_lr"]))
        make_optimizer(name).load_state_dict(optim_state)  # validates the saved state
        schedule = schedule_from_config(schedule_cfg)
        settings = state["settings"]
        result = {
            "variant": stored.config["variant"],
            "c3": stored.config["c3"],
            "init": stored.config["init"],
            "batch_size": int(settings["batch_size"]),
            "seed": int(settings["seed"]),
            "optimizer": name,
            "lr": base_lr,
            "schedule": schedule.name,
            "epochs": int(settings["epochs"]),
            "epoch": int(state["epoch"]),
            "batch": int(state["batch"]),
            "schedule_config": schedule.to_config(),
            "augment": str(((state.get("augment") or {}).get("config") or {}).get("name", "none")),
            "weight_decay": float(np.asarray(optim_state.get("weight_decay", 0.0))),
            "nesterov": bool(np.asarray(optim_state.get("nesterov", False))),
            "label_smoothing": float(settings.get("label_smoothing", 0.0)),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CLIError(f"cannot resume: {path}: unusable training state ({_one_line(exc)})") from None
    return result


def _train_settings(args):
    """Resolve the run's settings: command line, else the checkpoint (--resume), else defaults."""
    given = {key: getattr(args, key) for key in (*recipes.TRAIN_DEFAULTS, "augment")
             if hasattr(args, key)}
    settings = dict(recipes.TRAIN_DEFAULTS, augment=recipes.AUGMENT_DEFAULT)
    saved = None
    if args.resume is not None:
        saved = _checkpoint_settings(args.resume)
        for key in _RESUME_INHERITED:
            if key in given and given[key] != saved[key]:
                flag = "--" + key.replace("_", "-")
                raise CLIError(f"{flag} {given[key]} conflicts with the checkpoint {args.resume} "
                               f"({saved[key]}); a resumed run keeps the checkpoint's "
                               f"{key.replace('_', ' ')}: drop {flag}", code=2)
            settings[key] = saved[key]
        settings["epochs"] = saved["epochs"]
    settings.update(given)
    if saved is None:
        try:
            settings = recipes.train_settings(given)
        except ValueError as exc:
            raise CLIError(str(exc), code=2) from None
    if settings["label_smoothing"] and settings["variant"] != "modern":
        raise CLIError("--label-smoothing applies to --variant modern (its softmax output) only",
                       code=2)
    if settings["out"] is None:
        settings["out"] = recipes.default_out(settings["variant"])
    if saved is not None:
        if saved["epoch"] >= settings["epochs"]:
            more = (f"give --epochs greater than {saved['epoch']} to train further"
                    if saved["schedule"] == "constant" else
                    f"evaluate its model with '{PROG} evaluate {args.resume}' or start a new run")
            raise CLIError(f"the checkpoint {args.resume} has already completed "
                           f"{saved['epoch']} epoch(s); {more}", code=2)
        if settings["epochs"] > saved["epochs"] and saved["schedule"] != "constant":
            # The schedule is the checkpoint's; past its run's end it stays at its final
            # rate (cosine: 0), so the extra epochs would change little or nothing.
            raise CLIError(f"cannot extend the run in {args.resume} to {settings['epochs']} "
                           f"epochs: its {saved['schedule']} learning-rate schedule was laid out "
                           f"for {saved['epochs']} epoch(s) and ends there; resume with "
                           f"--epochs {saved['epochs']} or start a new run (only runs with "
                           "--schedule constant can be extended)", code=2)
    return settings, saved


def _check_resume_data(path, saved, n_train):
    """A schedule laid out over a known number of steps must match the training set."""
    per_epoch = saved["schedule_config"].get("steps_per_epoch")  # lecun98: by epoch
    if per_epoch is not None and per_epoch != math.ceil(n_train / saved["batch_size"]):
        raise CLIError(f"the checkpoint {path} was trained on a training set of another size "
                       f"(its schedule has {per_epoch} steps per epoch, {n_train:,} images give "
                       f"{math.ceil(n_train / saved['batch_size'])}); resume with the same data "
                       "and --train-limit", code=2)
    total = saved["schedule_config"].get("total_steps")
    if total is None:
        return
    steps = math.ceil(n_train / saved["batch_size"]) * saved["epochs"]
    if steps != total:
        raise CLIError(f"the checkpoint {path} was trained on a training set of another size "
                       f"(its schedule has {total} steps, {n_train:,} images give {steps}); "
                       "resume with the same data and --train-limit", code=2)


def _resume_command(path, settings, args):
    """The exact command line that resumes from checkpoint `path`."""
    parts = [PROG, "train", "--resume", path, "--epochs", str(settings["epochs"]),
             "--out", settings["out"]]
    if args.checkpoint_dir is not None:
        parts += ["--checkpoint-dir", args.checkpoint_dir]
    if args.data_dir is not None:
        parts += ["--data-dir", args.data_dir]
    if args.no_download:
        parts.append("--no-download")
    if settings["threads"] is not None:
        parts += ["--threads", str(settings["threads"])]
    if args.metrics_json is not None:
        parts += ["--metrics-json", args.metrics_json]
    if args.no_progress:
        parts.append("--no-progress")
    if args.train_limit is not None:
        parts += ["--train-limit", str(args.train_limit)]
    if args.test_limit is not None:
        parts += ["--test-limit", str(args.test_limit)]
    return shlex.join(parts)


def _optimizer_options(settings):
    """The recipe's keyword arguments for `make_optimizer` (those its optimizer takes)."""
    try:
        return recipes.optimizer_options(settings)
    except ValueError as exc:
        raise CLIError(str(exc).replace("nesterov", "--nesterov").replace(
            "weight_decay", "--weight-decay"), code=2) from None


def _check_train_outputs(out, args):
    """Fail before training, not after, when an output cannot be written."""
    _check_writable(out, "model file")
    if args.checkpoint_dir is not None:
        _check_writable(Path(args.checkpoint_dir) / "epoch-001.npz", "checkpoint")
    if args.metrics_json is not None:
        _check_writable(args.metrics_json, "metrics JSON")


def _fit(trainer, train, test, s, args):
    """Train and evaluate: (history, metrics), or None after a Ctrl-C that saved a
    checkpoint (the resume command is printed); CLIError for the other failures."""
    from . import experiment
    from .trainer import TrainingDiverged, TrainingInterrupted

    try:
        return experiment.fit_and_evaluate(trainer, train, test, resume=args.resume,
                                           epoch_eval=not args.no_epoch_eval)
    except TrainingInterrupted as exc:
        if exc.checkpoint is None:
            raise CLIError("interrupted; no checkpoint saved", code=130) from None
        print(f"{PROG}: interrupted; checkpoint saved to {exc.checkpoint}; resume with: "
              f"{_resume_command(exc.checkpoint, s, args)}", file=sys.stderr)
        return None
    except TrainingDiverged as exc:
        raise CLIError(_one_line(exc)) from None
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, nothing saved now
        where = (f"; the last epoch checkpoint is {trainer.last_checkpoint}; resume with: "
                 f"{_resume_command(trainer.last_checkpoint, s, args)}"
                 if trainer.last_checkpoint else "")
        raise CLIError(f"interrupted; no checkpoint saved{where}", code=130) from None
    except OSError as exc:  # writing a checkpoint failed
        raise CLIError(f"cannot write checkpoint: {_os_error(exc)}") from None


def _report_train(report, metrics, history, n_train, threads, out, args, wall_start):
    """Print the test metrics, the training speed and where the model went; write the
    --metrics-json file."""
    print(f"test accuracy {metrics['accuracy'] * 100:.2f}%  error {metrics['error'] * 100:.2f}%  "
          f"({metrics['n']:,} test images)")
    print(f"training: {report['train_seconds']:.1f} s in training steps, "
          f"{report['train_images_per_second']:,.0f} images/s "
          f"({len(history)} epoch(s) of {n_train:,} images, {threads} thread(s))")
    print(f"model saved to {out}")
    if args.metrics_json is not None:
        report.update({
            "command": "train",
            "wall_seconds": time.perf_counter() - wall_start,
            "resumed_from": args.resume,
            "model_path": out,
            "version": __version__,
            "openmp": built_with_openmp(),
        })
        _write_metrics(args.metrics_json, report)
        print(f"metrics written to {args.metrics_json}")


def cmd_train(args):
    from . import experiment

    wall_start = time.perf_counter()
    s, saved = _train_settings(args)
    out = s["out"]
    _check_train_outputs(out, args)
    threads = _resolve_threads(s["threads"])
    progress = not args.no_progress

    train = _load_split("train", args.data_dir, download=not args.no_download,
                        progress=progress, limit=args.train_limit)
    test = _load_split("test", args.data_dir, download=not args.no_download,
                       progress=progress, limit=args.test_limit)
    if saved is not None:
        _check_resume_data(args.resume, saved, len(train[0]))

    interrupt_path = _interrupt_path(out, args.checkpoint_dir)
    trainer = experiment.build(s, progress=progress, checkpoint_dir=args.checkpoint_dir,
                               interrupt_path=interrupt_path,
                               optimizer_options=_optimizer_options(s))
    fitted = _fit(trainer, train, test, s, args)
    if fitted is None:
        return 130
    history, metrics = fitted
    try:
        trainer.model.save(out)
    except OSError as exc:
        raise CLIError(f"cannot save the model to {out}: {_os_error(exc)}") from None

    report = experiment.summary(s, trainer, metrics, len(train[0]))
    _report_train(report, metrics, history, len(train[0]), threads, out, args, wall_start)
    return 0


# --------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------


def cmd_evaluate(args):
    from .metrics import evaluate, format_report

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


def _import_pillow():
    try:
        from PIL import Image
    except ImportError:
        raise CLIError(PILLOW_MISSING) from None
    return Image


def _read_npy(path):
    # Memory-mapped: the header's shape is checked against the file's size without
    # reading it, and only an array of an accepted kind is copied into memory.
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path}: not a single .npy array")
    size = datasets.IMAGE_SIZE
    if array.dtype == np.uint8 and array.shape == (size, size):
        return np.array(array[np.newaxis])
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[1:] == (size, size):
        return np.array(array)
    if array.dtype == np.float32 and array.ndim == 4 and array.shape[1:] == (1, 32, 32):
        return np.array(array, order="C")
    raise ValueError(f"{path}: array of {array.dtype} {array.shape}; expected uint8 "
                     f"(N, {size}, {size}) or ({size}, {size}) grey levels, or float32 "
                     "(N, 1, 32, 32) preprocessed images")


def _read_picture(path, normalize):
    from .pictures import decode_picture, mnist_digit

    _import_pillow()
    f, _ = open_regular(path, ValueError, "image file (PNG or JPEG)")
    with f:
        data = f.read()
    try:
        grey = decode_picture(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return mnist_digit(grey, True if normalize else None)[np.newaxis]


def read_images(path, normalize=False):
    """Images from one `predict` input: uint8 (N, 28, 28) or float32 (N, 1, 32, 32).

    The format is recognised by the file's first bytes: PNG, JPEG, .npy, else
    an IDX image file (gzipped or raw). Pictures (PNG, JPEG) go through
    `lenet_fast.pictures.mnist_digit` (normalized unless 28x28 and not `normalize`).
    """
    f, _ = open_regular(path, ValueError, "image file (IDX, .npy, PNG or JPEG)")
    with f:
        head = f.read(8)
    if head.startswith(_PNG_MAGIC) or head.startswith(_JPEG_MAGIC):
        return _read_picture(path, normalize)
    if head.startswith(_NPY_MAGIC):
        return _read_npy(path)
    if not head.startswith(_GZIP_MAGIC):
        suffix = Path(path).suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg"):
            raise ValueError(f"{path}: not a {suffix[1:].upper()} file")
        if suffix == ".npy":
            raise ValueError(f"{path}: not a .npy file")
    return datasets.read_idx(path, "images")


def _pretrained_names():
    from .zoo import NAMES
    return NAMES


def _load_pretrained(name):
    from .zoo import pretrained

    try:
        return pretrained(name)
    except (checkpoint.CheckpointError, FileNotFoundError) as exc:
        raise CLIError(_one_line(exc)) from None


def cmd_predict(args):
    inputs = list(args.inputs)
    if args.pretrained is not None:
        model = _load_pretrained(args.pretrained)
    elif len(inputs) < 2:
        raise CLIError("give a MODEL file and at least one INPUT, or --pretrained NAME and the "
                       "INPUTs", code=2)
    else:
        model = _load_model(inputs.pop(0))
    model.n_threads = args.threads
    batches = []
    for path in inputs:
        try:
            batches.append((path, read_images(path, args.normalize)))
        except CLIError:
            raise
        except OSError as exc:
            message = _os_error(exc) if exc.filename is not None else f"{path}: {exc}"
            raise CLIError(f"cannot read {message}") from None
        except (ValueError, TypeError) as exc:  # includes DataFormatError
            raise CLIError(_one_line(exc)) from None
    for path, images in batches:
        if args.proba:
            proba = model.predict_proba(images)
            digits = proba.argmax(axis=1)
        else:
            digits = model.predict(images)
        lines = []
        for i, digit in enumerate(digits):
            line = f"{path}[{i}]\t{int(digit)}"
            if args.proba:
                line += "\t" + "\t".join(f"{p:.4f}" for p in proba[i])
            lines.append(line)
        if lines:
            print("\n".join(lines))
    return 0


# --------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------


def _mnist_status(folder):
    names = [name for pair in datasets.SPLITS.values() for name in pair]
    missing = [name for name in names
               if not ((folder / name).is_file() or (folder / f"{name}.gz").is_file())]
    if not missing:
        return "present (all 4 IDX files)"
    if len(missing) == len(names):
        return "not present (will be downloaded on first use)"
    return f"incomplete, missing: {', '.join(missing)}"


def cmd_info(args):
    try:
        import PIL
        pillow = f"yes ({PIL.__version__})"
    except ImportError:
        pillow = "no (predict cannot read PNG/JPEG; pip install Pillow)"
    info = build_info()
    if args.data_dir is not None:
        folder, source = Path(args.data_dir).expanduser(), "--data-dir"
    else:
        folder = datasets.default_data_dir()
        source = f"${datasets.ENV_VAR}" if os.environ.get(datasets.ENV_VAR) else "default cache folder"
    rows = [
        ("lenet_fast", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("numpy", np.__version__),
        ("openmp", "on" if built_with_openmp() else "off (serial build)"),
        ("default threads", str(max(1, max_threads()))),
        ("kernel path", f"{info['isa']} ({info['lanes']} float lanes; LENET_FAST_ISA="
                         f"{info['isa_requested']})"),
        ("paths built", ", ".join(info["isa_built"])),
        ("cpu runs", ", ".join(info["isa_supported"]) or "none"),
        ("compile flags", info.get("compile_flags", "")),
        ("pillow", pillow),
        ("mnist folder", f"{folder} ({source})"),
        ("mnist data", _mnist_status(folder)),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}} {value}")
    return 0


# --------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------


def cmd_bench(args):
    from . import bench

    if args.json is not None:
        _check_writable(args.json, "benchmark JSON")
    args.batch_sizes_given = args.batch_sizes is not None
    if args.batch_sizes is None:
        args.batch_sizes = [1, 16, 64, 256]
    progress = bench.stderr_progress if sys.stderr.isatty() else None
    try:
        if args.time_to_accuracy:
            from . import time_to_accuracy as mode
            result = mode.run(seed=args.seed, threads=args.threads, use_torch=not args.no_torch,
                              data_dir=args.data_dir, progress=progress)
        elif args.busy:
            from . import busy as mode
            sizes = args.batch_sizes if args.batch_sizes_given else [64, 256]
            result = mode.run(batch_sizes=sizes, threads=max(2, max(args.threads)), c3=args.c3,
                              rounds=args.repeats, round_time=max(args.round_time, 0.5),
                              use_torch=not args.no_torch, data_dir=args.data_dir,
                              progress=progress)
        elif args.isa is not None:
            mode = bench
            result = bench.run_isa_paths(
                bench.isa_paths(args.isa), variant=args.variant, c3=args.c3,
                batch_sizes=args.batch_sizes, threads=args.threads, repeats=args.repeats,
                round_time=args.round_time, data_dir=args.data_dir, retries=args.retries,
                progress=progress)
        else:
            mode = bench
            result = bench.run(variant=args.variant, c3=args.c3, batch_sizes=args.batch_sizes,
                               threads=args.threads, repeats=args.repeats,
                               round_time=args.round_time, use_torch=not args.no_torch,
                               use_runtimes=not args.no_runtimes, data_dir=args.data_dir,
                               retries=args.retries, progress=progress)
    except (bench.BenchError, ValueError) as exc:
        raise CLIError(_one_line(exc)) from None
    except (datasets.DataNotFoundError, datasets.DataFormatError) as exc:
        raise CLIError(_one_line(exc)) from None
    print(mode.format_markdown(result))
    if args.json is not None:
        try:
            write_json_atomic(args.json, result)
        except OSError as exc:
            raise CLIError(f"cannot write benchmark JSON {args.json}: {_os_error(exc)}") from None
        print(f"results written to {args.json}")
    return 0


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def _add_data_options(p, *, train_limit, test_limit=True):
    """--data-dir, --no-download, [--train-limit,] [--test-limit] (report, sweep, reproduce)."""
    p.add_argument("--data-dir", metavar="D", default=None,
                   help=f"folder with the MNIST IDX files (default: ${datasets.ENV_VAR}, "
                        "else ~/.cache/lenet_fast/mnist)")
    p.add_argument("--no-download", action="store_true",
                   help="fail instead of downloading missing MNIST files")
    if train_limit:
        p.add_argument("--train-limit", type=_positive_int, default=None, metavar="N",
                       help="for quick trials: train on the first N training images only")
    if test_limit:
        p.add_argument("--test-limit", type=_positive_int, default=None, metavar="N",
                       help="for quick trials: evaluate on the first N test images only")


def _add_report_parser(sub):
    p = sub.add_parser(
        "report", help="write an HTML page of figures about a trained model",
        description="Evaluate a saved model on the MNIST test set and write one self-contained "
                    "HTML page (figures inlined as PNG; it opens with no network): the model's "
                    "configuration, parameter count and test accuracy beside LeCun et al. "
                    "1998's figures, the learning curves (from the training history saved "
                    "with the model), the confusion matrix, the most confidently wrong test "
                    "digits, the C1 and C3 kernels (C3 laid out as the paper's Table I) and "
                    "the feature maps of C1, S2, C3 and S4 for one digit.",
        epilog='Needs matplotlib: pip install "lenet-fast[plot]".')
    p.add_argument("model", metavar="MODEL", help="model file (.npz) written by 'train'")
    p.add_argument("--out", metavar="FILE", default="report.html",
                   help="the HTML file to write (default: report.html)")
    p.add_argument("--errors", type=_positive_int, default=16, metavar="K",
                   help="how many of the most confidently wrong digits to show (default: 16)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="T",
                   help="OpenMP threads (default: OMP_NUM_THREADS, else all cores)")
    _add_data_options(p, train_limit=False)
    p.set_defaults(func=cmd_report)


def cmd_report(args):
    from . import plot, report

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


# --------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------

#: Output formats of ``lenet-fast export``, by the output file's extension.
EXPORT_FORMATS = {".onnx": "onnx", ".safetensors": "safetensors", ".npz": "npz"}


def _add_export_parser(sub):
    from .onnx_export import OPSET

    p = sub.add_parser(
        "export", help="convert a saved model to ONNX, safetensors or npz",
        description="Write a saved model (.npz or .safetensors, or a training checkpoint) in "
                    f"the format named by OUT's extension: .onnx, an ONNX graph (opset {OPSET}, "
                    "dynamic batch) that onnxruntime and other runtimes run without lenet_fast "
                    "(needs pip install \"lenet-fast[onnx]\"); .safetensors, the weights with "
                    "the configuration in the metadata, readable by any safetensors reader "
                    "(needs pip install \"lenet-fast[safetensors]\"); .npz, lenet_fast's own "
                    "format.",
        epilog="The ONNX graph takes uint8 MNIST digits (N, 28, 28) as input 'images' and "
               "preprocesses them itself (--no-preprocess: float32 (N, 1, 32, 32) input 'input', "
               "as lenet_fast.datasets.preprocess makes); its outputs are 'logits' (modern) or "
               "'distances' (lecun98, the RBF outputs, lower is better) and 'probabilities', "
               "each (N, 10). See lenet_fast.onnx_export.")
    p.add_argument("model", metavar="MODEL", help="model file (.npz or .safetensors)")
    p.add_argument("out", metavar="OUT", help="output file: .onnx, .safetensors or .npz")
    p.add_argument("--no-preprocess", action="store_true",
                   help="ONNX only: take preprocessed float32 (N, 1, 32, 32) input instead of "
                        "uint8 (N, 28, 28) digits")
    p.set_defaults(func=cmd_export)


def cmd_export(args):
    from .onnx_export import OPSET

    ext = os.path.splitext(args.out)[1].lower()
    fmt = EXPORT_FORMATS.get(ext)
    if fmt is None:
        raise CLIError(f"cannot tell the format of {args.out}: give it one of the extensions "
                       f"{', '.join(EXPORT_FORMATS)}", code=2)
    if args.no_preprocess and fmt != "onnx":
        raise CLIError("--no-preprocess applies to ONNX output (.onnx) only", code=2)
    model = _load_model(args.model)
    _check_writable(args.out, f"{fmt} file")
    try:
        if fmt == "onnx":
            model.to_onnx(args.out, preprocess=not args.no_preprocess)
        else:
            model.save(args.out, format=fmt)
    except ImportError as exc:
        raise CLIError(_one_line(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot write {args.out}: {_os_error(exc)}") from None
    what = {"onnx": f"ONNX (opset {OPSET}; input " + ("float32 (N, 1, 32, 32) 'input'"
                                                 if args.no_preprocess else
                                                 "uint8 (N, 28, 28) 'images'") +
                    f"; outputs '{'logits' if model.variant == 'modern' else 'distances'}', "
                    "'probabilities')",
            "safetensors": "safetensors", "npz": "npz"}[fmt]
    print(f"{args.model} ({model.variant}, c3={model.c3}) exported to {args.out}: {what}")
    return 0


# --------------------------------------------------------------------------
# sweep
# --------------------------------------------------------------------------

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


def _seeds(text):
    from .sweep import parse_seeds
    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_sweep_parser(sub, train_parser):
    p = sub.add_parser(
        "sweep", help="run many trainings (a grid of settings x seeds) in parallel",
        description="Train and evaluate every combination of the --set values for every seed, "
                    "as 'lenet-fast train' would (same defaults and code; each run on "
                    "--threads-per-job threads), several runs at once in worker processes "
                    "(joblib, loky) or on a Dask cluster (--scheduler). Each finished run is "
                    "appended to --out (JSON Lines: settings, test metrics, history, timings; "
                    "one atomic, fsynced line per run). Ends with a table of the test error "
                    "per configuration (mean, sample std, min, max over the seeds).",
        epilog="Rerunning the same command skips the runs already recorded as finished in "
               "--out (a run is identified by its resolved settings, so after a change of "
               "the default recipe they run again) and runs the others, failed ones "
               "included. A run that fails is recorded with its error and the others go on "
               "(exit code 1 at the end). Ctrl-C stops the workers (exit code 130); every "
               "finished run is already saved. Example: lenet-fast sweep --seeds 0-5 "
               "--set lr=0.02,0.05 --set variant=modern,lecun98 --jobs 2 --out results.jsonl. "
               'Needs joblib (pip install "lenet-fast[sweep]"); --scheduler needs '
               'dask.distributed (pip install "lenet-fast[cluster]").')
    p.add_argument("--seeds", type=_seeds, default=[0], metavar="S",
                   help="seeds, e.g. 0-5 or 0,3,7 (default: 0)")
    p.add_argument("--set", dest="sets", type=_setting_parser(train_parser), action="append",
                   default=[], metavar="KEY=V1[,V2...]",
                   help="a training setting and its values (names as the train options, e.g. "
                        "lr, variant, batch_size, epochs, optimizer, schedule, weight_decay, "
                        "nesterov (true/false), label_smoothing, augment, c3, init); repeat for "
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
                   help="do not evaluate on the test set after every epoch")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args):
    from . import sweep

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
    _check_writable(args.out, "results file")
    fixed = {"train_limit": args.train_limit, "test_limit": args.test_limit,
             "data_dir": args.data_dir, "download": not args.no_download,
             "epoch_eval": not args.no_epoch_eval}
    grid = sweep.make_grid(sets, args.seeds, fixed)
    if args.scheduler is None:  # fetch MNIST once here, not in every worker
        for split in ("train", "test"):
            _load_split(split, args.data_dir, download=not args.no_download,
                        progress=sys.stderr.isatty())
        cores = sweep.default_jobs(1)
        jobs = args.jobs or sweep.default_jobs(args.threads_per_job)
        if jobs * args.threads_per_job > cores:
            print(f"{PROG}: warning: {jobs} job(s) x {args.threads_per_job} thread(s) is more "
                  f"than the {cores} usable core(s); OpenMP threads that wait for each other "
                  "slow down many times over", file=sys.stderr)
    try:
        records = sweep.run_sweep(grid, args.out, jobs=args.jobs,
                                  threads_per_job=args.threads_per_job,
                                  scheduler=args.scheduler, echo=print)
    except sweep.SweepError as exc:
        raise CLIError(f"{_one_line(exc)}; the finished runs are saved in {args.out}; rerun "
                       "the same command to run the others") from None
    except KeyboardInterrupt:
        raise CLIError(f"interrupted; the finished runs are saved in {args.out}; rerun the "
                       "same command to run the others", code=130) from None
    except OSError as exc:
        raise CLIError(f"cannot write the results file {args.out}: {_os_error(exc)}") from None
    columns = [key for key, values in sets.items() if len(values) > 1]
    fixed_text = ", ".join(f"{key}={values[0]}" for key, values in sets.items()
                           if len(values) == 1)
    print()
    print(f"test error over seeds {_seed_text(args.seeds)}"
          + (f" ({fixed_text})" if fixed_text else "") + ":")
    print(sweep.format_table(sweep.summarize(grid, records, columns), columns))
    failed = sum(1 for r in records if r is not None and r.get("status") != "ok")
    if failed:
        print(f"{PROG}: {failed} run(s) failed; their errors are in {args.out}", file=sys.stderr)
        return 1
    return 0


def _seed_text(seeds):
    from .sweep import format_seeds
    return format_seeds(seeds)


# --------------------------------------------------------------------------
# reproduce
# --------------------------------------------------------------------------


def _add_reproduce_parser(sub):
    from .reproduce import FIGURES, PROFILES

    def figures(text):
        from .reproduce import parse_figures
        try:
            return parse_figures(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    p = sub.add_parser(
        "reproduce", help="LeCun et al. 1998's LeNet-5 experiments (Figs. 5, 6, 8, 9) over "
                          "many seeds",
        description="Train the paper's network with the paper's optimizer (lecun98, SDLM, "
                    "20 passes) over many seeds, with and without distortions (drawn on the "
                    "fly, and the paper's fixed set of 540,000 distorted copies), and on "
                    "smaller training sets, on local worker processes or a Dask cluster; then "
                    "write DIR/reproduce.html (one self-contained page: Fig. 5 error per pass, "
                    "Fig. 6 error against the training-set size, Fig. 8 the misclassified "
                    "digits, Fig. 9 mean, std and 95% intervals beside the paper's 0.95% and "
                    "0.8%, the departures from the paper), DIR/summary.json and "
                    "DIR/summary.md. Every run is one line of DIR/results.jsonl.",
        epilog="Rerunning the same command skips the runs finished in DIR/results.jsonl and "
               "runs the others (Ctrl-C loses no finished run). The full run takes about 40 "
               "minutes on 2 cores (--dry-run prints the plan and the estimate); --quick a "
               "few. Needs joblib and matplotlib (pip install \"lenet-fast[sweep,plot]\"); "
               "--scheduler needs dask.distributed (\"lenet-fast[cluster]\").")
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
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args):
    from . import reproduce, sweep

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
        from .plot import require
        require()
    except ImportError as exc:
        raise CLIError(sweep.CLUSTER_MISSING if args.scheduler is not None and
                       "distributed" in str(exc) else _one_line(exc)) from None
    results = os.path.join(args.out, reproduce.RESULTS)
    try:
        summary = reproduce.run_reproduce(
            args.out, figures=args.figures, seeds=args.seeds, profile=args.profile,
            jobs=args.jobs, scheduler=args.scheduler, data_dir=args.data_dir,
            download=not args.no_download, echo=print, command=reproduce.command_line())
    except reproduce.ReproduceError as exc:
        raise CLIError(_one_line(exc)) from None
    except (datasets.DataNotFoundError, datasets.DataFormatError) as exc:
        raise CLIError(_one_line(exc)) from None
    except sweep.SweepError as exc:
        raise CLIError(f"{_one_line(exc)}; the finished runs are saved in {results}; rerun "
                       "the same command to run the others") from None
    except KeyboardInterrupt:
        raise CLIError(f"interrupted; the finished runs are saved in {results}; rerun the "
                       "same command to run the others", code=130) from None
    except OSError as exc:
        raise CLIError(f"cannot write in {args.out}: {_os_error(exc)}") from None
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


# --------------------------------------------------------------------------
# serve
# --------------------------------------------------------------------------


def _add_serve_parser(sub):
    """Add the ``serve`` subcommand to `sub` (the subparsers of `build_parser`)."""
    p = sub.add_parser(
        "serve", help="serve digit recognition over HTTP, with a draw-a-digit page",
        description="Serve a model over HTTP (Starlette on uvicorn; needs pip install "
                    "\"lenet-fast[serve]\"): POST /v1/predict (PNG, JPEG, multipart files, "
                    "JSON or .npy digits), GET / (a page to draw a digit), /healthz, /metrics "
                    "(Prometheus), /openapi.json. SIGTERM finishes the requests in flight, then "
                    "exits 0. See lenet_fast.serve.")
    p.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help="model file (.npz or .safetensors); default: the pretrained model")
    p.add_argument("--pretrained", choices=_pretrained_names(), default="modern",
                   help="the pretrained model served without a MODEL (default: modern)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_number(int, "a port number 0..65535", lambda v: 0 <= v <= 65535),
                   default=8000, help="port (default: 8000; 0: any free port)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="worker processes (default: 1; more are started by uvicorn with the "
                        "spawn method)")
    p.add_argument("--threads", type=_thread_count, default=None, metavar="T",
                   help="OpenMP threads per worker (default: OMP_NUM_THREADS, else all cores)")
    p.add_argument("--max-body-mb", type=_positive_float, default=16.0, metavar="MB",
                   help="largest request body in MiB (default: 16)")
    p.add_argument("--max-images", type=_positive_int, default=10_000, metavar="N",
                   help="most digits in one request (default: 10000)")
    p.add_argument("--body-timeout", type=_positive_float, default=10.0, metavar="S",
                   help="seconds a request's body may take to arrive (default: 10; then 408)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)
    return p


def cmd_serve(args):
    try:
        from . import serve
        import starlette, uvicorn, prometheus_client, multipart, PIL  # noqa: F401, E401
    except ImportError:
        raise CLIError('lenet-fast serve needs its extra: pip install "lenet-fast[serve]"') from None
    if args.model is not None:
        _load_model(args.model)       # a clear error before the server starts
    else:
        _load_pretrained(args.pretrained)
    limits = serve.Limits(max_body_bytes=int(args.max_body_mb * 2**20), max_images=args.max_images,
                          body_timeout=args.body_timeout)

    def ready(port):
        print(serve.port_line(port), flush=True)

    return serve.run(model=args.model, pretrained=args.pretrained, host=args.host, port=args.port,
                     workers=args.workers, threads=args.threads, limits=limits,
                     log_level=args.log_level, ready=ready)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the ``lenet-fast`` command with `argv` (default: sys.argv[1:]); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)} (see '{exc.prog} --help')", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
