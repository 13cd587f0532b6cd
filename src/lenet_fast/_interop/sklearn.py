"""A scikit-learn classifier around `LeNet5` and `Trainer`: `LeNet5Classifier`.

It plugs LeNet-5 into pipelines, grid search and cross-validation::

    from sklearn.model_selection import cross_val_score
    from lenet_fast.sklearn import LeNet5Classifier

    clf = LeNet5Classifier(epochs=2, random_state=0)
    cross_val_score(clf, X, y, cv=3)          # X: (n, 784) or (n, 28, 28) digits

Needs scikit-learn (``pip install "lenet-fast[sklearn]"``).

Input
-----
Each sample is one 28x28 digit: ``X`` is (n, 784) flat pixels (row-major, as
``fetch_openml("mnist_784")`` gives them) or (n, 28, 28). Pixel values, with 0 the
background and the maximum full ink (MNIST's white digits on black):

- integer dtypes (uint8, int64, ...): grey levels 0..255;
- floating dtypes: grey levels in [0, 255], or intensities in [0, 1]. The scale is
  read from the data: a batch whose largest value is at most 1 is in [0, 1], any
  other in [0, 255]. The first `fit` (or `partial_fit`) records the scale of the
  training data (``pixel_scale_``: 255.0 or 1.0) and later float batches must be on
  the same scale: a batch with values above 1 given to an estimator fitted on [0, 1]
  data is refused, and so is a batch whose largest value is in (0, 1] given to one
  fitted on [0, 255] data (that would be either [0, 1] data or a nearly blank
  [0, 255] digit: ambiguous). Integer batches are always grey levels.

Values below 0, above 255, NaN or infinite are refused (ValueError). Floats are
rounded to the nearest of MNIST's 256 grey levels (exact for grey levels stored as
floats and for ``uint8 / 255``); the network then sees them as
`lenet_fast.datasets.preprocess` maps them (0 -> -0.1, 255 -> 1.175, padded to 32x32).

Labels
------
Any labels (ints, strings, ...) with at most 10 distinct values: ``classes_`` holds
them sorted, and class ``classes_[i]`` is trained on output unit i of the network.
`predict_proba` is the softmax over the first ``len(classes_)`` scores (modern:
logits; lecun98: negated RBF distances).
"""

from __future__ import annotations

import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError('lenet_fast.sklearn needs scikit-learn >= 1.6: '
                      'pip install "lenet-fast[sklearn]"') from exc

from .._compute.tables import C3_CHOICES, VARIANTS
from .._model.lenet5 import LeNet5
from .._training import recipes
from .._training.augment import AUGMENTERS, make_augmenter
from .._training.optim.registry import OPTIMIZERS, make_optimizer
from .._training.schedules import SCHEDULES
from .._training.settings import RunSettings
from .._training.trainer import Trainer

__all__ = ["LeNet5Classifier", "EXPECTED_FAILED_CHECKS", "expected_failed_checks"]

_PIXELS = 28 * 28

def _refused(data, what):
    return (f"fits {data}, which fit() refuses: LeNet5Classifier takes 28x28 digits (784 "
            f"features); {what} is tested on real digits in tests/test_sklearn.py")


#: scikit-learn checks that cannot hold for an estimator of 28x28 digits, each with its
#: reason (for ``expected_failed_checks`` of
#: `sklearn.utils.estimator_checks.parametrize_with_checks` and `check_estimator`).
#: Each one fits the estimator on random tabular data of 1-10 features, which `fit`
#: refuses with a ValueError; what the check verifies on that data is tested on real
#: digits instead. The other checks pass: clone, repr, get/set_params, __init__ storing
#: its arguments only, not-fitted errors, tags, the refusal of sparse, complex, empty,
#: 1-D, negative and NaN/inf input and of continuous targets, and the error without y.
EXPECTED_FAILED_CHECKS = {
    "check_classifier_data_not_an_array": _refused("2-feature blobs", "list and DataFrame input"),
    "check_classifiers_classes": _refused("2-feature blobs", "string and subset labels"),
    "check_classifiers_one_label": _refused("10-feature random data with one label",
                                            "training on a subset of the labels"),
    "check_classifiers_train": _refused("2-feature blobs", "accuracy and predict_proba"),
    "check_decision_proba_consistency": _refused("2-feature blobs with negative values",
                                                 "decision_function/predict_proba agreement"),
    "check_dict_unchanged": _refused("3-feature random data", "that predict changes nothing"),
    "check_dont_overwrite_parameters": _refused("3-feature random data",
                                                "that fit leaves the parameters alone"),
    "check_dtype_object": _refused("10-feature object arrays", "dtype handling"),
    "check_estimators_dtypes": _refused("5-feature random data", "dtype handling"),
    "check_estimators_fit_returns_self": _refused("2-feature blobs", "fit returning self"),
    "check_estimators_nan_inf": _refused("3-feature random data (for the predict part)",
                                         "the refusal of NaN and inf"),
    "check_estimators_overwrite_params": _refused("2-feature blobs",
                                                  "that fit leaves the parameters alone"),
    "check_estimators_partial_fit_n_features": _refused("2-feature blobs",
                                                        "partial_fit's width check"),
    "check_estimators_pickle": _refused("3-feature blobs", "pickling"),
    "check_f_contiguous_array_estimator": _refused("3-feature blobs", "Fortran-ordered input"),
    "check_fit2d_1sample": ("expects a 1-sample fit to be refused with a message about it; "
                            "LeNet5Classifier trains on a single digit and refuses this "
                            "10-feature sample for its width"),
    "check_fit2d_predict1d": _refused("3-feature random data", "the refusal of 1-D input"),
    "check_fit_check_is_fitted": _refused("2-feature blobs", "check_is_fitted after fit"),
    "check_fit_idempotent": _refused("2-feature blobs", "reproducibility with random_state"),
    "check_fit_score_takes_y": _refused("3-feature random data", "score"),
    "check_methods_sample_order_invariance": _refused("3-feature random data",
                                                      "sample order invariance"),
    "check_methods_subset_invariance": _refused("3-feature random data",
                                                "subset (batch) invariance"),
    "check_n_features_in": _refused("2-feature blobs", "n_features_in_"),
    "check_n_features_in_after_fitting": _refused("4-feature random data",
                                                  "the width check after fitting"),
    "check_pipeline_consistency": _refused("3-feature blobs", "Pipeline"),
    "check_readonly_memmap_input": _refused("2-feature blobs", "read-only input"),
    "check_supervised_y_2d": _refused("3-feature random data", "column-vector y"),
}


def expected_failed_checks(estimator):
    """``expected_failed_checks`` for `parametrize_with_checks` / `check_estimator`.

    Parameters
    ----------
    estimator : estimator
        The estimator scikit-learn's checks run on.

    Returns
    -------
    dict
        Check name -> reason; `EXPECTED_FAILED_CHECKS` for a `LeNet5Classifier`, empty
        for any other estimator.
    """
    return dict(EXPECTED_FAILED_CHECKS) if isinstance(estimator, LeNet5Classifier) else {}


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _positive_int_or_none(name, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                              or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


class LeNet5Classifier(ClassifierMixin, BaseEstimator):
    """LeNet-5 (LeCun et al. 1998) as a scikit-learn classifier of 28x28 digits.

    Parameters
    ----------
    variant : {"modern", "lecun98"}
        The network (`lenet_fast.LeNet5`).
    c3 : {"lecun", "full"} or None
        C3 with LeCun's connection table or dense; None: the recipe's.
    epochs : int or None
        Passes over the training data in `fit`; None: the recipe's.
    batch_size : int or None
        Images per training step; None: the recipe's.
    optimizer : {"sgd", "adam", "sdlm"} or None
        "sgd" (momentum 0.9), "adam", or "sdlm" (the paper's; lecun98 only, with its
        weights drawn as ``init="fanin-sqrt"``); None: the recipe's.
    lr : float or None
        Base (one-cycle: peak) learning rate; None: the recipe's for the recipe's
        optimizer, else the optimizer's own default.
    schedule : {"constant", "step", "cosine", "onecycle", "lecun98"} or None
        Learning-rate schedule laid out over one `fit`; None: the recipe's.
        `partial_fit` always runs at the constant rate `lr`.
    augment : {None, "none", "affine", "elastic"}
        Random distortions of the training digits (`lenet_fast.augment`).
    random_state : int, numpy.random.RandomState or None
        Seed of the weights, the shuffling and the distortions. An int gives the same
        weights bit for bit on every run and thread count (with an int ``s``, `fit`
        trains exactly as ``lenet-fast train --seed s`` with the same settings, the
        recipe's by default); None
        draws a seed from numpy's global generator.
    n_threads : int or None
        OpenMP threads of the kernels (None: the OpenMP default). Results do not
        depend on it.
    warm_start : bool
        When True, `fit` on a fitted estimator continues from its weights and its
        optimizer's state (momentum, Adam moments, step count) for ``epochs`` more
        passes, with the schedule laid out over them from ``lr``; the labels must be
        among ``classes_``, and variant, c3 and optimizer must be unchanged.
    verbose : bool or int
        Show the trainer's progress bar (on stderr).

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The labels seen in the first `fit` (or `partial_fit`'s ``classes``), sorted.
    model_ : lenet_fast.LeNet5
        The trained network.
    optimizer_ : lenet_fast.optim.Optimizer
        Its optimizer, with its state (kept for warm starts and `partial_fit`).
    n_features_in_ : int
        784.
    pixel_scale_ : float
        255.0 or 1.0: the scale of the training data's pixel values (module docstring).
    n_iter_ : int
        Epochs trained in total (`fit` epochs plus one per `partial_fit`).
    history_ : list of dict
        `Trainer.fit`'s per-epoch records (loss, accuracy, lr, images/s), all calls.

    Notes
    -----
    The recipes are ``lenet-fast train``'s (`lenet_fast.recipes`): modern, a dense C3
    and 2 epochs of SGD with Nesterov momentum, weight decay 5e-4 and label smoothing
    0.1 on a one-cycle schedule peaking at 0.08, batch 64; lecun98, LeCun's C3 and 10
    epochs of Adam at 0.002 on a cosine schedule, batch 32; with ``optimizer="sdlm"``,
    the paper's 20 passes at batch 1. The recipe's weight decay, Nesterov momentum and
    label smoothing go with its optimizer: another optimizer trains without them.
    """

    def __init__(self, variant="modern", c3=None, epochs=None, batch_size=None,
                 optimizer=None, lr=None, schedule=None, augment=None, random_state=None,
                 n_threads=None, warm_start=False, verbose=False):
        self.variant = variant
        self.c3 = c3
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.augment = augment
        self.random_state = random_state
        self.n_threads = n_threads
        self.warm_start = warm_start
        self.verbose = verbose

    # ------------------------------------------------------------------ settings
    def _settings(self):
        """The run's settings: the parameters, with None replaced by the variant's recipe."""
        _choice("variant", self.variant, VARIANTS)
        if self.c3 is not None:
            _choice("c3", self.c3, C3_CHOICES)
        if self.optimizer is not None:
            _choice("optimizer", self.optimizer, tuple(OPTIMIZERS))
        if self.schedule is not None:
            _choice("schedule", self.schedule, tuple(SCHEDULES))
        if self.augment is not None:
            _choice("augment", self.augment, AUGMENTERS)
        _positive_int_or_none("epochs", self.epochs)
        _positive_int_or_none("batch_size", self.batch_size)
        _positive_int_or_none("n_threads", self.n_threads)
        if self.lr is not None and (isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real)
                                    or not 0 < self.lr < float("inf")):
            raise ValueError(f"lr must be a positive number or None, got {self.lr!r}")
        if self.optimizer == "sdlm" and self.variant != "lecun98":
            raise ValueError("optimizer='sdlm' needs variant='lecun98' (its curvature "
                             "estimate is the paper's, for the paper's network)")
        given = {"variant": self.variant, "c3": self.c3, "epochs": self.epochs,
                 "batch_size": self.batch_size, "optimizer": self.optimizer, "lr": self.lr,
                 "schedule": self.schedule}
        settings = RunSettings.resolve({k: v for k, v in given.items() if v is not None},
                                       save=False).as_dict()
        return {k: settings[k] for k in (*recipes.RECIPES[self.variant], "init")}

    def _seed(self):
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            if not 0 <= rs < 2**32:
                raise ValueError(f"random_state must be in [0, 2**32), got {rs}")
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def _call_seed(self):
        """Seed of this call's shuffling and distortions: the estimator's seed for the
        first training call (as ``lenet-fast train --seed``), then a fresh stream per call."""
        calls = self._train_calls
        self._train_calls += 1
        if calls == 0:
            return self._seed_
        return int(np.random.SeedSequence([self._seed_, calls]).generate_state(1)[0])

    # ------------------------------------------------------------------ input
    def _images(self, X, y="no_validation", *, reset):
        """Validate X (and y, when given); return uint8 digits (n, 28, 28) (and y).

        The checks run in this order: array validation (scikit-learn's), y's target
        type, pixel values, then the width (784).
        """
        if isinstance(X, (list, tuple)):
            X = np.asarray(X)
        if getattr(X, "ndim", None) == 3:
            if tuple(X.shape[1:]) != (28, 28):
                raise ValueError(f"X must be (n, 784) flat pixels or (n, 28, 28) digits, "
                                 f"got shape {X.shape}")
            X = X.reshape(X.shape[0], _PIXELS)
        with_y = not (isinstance(y, str) and y == "no_validation")
        if with_y:
            X, y = validate_data(self, X, y, reset=reset, dtype="numeric")
            check_classification_targets(y)
        else:
            X = validate_data(self, X, reset=reset, dtype="numeric")
        kind = X.dtype.kind
        if kind == "b":
            raise TypeError("X must hold grey levels (integers 0..255, or floats in [0, 255] "
                            "or [0, 1]), not booleans")
        lo, hi = X.min(), X.max()
        if lo < 0:
            raise ValueError(f"Negative values in data passed to {type(self).__name__}: pixel "
                             f"values must be in [0, 255] (or [0, 1]), got a minimum of {lo}")
        if hi > 255:
            raise ValueError(f"X must hold pixel values in [0, 255] (or [0, 1]), got a "
                             f"maximum of {hi}")
        if X.shape[1] != _PIXELS:
            raise ValueError(f"X has {X.shape[1]} feature(s), but {type(self).__name__} takes "
                             "28x28 digits: (n, 784) flat pixels or (n, 28, 28)")
        if kind in "iu":
            scale = 255.0
        else:
            scale = 1.0 if hi <= 1 else 255.0
            fitted = getattr(self, "pixel_scale_", None)
            if not reset and fitted is not None and scale != fitted:
                if fitted == 1.0:
                    raise ValueError(f"X has values up to {hi}, but this estimator was fitted on "
                                     "pixel intensities in [0, 1]; give X on that scale")
                if hi > 0:
                    raise ValueError(
                        f"ambiguous pixel scale: X's values are all in [0, {hi}], but this "
                        "estimator was fitted on grey levels in [0, 255]; multiply [0, 1] "
                        "intensities by 255 (or give uint8 grey levels)")
                scale = fitted  # all-zero (blank) digits read the same on either scale
        if reset:
            self.pixel_scale_ = scale
        if X.dtype != np.uint8:
            X = np.rint(X * (255.0 / scale)).astype(np.uint8) if kind == "f" else X.astype(np.uint8)
        images = np.ascontiguousarray(X).reshape(-1, 28, 28)
        return (images, y) if with_y else images

    def _encode(self, y):
        """Indices of y's labels in classes_ (refusing unseen labels)."""
        idx = np.searchsorted(self.classes_, y)
        idx = np.minimum(idx, len(self.classes_) - 1)
        bad = self.classes_[idx] != y
        if np.any(bad):
            unseen = np.unique(np.asarray(y)[bad])
            raise ValueError(f"y has labels {unseen.tolist()[:10]} not in classes_ "
                             f"{self.classes_.tolist()}")
        return idx.astype(np.int64)

    def _set_classes(self, classes):
        classes = np.unique(classes)
        if len(classes) > 10:
            raise ValueError(f"LeNet-5 has 10 outputs: at most 10 classes, got {len(classes)}")
        self.classes_ = classes

    # ------------------------------------------------------------------ training
    def _start(self, settings):
        """A new network and optimizer (the estimator's first training call)."""
        self._seed_ = self._seed()
        self._train_calls = 0
        self.model_ = LeNet5(self.variant, c3=settings["c3"], seed=self._seed_,
                             init=settings["init"], n_threads=self.n_threads)
        self.optimizer_ = make_optimizer(settings["optimizer"], settings["lr"],
                                         **recipes.optimizer_options(settings))
        self.n_iter_ = 0
        self.history_ = []

    def _continue(self, settings):
        """Check that the parameters still describe the fitted network and optimizer; a
        changed ``lr`` becomes the optimizer's base rate."""
        for name, fitted in (("variant", self.model_.variant), ("c3", self.model_.c3),
                             ("optimizer", self.optimizer_.name)):
            wanted = self.variant if name == "variant" else settings[name]
            if wanted != fitted:
                raise ValueError(f"{name}={wanted!r}, but the fitted estimator has {name}="
                                 f"{fitted!r}; set warm_start=False to start afresh")
        if settings["lr"] is not None:
            self.optimizer_.base_lr = float(settings["lr"])

    def _train(self, images, labels, settings, epochs, schedule):
        seed = self._call_seed()
        self.model_.n_threads = self.n_threads
        augmenter = make_augmenter(self.augment, seed=seed, n_threads=self.n_threads)
        trainer = Trainer(self.model_, self.optimizer_, batch_size=settings["batch_size"],
                          epochs=epochs, schedule=schedule, seed=seed,
                          progress=bool(self.verbose), augment=augmenter,
                          label_smoothing=settings["label_smoothing"])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = trainer.fit((images, labels))
        self.history_.extend(history)
        self.n_iter_ += len(history)

    def fit(self, X, y):
        """Train on digits `X` with labels `y`.

        Parameters
        ----------
        X : array (n, 784) or (n, 28, 28)
            Pixel values (module docstring: uint8/integer grey levels 0..255, or
            floats in [0, 255] or [0, 1]).
        y : array (n,)
            Labels, at most 10 distinct values.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad input (shape, values, more than 10 classes) or parameters.
        lenet_fast.TrainingDiverged
            The loss became non-finite (try a lower `lr`).
        """
        settings = self._settings()
        warm = self.warm_start and hasattr(self, "model_")
        images, y = self._images(X, y, reset=not warm)
        if warm:
            self._continue(settings)
        else:
            self._set_classes(y)
            self._start(settings)
        self._train(images, self._encode(y), settings, settings["epochs"], settings["schedule"])
        return self

    def partial_fit(self, X, y, classes=None):
        """One pass over (`X`, `y`) at the constant learning rate, from the current state.

        Parameters
        ----------
        X : array-like
            (n, 784) or (n, 28, 28) digits, as in `fit`.
        y : array-like
            (n,) labels, as in `fit`.
        classes : array or None
            All the labels the estimator will see; required on the first call (before
            any `fit`), ignored after.

        Returns
        -------
        self
        """
        settings = self._settings()
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be given on the first call to partial_fit "
                             "(all the labels the estimator will see)")
        images, y = self._images(X, y, reset=first)
        if first:
            self._set_classes(classes)
            self._start(settings)
        else:
            self._continue(settings)
        self._train(images, self._encode(y), settings, 1, "constant")
        return self

    # ------------------------------------------------------------------ inference
    def _scores(self, X):
        check_is_fitted(self)
        images = self._images(X, reset=False)
        self.model_.n_threads = self.n_threads
        return self.model_.scores(images)[:, :len(self.classes_)]

    def decision_function(self, X):
        """Class scores, higher is better.

        Parameters
        ----------
        X : array-like
            (n, 784) or (n, 28, 28) digits, on the scale the estimator was fitted on.

        Returns
        -------
        scores : ndarray
            float32 (n, n_classes): logits (modern) or negated RBF distances (lecun98)
            of the classes' output units.
        """
        return self._scores(X)

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like, as in `decision_function`
            The digits to classify.

        Returns
        -------
        labels : ndarray
            (n,), from ``classes_``.
        """
        best = self._scores(X).argmax(axis=1)
        return self.classes_[best]

    def predict_proba(self, X):
        """Class probabilities: the softmax of `decision_function`.

        lecun98: P(i) proportional to exp(-distance_i).

        Parameters
        ----------
        X : array-like, as in `decision_function`
            The digits, whose class probabilities are wanted.

        Returns
        -------
        proba : ndarray
            float64 (n, n_classes), rows summing to 1.
        """
        s = self._scores(X).astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        return s

    def predict_log_proba(self, X):
        """Logarithm of `predict_proba`.

        Parameters
        ----------
        X : array-like, as in `decision_function`
            The digits.

        Returns
        -------
        log_proba : ndarray
            float64 (n, n_classes).
        """
        s = self._scores(X).astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        s -= np.log(np.exp(s).sum(axis=1, keepdims=True))
        return s

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True   # pixel values are >= 0
        tags.input_tags.three_d_array = True   # (n, 28, 28) digits
        return tags

    def __getstate__(self):
        """Pickle the network as its configuration and weights and the optimizer as its
        state dict (the live objects hold compiled plans and views into one vector)."""
        state = super().__getstate__()
        state = dict(state)
        model = state.pop("model_", None)
        if model is not None:
            state["model_"] = {"config": model.config(), "flat_params": model.flat_params.copy()}
        optimizer = state.pop("optimizer_", None)
        if optimizer is not None:
            state["optimizer_"] = optimizer.state_dict()
        return state

    def __setstate__(self, state):
        state = dict(state)
        model = state.pop("model_", None)
        optimizer = state.pop("optimizer_", None)
        super().__setstate__(state)
        if model is not None:
            c = model["config"]
            self.model_ = LeNet5(c["variant"], c3=c["c3"], seed=c["seed"], init=c["init"],
                                 n_threads=state.get("n_threads"))
            self.model_.flat_params[...] = model["flat_params"]
        if optimizer is not None:
            self.optimizer_ = make_optimizer(str(np.asarray(optimizer["name"])))
            self.optimizer_.load_state_dict(optimizer)
