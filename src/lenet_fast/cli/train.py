"""``lenet-fast train``: train a model with a recipe, save it, print its test accuracy."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from .._omp import built_with_openmp
from .._version import __version__
from .._io import checkpoint, datasets
from .._compute.tables import INITS
from .._training import recipes
from .._training.optim.registry import OPTIMIZERS, make_optimizer
from .._training.schedules import SCHEDULES, schedule_from_config
from .._training.settings import RunSettings, SettingsError
from ._common import (
    PROG,
    CLIError,
    _check_writable,
    _load_split,
    _non_negative_float,
    _non_negative_int,
    _one_line,
    _os_error,
    _positive_float,
    _positive_int,
    _resolve_threads,
    _smoothing,
    _thread_count,
    _write_metrics,
)


def _fraction(text):
    """A number in [0, 1): a momentum or a decay rate."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def _open_fraction(text):
    """A number in (0, 1): a fraction of the run."""
    value = _fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def _recipe_text(recipe):
    """A named recipe's settings as help text."""
    r = recipe
    optimizer = (f"SGD (momentum {r['momentum']}{', Nesterov' if r['nesterov'] else ''})"
                 if r["optimizer"] == "sgd" else
                 f"Adam (betas {r['beta1']}, {r['beta2']})" if r["optimizer"] == "adam"
                 else r["optimizer"])
    schedule = (f"one-cycle to {r['lr']:g} ({r['warmup']:.0%} warmup)"
                if r["schedule"] == "onecycle" and r.get("warmup") is not None
                else f"{r['schedule']} at {r['lr']:g}")
    return (f"{r['variant']} with a {'dense' if r['c3'] == 'full' else 'sparse'} C3, "
            f"{r['epochs']} epoch(s) at batch {r['batch_size']}, {optimizer}, {schedule}, "
            f"weight decay {r['weight_decay']:g}, label smoothing {r['label_smoothing']:g}"
            ).replace("%", "%%")


def _show(value, none_text):
    return none_text if value is None else value


def _recipe(key):
    """The per-variant default of a training setting, as help text."""
    return ", ".join(f"{recipe[key]} for {v}" for v, recipe in recipes.RECIPES.items())


HELP = "train LeNet-5 on MNIST and save the model"
DESCRIPTION = """
Train LeNet-5 on the MNIST training set (60,000 digits), then evaluate it on the test
set (10,000 digits; the test set is never trained on, only evaluated after every epoch
for the learning curves, see --no-epoch-eval) and save the model with its training
history. Prints the test accuracy/error, the time spent in training steps with images/s,
and where the model was saved.
"""
EPILOG = """
Ctrl-C stops after the current batch, saves a checkpoint (in --checkpoint-dir as
interrupted.npz, else next to --out as <out>.interrupted.npz) and prints the command
that resumes it; exit code 130. A second Ctrl-C stops at once without saving. With
--resume, --variant, --c3, --init, --batch-size, --seed, --optimizer, --lr, --schedule,
--weight-decay, --nesterov, --momentum, --beta1, --beta2, --warmup, --label-smoothing and
--augment come from the checkpoint
(giving a different value is an error) and --epochs defaults to the checkpoint's run
length. Resuming to the run's own length gives bit-for-bit the weights of the
uninterrupted run. A larger --epochs extends the run, which only --schedule constant
allows (the other schedules are laid out for the original length): then the result is
the same as a run of that length from the start.
"""


def add_arguments(p, parsers):
    """The options of ``train``."""
    d = recipes.TRAIN_DEFAULTS
    p.add_argument("--variant", choices=("modern", "lecun98"), default=argparse.SUPPRESS,
                   help="'modern': ReLU, max pooling, softmax output; 'lecun98': the paper's "
                        "scaled tanh, trainable subsampling and RBF output with the MAP loss "
                        f"(default: {d['variant']})")
    p.add_argument("--recipe", choices=tuple(recipes.NAMED_RECIPES), default=argparse.SUPPRESS,
                   help="a named recipe instead of the variant's default one, for the settings "
                        "not given: " + "; ".join(
                            f"{name}: {_recipe_text(r)}" for name, r in
                            recipes.NAMED_RECIPES.items()) + " (default: none)")
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
                        "(see lenet_fast.optim) "
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
    p.add_argument("--warmup", type=_open_fraction, default=argparse.SUPPRESS, metavar="X",
                   help="fraction of the run that --schedule onecycle spends rising to --lr, "
                        "in (0, 1) (default: 0.3)")
    p.add_argument("--weight-decay", type=_non_negative_float, default=argparse.SUPPRESS,
                   metavar="X", help="L2 weight decay of --optimizer sgd or adam "
                                     f"(default: {_recipe('weight_decay')}; 0 with another "
                                     "--optimizer than the recipe's)")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                   help="Nesterov momentum for --optimizer sgd "
                        f"(default: {_recipe('nesterov')}; off with another --optimizer)")
    p.add_argument("--momentum", type=_fraction, default=argparse.SUPPRESS, metavar="X",
                   help="momentum of --optimizer sgd, in [0, 1) "
                        f"(default: {recipes.OPTIMIZER_HPARAMS['sgd']['momentum']})")
    p.add_argument("--beta1", type=_fraction, default=argparse.SUPPRESS, metavar="X",
                   help="decay rate of --optimizer adam's first-moment (mean) estimate, in "
                        f"[0, 1) (default: {recipes.OPTIMIZER_HPARAMS['adam']['beta1']})")
    p.add_argument("--beta2", type=_fraction, default=argparse.SUPPRESS, metavar="X",
                   help="decay rate of --optimizer adam's second-moment estimate, in [0, 1) "
                        f"(default: {recipes.OPTIMIZER_HPARAMS['adam']['beta2']})")
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
            "warmup": schedule.to_config().get("pct_start") if schedule.name == "onecycle"
            else None,
            "augment": str(((state.get("augment") or {}).get("config") or {}).get("name", "none")),
            "weight_decay": float(np.asarray(optim_state.get("weight_decay", 0.0))),
            "nesterov": bool(np.asarray(optim_state.get("nesterov", False))),
            **{key: (float(np.asarray(optim_state[key])) if key in optim_state else None)
               for key in recipes.HPARAM_SETTINGS},
            "label_smoothing": float(settings.get("label_smoothing", 0.0)),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CLIError(f"cannot resume: {path}: unusable training state ({_one_line(exc)})") from None
    return result


def _train_settings(args):
    """Resolve the run's settings: command line, else the checkpoint (--resume), else defaults
    (`RunSettings.resolve`, which checks that they agree)."""
    given = {key: getattr(args, key) for key in (*recipes.TRAIN_DEFAULTS, "augment")
             if hasattr(args, key)}
    saved = None if args.resume is None else _checkpoint_settings(args.resume)
    try:
        return RunSettings.resolve(given, resumed=saved, resume_path=args.resume), saved
    except SettingsError as exc:
        raise CLIError(str(exc), code=2) from None


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
    parts = [PROG, "train", "--resume", path, "--epochs", str(settings.epochs),
             "--out", settings.out]
    # the options of this run that the resumed run needs again
    for flag, value in (("--checkpoint-dir", args.checkpoint_dir), ("--data-dir", args.data_dir),
                        ("--no-download", args.no_download), ("--threads", settings.threads),
                        ("--metrics-json", args.metrics_json), ("--no-progress", args.no_progress),
                        ("--train-limit", args.train_limit), ("--test-limit", args.test_limit)):
        if value is True:
            parts.append(flag)
        elif value is not None and value is not False:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _optimizer_options(settings):
    """The recipe's keyword arguments for `make_optimizer` (those its optimizer takes)."""
    try:
        return recipes.optimizer_options(settings.as_dict())
    except ValueError as exc:
        text = str(exc).replace("nesterov", "--nesterov").replace("weight_decay",
                                                                  "--weight-decay")
        for key in recipes.HPARAM_SETTINGS:
            text = text.replace(f"{key} applies", f"--{key} applies")
        raise CLIError(text, code=2) from None


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
    from .._training import experiment
    from .._training.trainer import TrainingDiverged, TrainingInterrupted

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


def run(args):
    from .._training import experiment

    wall_start = time.perf_counter()
    s, saved = _train_settings(args)
    out = s.out
    _check_train_outputs(out, args)
    threads = _resolve_threads(s.threads)
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
