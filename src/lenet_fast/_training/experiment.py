"""One training run as a plain function: ``run(config) -> dict``.

`run` trains and evaluates one LeNet-5 exactly as ``lenet-fast train`` does: the
settings are resolved by the same function (`lenet_fast.RunSettings.resolve`, so the
defaults are the command's recipe and the same conflicts are refused), and the model, optimizer, augmenter and trainer
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

try:  # POSIX: the run's peak memory
    import resource
except ImportError:  # pragma: no cover
    resource = None

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

#: More run options, added later; a run's key (`lenet_fast.sweep.run_key`) names them only
#: when they differ from these defaults, so runs recorded before they existed still
#: match: ``train_eval`` (also evaluate on the training digits after every pass:
#: ``train_set_accuracy`` and ``train_set_loss`` in the history), ``record_errors`` (the
#: misclassified test digits in the result: ``test_errors``), ``distortion_copies`` (K
#: from 1 to `lenet_fast.augment.MAX_COPIES`: train on the paper's fixed set of K
#: distorted copies of each digit beside the originals, one version of each digit per
#: pass, `lenet_fast.augment.FixedDistortions`; not with ``augment``), ``holdout`` (N > 0:
#: hold out the last N training digits as a validation set, train on the others and
#: evaluate on the held-out digits instead of the test set, which the run then never
#: reads; the result names its figures ``val_*`` instead of ``test_*``, see `run`).
EXTRA_OPTIONS = {"train_eval": False, "record_errors": False, "distortion_copies": 0,
                 "holdout": 0}

#: The result keys that a run with a ``holdout`` names ``val_*``: its figures are the
#: held-out training digits', not the test set's.
HOLDOUT_KEYS = {"test_images": "val_images", "test_accuracy": "val_accuracy",
                "test_error": "val_error", "test_loss": "val_loss", "test_errors": "val_errors"}

#: Result keys that measure time or memory (they differ between two runs of the same
#: config).
TIMING_KEYS = ("train_seconds", "train_images_per_second", "wall_seconds", "seconds",
               "images_per_second", "peak_rss_mb")


def build(settings, *, progress=False, checkpoint_dir=None, interrupt_path=None,
          optimizer_options=None, pass_images=None):
    """The model, optimizer, augmenter and `Trainer` of resolved `settings`.

    Parameters
    ----------
    settings : lenet_fast.RunSettings
        The run's resolved settings (with its momentum, beta1, beta2 and warmup).
    progress : bool
        Show the trainer's progress bar.
    checkpoint_dir, interrupt_path : str or None
        Passed to `Trainer`.
    optimizer_options : dict or None
        Keyword arguments of `make_optimizer`; default
        `lenet_fast.recipes.optimizer_options(settings)`.
    pass_images : callable or None
        Passed to `Trainer` (each pass's version of the training digits).

    Returns
    -------
    Trainer
        Its ``model`` and ``optimizer`` are the new network and optimizer.
    """
    from .._model.lenet5 import LeNet5
    from . import recipes
    from .augment import make_augmenter
    from .optim.registry import make_optimizer
    from .trainer import Trainer

    s = settings
    if optimizer_options is None:
        optimizer_options = recipes.optimizer_options(s.as_dict())
    model = LeNet5(s.variant, c3=s.c3, seed=s.seed, init=s.init,
                   n_threads=s.threads)
    augmenter = make_augmenter(s.augment, seed=s.seed, n_threads=s.threads)
    optimizer = make_optimizer(s.optimizer, s.lr, **optimizer_options)
    return Trainer(model, optimizer, batch_size=s.batch_size, epochs=s.epochs,
                   schedule=s.schedule, schedule_options=recipes.schedule_options(s.as_dict()),
                   seed=s.seed, progress=progress,
                   checkpoint_dir=checkpoint_dir, interrupt_path=interrupt_path,
                   augment=augmenter, label_smoothing=s.label_smoothing,
                   pass_images=pass_images)


def fit_and_evaluate(trainer, train, test, *, resume=None, epoch_eval=True, train_eval=False,
                     per_sample=False):
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
    train_eval : bool
        Also evaluate on `train` after every epoch (`Trainer.fit`'s ``evaluate_train``).
    per_sample : bool
        The final evaluation's per-digit predictions too (`evaluate`'s ``per_sample``).

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
    from .metrics import evaluate

    # A diverging run overflows on its way to the NaN loss that the trainer reports
    # (TrainingDiverged); numpy's warnings about it would only add noise.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = trainer.fit(train, validation=test if epoch_eval else None, resume=resume,
                              evaluate_train=train_eval)
    return history, evaluate(trainer.model, *test, per_sample=per_sample)


def summary(settings, trainer, metrics, n_train):
    """The settings, test metrics and timings of a finished run, JSON-able.

    Keys: variant, c3, init, epochs, batch_size, threads (resolved), seed, optimizer,
    lr, schedule, weight_decay, nesterov, label_smoothing, momentum, beta1, beta2 (None
    where the optimizer has none), warmup, augment, train_images, test_images, test_accuracy, test_error,
    test_loss, train_seconds, train_images_per_second, history.

    Parameters
    ----------
    settings : lenet_fast.RunSettings
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
    from .._compute.ops import resolve_threads

    train_seconds = float(trainer.train_seconds)
    return {
        "variant": settings.variant,
        "c3": settings.c3,
        "init": trainer.model.init,
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "threads": resolve_threads(settings.threads),
        "seed": settings.seed,
        "optimizer": settings.optimizer,
        "lr": float(trainer.optimizer.base_lr),
        "schedule": settings.schedule,
        "weight_decay": settings.weight_decay,
        "nesterov": settings.nesterov,
        "label_smoothing": settings.label_smoothing,
        "momentum": settings.momentum,
        "beta1": settings.beta1,
        "beta2": settings.beta2,
        "warmup": settings.warmup,
        "augment": settings.augment,
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
    from .._io.datasets import load_mnist

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


def _data(options):
    """(train, evaluation) of a run: the training split (less its last ``holdout`` digits,
    then cut to ``train_limit``) and the test split (cut to ``test_limit``), or with a
    ``holdout`` the held-out last digits of the training split instead of the test set."""
    holdout = options["holdout"]
    if not holdout:
        return (_split("train", options, options["train_limit"]),
                _split("test", options, options["test_limit"]))
    images, labels = _split("train", options, None)
    if holdout >= len(images):
        raise ValueError(f"holdout ({holdout}) must leave training digits: the training split "
                         f"has {len(images)}")
    keep = len(images) - holdout
    train = images[:keep], labels[:keep]
    limit = options["train_limit"]
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"train_limit must be a positive integer or None, got {limit!r}")
        train = train[0][:limit], train[1][:limit]
    return train, (images[keep:], labels[keep:])


def settings_of(config):
    """The resolved training settings and run options of a `run` config.

    Parameters
    ----------
    config : dict
        As `run` takes it.

    Returns
    -------
    settings : lenet_fast.RunSettings
        The config's training settings resolved (`lenet_fast.RunSettings.resolve`), with
        ``threads`` 1 unless given and ``out`` None unless given.
    options : dict
        RUN_OPTIONS and EXTRA_OPTIONS updated from the config.

    Raises
    ------
    ValueError
        For an unknown key or contradictory settings.
    """
    from .recipes import TRAIN_DEFAULTS
    from .settings import RunSettings

    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, not {type(config).__name__}")
    known = (*TRAIN_DEFAULTS, "augment", *RUN_OPTIONS, *EXTRA_OPTIONS)
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(known)}")
    given = {k: v for k, v in config.items() if k in TRAIN_DEFAULTS or k == "augment"}
    settings = RunSettings.resolve(given, default_threads=1, save=False)
    options = dict(RUN_OPTIONS, **EXTRA_OPTIONS)
    options.update((k, v) for k, v in config.items() if k in options)
    copies = options["distortion_copies"]
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
        raise ValueError(f"distortion_copies must be a non-negative integer, got {copies!r}")
    holdout = options["holdout"]
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise ValueError(f"holdout must be a non-negative integer, got {holdout!r}")
    if holdout and options["test_limit"] is not None:
        raise ValueError("test_limit limits the test set, which a run with a holdout does not "
                         "read (it evaluates on its held-out training digits)")
    if copies and settings.augment != "none":
        raise ValueError("distortion_copies (the paper's fixed set of distorted copies) and "
                         f"augment={settings.augment!r} (distortions drawn on the fly) "
                         "exclude each other")
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
        optimizer, lr, schedule, weight_decay, nesterov, label_smoothing, momentum, beta1,
        beta2, warmup, threads, seed, out) and ``augment``, the
        RUN_OPTIONS (data_dir, download, train_limit, test_limit, epoch_eval) and the
        EXTRA_OPTIONS (train_eval, record_errors, distortion_copies, holdout).
        Settings not given take the command's defaults, except ``threads`` (default
        1) and ``out`` (default None: the model is not saved; a path: saved there
        with its history).

    Returns
    -------
    dict
        JSON-able: the resolved settings, train_images, test_images, test_accuracy,
        test_error, test_loss, train_seconds, train_images_per_second, history (per
        epoch), wall_seconds, weights_sha256 (`weights_digest`), model_path,
        version, openmp, distortion_copies, peak_rss_mb (the process's peak resident
        memory so far, MB; None where unknown), and with ``record_errors`` test_errors
        ({"index": [...], "predicted": [...]}: the test digits the model gets wrong,
        by index into the test set, and its answers). With a ``holdout`` the run never
        reads the test set: the figures of its held-out digits are val_images,
        val_accuracy, val_error, val_loss (and val_errors, indices into the held-out
        digits) instead of the test_* keys (`HOLDOUT_KEYS`), and the history's
        val_accuracy and val_loss are theirs too. Two runs of the same config give
        the same result, bit for bit, apart from the TIMING_KEYS, whatever their thread
        counts.

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
    train, test = _data(options)
    fixed = None
    if options["distortion_copies"]:
        from .augment import FixedDistortions
        fixed = FixedDistortions(train[0], options["distortion_copies"],
                                 order_seed=settings.seed, n_threads=settings.threads)
    trainer = build(settings, pass_images=None if fixed is None else fixed.pass_images)
    _, metrics = fit_and_evaluate(trainer, train, test, epoch_eval=bool(options["epoch_eval"]),
                                  train_eval=bool(options["train_eval"]),
                                  per_sample=bool(options["record_errors"]))
    trainer.pass_images = fixed = None  # the copies' memory back before saving
    if settings.out is not None:
        trainer.model.save(settings.out)
    result = summary(settings, trainer, metrics, len(train[0]))
    if options["record_errors"]:
        wrong = np.flatnonzero(metrics["predictions"] != np.asarray(test[1]))
        result["test_errors"] = {"index": wrong.tolist(),
                                 "predicted": metrics["predictions"][wrong].tolist()}
    if options["holdout"]:
        result = {HOLDOUT_KEYS.get(k, k): v for k, v in result.items()}
    result.update({
        "wall_seconds": time.perf_counter() - wall_start,
        "weights_sha256": weights_digest(trainer.model),
        "model_path": settings.out,
        "version": __version__,
        "openmp": built_with_openmp(),
        "distortion_copies": options["distortion_copies"],
        "holdout": options["holdout"],
        "peak_rss_mb": peak_rss_mb(),
    })
    return result


def error_of(result):
    """A run's error: on the test set, or on its held-out digits (a run with a holdout).

    Parameters
    ----------
    result : dict
        `experiment.run`'s result.

    Returns
    -------
    (float, str)
        The error (a fraction) and where it was measured: "test" or "validation".
    """
    if "val_error" in result and "test_error" not in result:
        return result["val_error"], "validation"
    return result["test_error"], "test"


def peak_rss_mb():
    """This process's peak resident memory so far.

    Returns
    -------
    float or None
        MB (Linux reports KiB); None where the resource module is missing.
    """
    if resource is None:  # pragma: no cover
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
