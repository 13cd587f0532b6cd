"""One training run as a plain function: ``run(config) -> dict``.

`run` trains and evaluates one LeNet-5 exactly as ``lenet-fast train`` does: the
settings are resolved by the same function (`lenet_fast.recipes.train_settings`, so the
defaults are the command's recipe), and the model, optimizer, augmenter and trainer
are built, trained and evaluated by the same three functions that the command calls
(`build`, `fit_and_evaluate`, `summary`). Its config is a JSON-able dict and its
result a JSON-able dict, and it is a module-level function, so it can be pickled and
sent to a process pool or a cluster (`lenet_fast.sweep` does both)::

    from lenet_fast.experiment import run
    result = run({"variant": "lecun98", "seed": 3, "threads": 1})
    result["test_error"], result["train_seconds"]

The thread count is explicit: a config without ``threads`` runs on one thread (not
the OpenMP default of all cores), so that runs side by side do not fight over cores.
"""

import functools
import hashlib
import time

import numpy as np

from .._version import __version__

#: Keys of a `run` config besides the training settings (those of
#: `lenet_fast.recipes.TRAIN_DEFAULTS`, and "augment"), with their defaults:
#: ``data_dir`` (None: ``$LENET_FAST_DATA_DIR``, else the cache folder), ``download``
#: (fetch MNIST if missing), ``train_limit`` / ``test_limit`` (None, or train/evaluate
#: on the first N digits only, for quick trials), ``epoch_eval`` (evaluate on the test
#: set after every epoch, for the learning curves in the history).
RUN_OPTIONS = {"data_dir": None, "download": True, "train_limit": None, "test_limit": None,
               "epoch_eval": True}

#: Result keys that measure time (they differ between two runs of the same config).
TIMING_KEYS = ("train_seconds", "train_images_per_second", "wall_seconds", "seconds",
               "images_per_second")


def build(settings, *, progress=False, checkpoint_dir=None, interrupt_path=None,
          optimizer_options=None):
    """The model, optimizer, augmenter and `Trainer` of resolved `settings`.

    Parameters
    ----------
    settings : dict
        As `lenet_fast.recipes.train_settings` returns (variant, c3, init, epochs,
        batch_size, optimizer, lr, schedule, weight_decay, nesterov, label_smoothing,
        threads, seed, augment).
    progress : bool
        Show the trainer's progress bar.
    checkpoint_dir, interrupt_path : str or None
        Passed to `Trainer`.
    optimizer_options : dict or None
        Keyword arguments of `make_optimizer`; default
        `lenet_fast.recipes.optimizer_options(settings)`.

    Returns
    -------
    Trainer
        Its ``model`` and ``optimizer`` are the new network and optimizer.
    """
    from ..model.lenet5 import LeNet5
    from ..training import recipes
    from ..training.augment import make_augmenter
    from ..training.optim.registry import make_optimizer
    from ..training.trainer import Trainer

    s = settings
    if optimizer_options is None:
        optimizer_options = recipes.optimizer_options(s)
    model = LeNet5(s["variant"], c3=s["c3"], seed=s["seed"], init=s["init"],
                   n_threads=s["threads"])
    augmenter = make_augmenter(s["augment"], seed=s["seed"], n_threads=s["threads"])
    optimizer = make_optimizer(s["optimizer"], s["lr"], **optimizer_options)
    return Trainer(model, optimizer, batch_size=s["batch_size"], epochs=s["epochs"],
                   schedule=s["schedule"], seed=s["seed"], progress=progress,
                   checkpoint_dir=checkpoint_dir, interrupt_path=interrupt_path,
                   augment=augmenter, label_smoothing=s["label_smoothing"])


def fit_and_evaluate(trainer, train, test, *, resume=None, epoch_eval=True):
    """Train with `trainer` on `train`, then evaluate on `test`.

    Parameters
    ----------
    trainer : Trainer
    train, test : (uint8 (N, 28, 28), labels (N,))
    resume : path or None
        A checkpoint to continue from (`Trainer.fit`).
    epoch_eval : bool
        Also evaluate on `test` after every epoch (val_loss and val_accuracy in the
        history, which `lenet_fast.plot.learning_curves` draws as "test"). The test
        set is never trained on.

    Returns
    -------
    history : list of dict
        `Trainer.fit`'s; it is also ``trainer.model.history``.
    metrics : dict
        `lenet_fast.metrics.evaluate` on `test`.

    Raises
    ------
    TrainingDiverged, TrainingInterrupted, OSError
        As `Trainer.fit`.
    """
    from ..training.metrics import evaluate

    # A diverging run overflows on its way to the NaN loss that the trainer reports
    # (TrainingDiverged); numpy's warnings about it would only add noise.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = trainer.fit(train, validation=test if epoch_eval else None, resume=resume)
    return history, evaluate(trainer.model, *test)


def summary(settings, trainer, metrics, n_train):
    """The settings, test metrics and timings of a finished run, JSON-able.

    Keys: variant, c3, init, epochs, batch_size, threads (resolved), seed, optimizer,
    lr, schedule, weight_decay, nesterov, label_smoothing, augment, train_images, test_images, test_accuracy, test_error,
    test_loss, train_seconds, train_images_per_second, history.

    Parameters
    ----------
    settings : dict
        The run's resolved settings (`settings_of`).
    trainer : lenet_fast.Trainer
        The trainer that ran.
    metrics : dict
        The test metrics (`lenet_fast.metrics.evaluate`).
    n_train : int
        The number of training images.

    Returns
    -------
    dict
    """
    from ..kernels.ops import resolve_threads

    train_seconds = float(trainer.train_seconds)
    return {
        "variant": settings["variant"],
        "c3": settings["c3"],
        "init": trainer.model.init,
        "epochs": settings["epochs"],
        "batch_size": settings["batch_size"],
        "threads": resolve_threads(settings["threads"]),
        "seed": settings["seed"],
        "optimizer": settings["optimizer"],
        "lr": float(trainer.optimizer.base_lr),
        "schedule": settings["schedule"],
        "weight_decay": settings["weight_decay"],
        "nesterov": settings["nesterov"],
        "label_smoothing": settings["label_smoothing"],
        "augment": settings["augment"],
        "train_images": int(n_train),
        "test_images": int(metrics["n"]),
        "test_accuracy": metrics["accuracy"],
        "test_error": metrics["error"],
        "test_loss": metrics["loss"],
        "train_seconds": train_seconds,
        "train_images_per_second": (trainer.train_images / train_seconds
                                    if train_seconds > 0 else 0.0),
        "history": trainer.history,
    }


@functools.lru_cache(maxsize=2)
def _mnist(split, data_dir, download):
    """One MNIST split, read once per process (the arrays are made read-only)."""
    from ..io.datasets import load_mnist

    images, labels = load_mnist(split, data_dir, download=download, progress=False)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _split(split, options, limit):
    images, labels = _mnist(split, options["data_dir"], bool(options["download"]))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{split}_limit must be a positive integer or None, got {limit!r}")
        images, labels = images[:limit], labels[:limit]
    return images, labels


def settings_of(config):
    """The resolved training settings and run options of a `run` config.

    Parameters
    ----------
    config : dict
        As `run` takes it.

    Returns
    -------
    settings : dict
        `lenet_fast.recipes.train_settings` of the config's training settings, with
        ``threads`` 1 unless given and ``out`` None unless given.
    options : dict
        RUN_OPTIONS updated from the config.

    Raises
    ------
    ValueError
        For an unknown key or contradictory settings.
    """
    from ..training.recipes import TRAIN_DEFAULTS, train_settings

    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, not {type(config).__name__}")
    known = (*TRAIN_DEFAULTS, "augment", *RUN_OPTIONS)
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(known)}")
    given = {k: v for k, v in config.items() if k in TRAIN_DEFAULTS or k == "augment"}
    given.setdefault("threads", 1)
    settings = train_settings(given)
    settings["out"] = config.get("out")
    options = dict(RUN_OPTIONS, **{k: v for k, v in config.items() if k in RUN_OPTIONS})
    return settings, options


def weights_digest(model):
    """SHA-256 (hex) of the model's float32 parameter vector: equal digests, equal weights.

    Parameters
    ----------
    model : LeNet5
        The model.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    return hashlib.sha256(np.ascontiguousarray(model.flat_params).tobytes()).hexdigest()


def run(config):
    """Train and evaluate one LeNet-5 as ``lenet-fast train`` does; return its metrics.

    Parameters
    ----------
    config : dict
        Any of the training settings of ``lenet-fast train`` under their
        `lenet_fast.recipes.TRAIN_DEFAULTS` names (variant, c3, init, epochs, batch_size,
        optimizer, lr, schedule, weight_decay, nesterov, label_smoothing, threads, seed,
        out) and ``augment``, and the
        RUN_OPTIONS (data_dir, download, train_limit, test_limit, epoch_eval).
        Settings not given take the command's defaults, except ``threads`` (default
        1) and ``out`` (default None: the model is not saved; a path: saved there
        with its history).

    Returns
    -------
    dict
        JSON-able: the resolved settings, train_images, test_images, test_accuracy,
        test_error, test_loss, train_seconds, train_images_per_second, history (per
        epoch), wall_seconds, weights_sha256 (`weights_digest`), model_path,
        version, openmp. Two runs of the same config give the same result, bit for
        bit, apart from the TIMING_KEYS, whatever their thread counts.

    Raises
    ------
    ValueError, TypeError
        For a bad config.
    lenet_fast.TrainingDiverged
        When the loss becomes NaN or infinite.
    lenet_fast.datasets.DataNotFoundError, DataFormatError, OSError
        When MNIST cannot be read.
    """
    from .._omp import built_with_openmp

    wall_start = time.perf_counter()
    settings, options = settings_of(config)
    train = _split("train", options, options["train_limit"])
    test = _split("test", options, options["test_limit"])
    trainer = build(settings)
    _, metrics = fit_and_evaluate(trainer, train, test, epoch_eval=bool(options["epoch_eval"]))
    if settings["out"] is not None:
        trainer.model.save(settings["out"])
    result = summary(settings, trainer, metrics, len(train[0]))
    result.update({
        "wall_seconds": time.perf_counter() - wall_start,
        "weights_sha256": weights_digest(trainer.model),
        "model_path": settings["out"],
        "version": __version__,
        "openmp": built_with_openmp(),
    })
    return result
