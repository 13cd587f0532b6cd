"""Optimizers and learning-rate schedules for flat parameter vectors.

The model keeps every trainable parameter as a view into one contiguous
``float32`` array, and the backward pass writes every gradient into a second
contiguous array of the same shape.  The optimizers in this module therefore
update *one* flat parameter vector from *one* flat gradient vector with a
handful of vectorized numpy calls per step:

* all state buffers and scratch space are allocated on the first step (or on
  :meth:`Optimizer.load_state_dict`) and reused afterwards, every update uses
  ``out=`` arguments, so a step performs no array allocation in steady state;
* input validation is done only when the ``(params, grads)`` pair changes
  identity, not on every call;
* scalar factors (bias corrections, step sizes) are computed with Python
  floats, which numpy 2 treats as "weak" scalars, so all array arithmetic stays
  in ``float32``.

Learning-rate schedules are pure functions of their constructor arguments and
the global step index; the trainer queries ``schedule.lr_at(step)`` and assigns
the result to ``optimizer.lr`` before each step.

Examples
--------
>>> import numpy as np
>>> params = np.zeros(4, dtype=np.float32)
>>> grads = np.ones(4, dtype=np.float32)
>>> opt = make_optimizer("sgd", lr=0.1)
>>> sched = make_schedule("cosine", opt.base_lr, total_steps=100, steps_per_epoch=10)
>>> for step in range(3):
...     opt.lr = sched.lr_at(step)
...     opt.step(params, grads)
>>> opt.step_count
3
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from . import _optim

_EMPTY = np.empty(0, dtype=np.float32)  # the momentum buffer of momentum-free SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "OPTIMIZERS",
    "make_optimizer",
    "LRSchedule",
    "ConstantLR",
    "StepLR",
    "CosineLR",
    "OneCycleLR",
    "LeCunSDLMSchedule",
    "SCHEDULES",
    "make_schedule",
    "schedule_from_config",
]


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------


def _as_float(
    name: str,
    value: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> float:
    """Convert ``value`` to a finite Python float and check its bounds.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    value : real number
        Value to check.
    ge, gt, lt, le : float, optional
        Inclusive / exclusive lower and upper bounds.

    Returns
    -------
    float
        ``value`` as a plain Python float.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (``bool`` is rejected too).
    ValueError
        If ``value`` is not finite or violates a bound.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if ge is not None and not v >= ge:
        raise ValueError(f"{name} must be >= {ge}, got {v!r}")
    if gt is not None and not v > gt:
        raise ValueError(f"{name} must be > {gt}, got {v!r}")
    if le is not None and not v <= le:
        raise ValueError(f"{name} must be <= {le}, got {v!r}")
    if lt is not None and not v < lt:
        raise ValueError(f"{name} must be < {lt}, got {v!r}")
    return v


def _as_int(name: str, value: Any, *, ge: int | None = None) -> int:
    """Convert ``value`` to a Python int (no floats, no bools) and check it.

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If ``value < ge``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if ge is not None and v < ge:
        raise ValueError(f"{name} must be >= {ge}, got {v!r}")
    return v


def _as_bool(name: str, value: Any) -> bool:
    """Accept ``bool``/``numpy.bool_`` only and return a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _read_scalar(state: Mapping, key: str, kind: str) -> Any:
    """Read a 0-d array entry of a state dict as a Python scalar.

    Parameters
    ----------
    state : Mapping
        State dict (a ``dict`` or an ``np.load`` result).
    key : str
        Entry to read.
    kind : {"f", "i", "b", "U"}
        Expected numpy dtype kind: float, signed integer, bool or unicode.

    Returns
    -------
    float, int, bool or str

    Raises
    ------
    ValueError
        If the key is missing, the entry is not 0-d or has the wrong kind.
    """
    if key not in state:
        raise ValueError(f"optimizer state dict is missing the entry {key!r}")
    arr = np.asarray(state[key])
    if arr.shape != ():
        raise ValueError(
            f"optimizer state dict entry {key!r} must be a 0-d array, got shape {arr.shape}"
        )
    ok = arr.dtype.kind == kind or (kind == "i" and arr.dtype.kind == "u")
    if not ok:
        raise ValueError(
            f"optimizer state dict entry {key!r} has dtype {arr.dtype}, "
            f"expected kind {kind!r}"
        )
    item = arr.item()
    if kind == "f":
        return float(item)
    if kind == "i":
        return int(item)
    if kind == "b":
        return bool(item)
    return str(item)


# --------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------

#: Entries present in every optimizer state dict.
_COMMON_KEYS = ("name", "lr", "base_lr", "step", "num_params")


class Optimizer:
    """Base class for in-place optimizers of one flat ``float32`` vector.

    Subclasses define the update rule; this class handles the learning rate,
    input validation, lazy allocation of state/scratch buffers, the step
    counter and (de)serialisation of the state.

    Parameters
    ----------
    lr : float
        Initial learning rate, ``>= 0``.  Stored as :attr:`base_lr` and as
        the initial value of :attr:`lr`.

    Attributes
    ----------
    base_lr : float
        Learning rate given to the constructor.  Schedules typically scale
        from it.
    lr : float
        Learning rate used by the next :meth:`step`.  Writable; a schedule
        sets it before every step.
    step_count : int
        Number of completed steps (read-only).

    Notes
    -----
    Subclass contract (for adding new optimizers):

    * ``name``: registry/state-dict name (class attribute).
    * ``_HPARAM_KINDS``: ``{hyperparameter: "f" | "b"}`` for everything except
      the learning rate; these are stored in the state dict as 0-d
      ``float64``/``bool`` arrays.
    * ``_check_hparams(**hp) -> dict``: validate and normalise
      hyperparameters (class method; raises ``ValueError`` naming the
      argument).
    * ``_hparams() -> dict`` / ``_set_hparams(hp)``: get / set them.
    * ``_buffer_names_for(hp) -> tuple[str, ...]``: persistent ``float32``
      buffers of the parameter size (class method).
    * ``_num_scratch() -> int``: number of scratch vectors needed.
    * ``_update(params, grads, t)``: apply step number ``t`` (1-based) using
      ``self._buffers`` and ``self._scratch``; must not allocate.
    """

    name: ClassVar[str] = "optimizer"
    _HPARAM_KINDS: ClassVar[dict[str, str]] = {}

    def __init__(self, lr: float) -> None:
        lr = _as_float("lr", lr, ge=0.0)
        self.base_lr: float = lr
        self._lr: float = lr
        self._step: int = 0
        self._size: int | None = None
        self._buffers: dict[str, np.ndarray] = {}
        self._scratch: list[np.ndarray] = []
        self._bound_params: np.ndarray | None = None
        self._bound_grads: np.ndarray | None = None

    # -- learning rate ---------------------------------------------------
    @property
    def lr(self) -> float:
        """Current learning rate (float, ``>= 0``; writable)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # Always store a Python float: a numpy float64 scalar would not be a
        # "weak" scalar for numpy 2 promotion and would change the rounding.
        self._lr = _as_float("lr", value, ge=0.0)

    @property
    def step_count(self) -> int:
        """Number of completed :meth:`step` calls (restored by :meth:`load_state_dict`)."""
        return self._step

    @property
    def num_params(self) -> int | None:
        """Size of the parameter vector the state is bound to, or ``None``."""
        return self._size

    # -- subclass hooks --------------------------------------------------
    @classmethod
    def _check_hparams(cls, **hp: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _hparams(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_hparams(self, hp: Mapping[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _buffer_names_for(cls, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

    def _num_scratch(self) -> int:
        return 1

    def _update(self, params: np.ndarray, grads: np.ndarray, t: int) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- stepping ----------------------------------------------------------
    def _bind(self, params: Any, grads: Any) -> None:
        """Validate a new ``(params, grads)`` pair and allocate buffers."""
        for label, arr in (("params", params), ("grads", grads)):
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"{label} must be a numpy.ndarray, got {type(arr).__name__}")
            if arr.dtype != np.float32:
                raise TypeError(f"{label} must have dtype float32, got {arr.dtype}")
            if arr.ndim != 1:
                raise ValueError(f"{label} must be 1-D, got shape {arr.shape}")
            if not arr.flags.c_contiguous:
                raise ValueError(f"{label} must be contiguous")
        if params.shape != grads.shape:
            raise ValueError(
                f"params and grads must have the same shape, got {params.shape} and {grads.shape}"
            )
        if not params.flags.writeable:
            raise ValueError("params must be writeable (the update is in place)")
        if np.may_share_memory(params, grads):
            raise ValueError("params and grads must not share memory")
        n = params.shape[0]
        if self._size is not None and n != self._size:
            raise ValueError(
                f"{type(self).__name__} state is for {self._size} parameters, "
                f"got vectors of {n}"
            )
        if self._step == 0:
            names = self._buffer_names_for(self._hparams())
            if any(nm not in self._buffers for nm in names):
                self._buffers = {nm: np.zeros(n, dtype=np.float32) for nm in names}
        k = self._num_scratch()
        if len(self._scratch) != k or (k and self._scratch[0].shape[0] != n):
            self._scratch = [np.empty(n, dtype=np.float32) for _ in range(k)]
        self._size = n
        self._bound_params = params
        self._bound_grads = grads

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Apply one update to ``params`` in place.

        Parameters
        ----------
        params : numpy.ndarray
            1-D, C-contiguous, writeable ``float32`` parameter vector.
        grads : numpy.ndarray
            1-D, C-contiguous ``float32`` gradient of the same shape.  It is
            not modified.

        Raises
        ------
        TypeError
            If an argument is not an ndarray or not ``float32``.
        ValueError
            If shapes differ, arrays are not 1-D/contiguous, ``params`` is
            read-only, the two overlap, or the size differs from the size the
            optimizer state was built for.

        Notes
        -----
        Validation runs only when ``params`` or ``grads`` is a different
        object than on the previous call; do not reshape or retype the same
        array objects between calls.
        """
        if params is not self._bound_params or grads is not self._bound_grads:
            self._bind(params, grads)
        t = self._step + 1
        self._update(params, grads, t)
        self._step = t

    # -- serialisation -----------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Return the full optimizer state as numpy arrays.

        Returns
        -------
        dict of str to numpy.ndarray
            ``name`` (0-d unicode), ``lr``, ``base_lr`` (0-d float64),
            ``step``, ``num_params`` (0-d int64; ``-1`` before the first
            step), one 0-d entry per hyperparameter, and, once at least one
            step has been taken, copies of the ``float32`` state buffers.
            Everything can be written with :func:`numpy.savez` and read back
            with ``allow_pickle=False``.  Callers that store several
            components in one file should prefix the keys themselves.
        """
        d: dict[str, np.ndarray] = {
            "name": np.array(self.name),
            "lr": np.array(self._lr, dtype=np.float64),
            "base_lr": np.array(self.base_lr, dtype=np.float64),
            "step": np.array(self._step, dtype=np.int64),
            "num_params": np.array(-1 if self._size is None else self._size, dtype=np.int64),
        }
        hp = self._hparams()
        for key, kind in self._HPARAM_KINDS.items():
            d[key] = np.array(hp[key], dtype=np.bool_ if kind == "b" else np.float64)
        if self._step > 0:
            for key in self._buffer_names_for(hp):
                d[key] = self._buffers[key].copy()
        return d

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state produced by :meth:`state_dict`.

        Hyperparameters, ``lr``, ``base_lr``, the step count and the buffers
        are all replaced, so the optimizer continues bit-for-bit like the one
        that was saved.  Nothing is modified if validation fails.

        Parameters
        ----------
        state : Mapping
            A dict from :meth:`state_dict` or the result of :func:`numpy.load`
            on a file written from it.

        Raises
        ------
        TypeError
            If ``state`` is not a mapping.
        ValueError
            If the state belongs to a different optimizer kind, has missing,
            unexpected or malformed entries, buffers of the wrong shape or
            dtype, or a parameter count different from the one this
            optimizer is already bound to.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping, got {type(state).__name__}")
        name = _read_scalar(state, "name", "U")
        if name != self.name:
            raise ValueError(
                f"state dict is for optimizer {name!r}, cannot load it into {self.name!r}"
            )
        lr = _as_float("lr", _read_scalar(state, "lr", "f"), ge=0.0)
        base_lr = _as_float("base_lr", _read_scalar(state, "base_lr", "f"), ge=0.0)
        step = _as_int("step", _read_scalar(state, "step", "i"), ge=0)
        num_params = _as_int("num_params", _read_scalar(state, "num_params", "i"), ge=-1)
        raw = {k: _read_scalar(state, k, kind) for k, kind in self._HPARAM_KINDS.items()}
        hp = self._check_hparams(**raw)

        buffer_names = self._buffer_names_for(hp) if step > 0 else ()
        allowed = set(_COMMON_KEYS) | set(self._HPARAM_KINDS) | set(buffer_names)
        extra = sorted(set(state.keys()) - allowed)
        if extra:
            raise ValueError(f"unexpected entries in {self.name!r} state dict: {extra}")
        if step > 0 and num_params < 0:
            raise ValueError("state dict has step > 0 but num_params == -1")
        if self._size is not None and num_params >= 0 and num_params != self._size:
            raise ValueError(
                f"state dict is for {num_params} parameters, this optimizer is bound "
                f"to {self._size}"
            )
        buffers: dict[str, np.ndarray] = {}
        for key in buffer_names:
            if key not in state:
                raise ValueError(f"{self.name!r} state dict is missing buffer {key!r}")
            arr = np.asarray(state[key])
            if arr.dtype != np.float32:
                raise ValueError(f"buffer {key!r} must be float32, got {arr.dtype}")
            if arr.shape != (num_params,):
                raise ValueError(
                    f"buffer {key!r} has shape {arr.shape}, expected ({num_params},)"
                )
            buffers[key] = np.array(arr, dtype=np.float32, order="C", copy=True)

        # commit
        self._set_hparams(hp)
        self.base_lr = base_lr
        self._lr = lr
        self._step = step
        self._size = None if num_params < 0 else num_params
        self._buffers = buffers
        self._scratch = []
        self._bound_params = None
        self._bound_grads = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"lr": self._lr, **self._hparams()}.items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Follows ``torch.optim.SGD`` (with ``dampening=0``)::

        g = grad + weight_decay * p
        if momentum:
            buf = g                      (first step)
            buf = momentum * buf + g     (later steps)
            g = g + momentum * buf  if nesterov else buf
        p -= lr * g

    Parameters
    ----------
    lr : float, default 0.01
        Learning rate, ``>= 0``.
    momentum : float, default 0.0
        Momentum factor, ``>= 0``.
    nesterov : bool, default False
        Use Nesterov momentum; requires ``momentum > 0``.
    weight_decay : float, default 0.0
        L2 penalty coefficient added to the gradient, ``>= 0``.

    Raises
    ------
    ValueError
        For out-of-range hyperparameters (the message names the argument).

    Notes
    -----
    Numpy calls per step: 2 (plain), +2 with weight decay, +2 with momentum,
    +2 with Nesterov.  Memory: one momentum buffer (if ``momentum > 0``) and
    one scratch vector (two for Nesterov with weight decay).
    """

    name: ClassVar[str] = "sgd"
    _HPARAM_KINDS: ClassVar[dict[str, str]] = {
        "momentum": "f",
        "nesterov": "b",
        "weight_decay": "f",
    }

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        self._set_hparams(
            self._check_hparams(momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
        )

    @classmethod
    def _check_hparams(cls, *, momentum: Any, nesterov: Any, weight_decay: Any) -> dict[str, Any]:
        momentum = _as_float("momentum", momentum, ge=0.0)
        nesterov = _as_bool("nesterov", nesterov)
        weight_decay = _as_float("weight_decay", weight_decay, ge=0.0)
        if nesterov and momentum <= 0.0:
            raise ValueError("nesterov=True requires momentum > 0")
        return {"momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}

    def _hparams(self) -> dict[str, Any]:
        return {
            "momentum": self._momentum,
            "nesterov": self._nesterov,
            "weight_decay": self._weight_decay,
        }

    def _set_hparams(self, hp: Mapping[str, Any]) -> None:
        self._momentum: float = hp["momentum"]
        self._nesterov: bool = hp["nesterov"]
        self._weight_decay: float = hp["weight_decay"]

    @property
    def momentum(self) -> float:
        """Momentum factor (read-only)."""
        return self._momentum

    @property
    def nesterov(self) -> bool:
        """Whether Nesterov momentum is used (read-only)."""
        return self._nesterov

    @property
    def weight_decay(self) -> float:
        """L2 weight-decay coefficient (read-only)."""
        return self._weight_decay

    @classmethod
    def _buffer_names_for(cls, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if hp["momentum"] > 0.0 else ()

    def _num_scratch(self) -> int:
        return 0

    def _update(self, params: np.ndarray, grads: np.ndarray, t: int) -> None:
        buf = self._buffers.get("momentum_buffer", _EMPTY)
        _optim.sgd(params, grads, buf, self._lr, self._momentum, self._weight_decay,
                   self._nesterov, t == 1)


class Adam(Optimizer):
    """Adam with L2 weight decay, following ``torch.optim.Adam`` (``amsgrad=False``).

    For step ``t = 1, 2, ...``::

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p -= (lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The bias corrections are computed in Python floats once per step.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, ``>= 0``.
    betas : tuple of float, default (0.9, 0.999)
        Decay rates of the first and second moment estimates, each in
        ``[0, 1)``.
    eps : float, default 1e-8
        Denominator term, ``> 0``.
    weight_decay : float, default 0.0
        L2 penalty coefficient added to the gradient (not decoupled), ``>= 0``.

    Raises
    ------
    ValueError
        For out-of-range hyperparameters (the message names the argument).

    Notes
    -----
    13 numpy calls per step (+2 with weight decay).  Memory: two moment
    buffers and one scratch vector (two with weight decay).
    """

    name: ClassVar[str] = "adam"
    _HPARAM_KINDS: ClassVar[dict[str, str]] = {
        "beta1": "f",
        "beta2": "f",
        "eps": "f",
        "weight_decay": "f",
    }

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair of floats, got {betas!r}") from None
        self._set_hparams(
            self._check_hparams(beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
        )

    @classmethod
    def _check_hparams(
        cls, *, beta1: Any, beta2: Any, eps: Any, weight_decay: Any
    ) -> dict[str, Any]:
        return {
            "beta1": _as_float("betas[0]", beta1, ge=0.0, lt=1.0),
            "beta2": _as_float("betas[1]", beta2, ge=0.0, lt=1.0),
            "eps": _as_float("eps", eps, gt=0.0),
            "weight_decay": _as_float("weight_decay", weight_decay, ge=0.0),
        }

    def _hparams(self) -> dict[str, Any]:
        return {
            "beta1": self._beta1,
            "beta2": self._beta2,
            "eps": self._eps,
            "weight_decay": self._weight_decay,
        }

    def _set_hparams(self, hp: Mapping[str, Any]) -> None:
        self._beta1: float = hp["beta1"]
        self._beta2: float = hp["beta2"]
        self._eps: float = hp["eps"]
        self._weight_decay: float = hp["weight_decay"]

    @property
    def betas(self) -> tuple[float, float]:
        """``(beta1, beta2)`` (read-only)."""
        return (self._beta1, self._beta2)

    @property
    def eps(self) -> float:
        """Denominator epsilon (read-only)."""
        return self._eps

    @property
    def weight_decay(self) -> float:
        """L2 weight-decay coefficient (read-only)."""
        return self._weight_decay

    @classmethod
    def _buffer_names_for(cls, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _num_scratch(self) -> int:
        return 0

    def _update(self, params: np.ndarray, grads: np.ndarray, t: int) -> None:
        bc1 = 1.0 - self._beta1**t
        bc2_sqrt = math.sqrt(1.0 - self._beta2**t)
        _optim.adam(params, grads, self._buffers["exp_avg"], self._buffers["exp_avg_sq"],
                    self._lr / bc1, bc2_sqrt, self._beta1, self._beta2, self._eps,
                    self._weight_decay)


#: Optimizer registry used by :func:`make_optimizer`.  New optimizers (e.g.
#: a stochastic diagonal Levenberg-Marquardt "sdlm") register here together
#: with their by-name defaults in ``_NAME_DEFAULTS``.
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}

#: Constructor defaults applied when an optimizer is created by name.
_NAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.01, "momentum": 0.9},
    "adam": {"lr": 1e-3},
}


def make_optimizer(name: str, lr: float | None = None, **kw: Any) -> Optimizer:
    """Create an optimizer by name.

    Parameters
    ----------
    name : {"sgd", "adam", "sdlm"}
        Optimizer name (case-insensitive).
    lr : float, optional
        Learning rate.  Defaults: 0.01 for ``"sgd"``, 1e-3 for ``"adam"``,
        0.0002 for ``"sdlm"`` (:class:`lenet_fast.sdlm.SDLM`, ``mu = 0.02``; the
        paper's eta 0.0005 scaled by 0.4, see `lenet_fast.sdlm`).
    **kw
        Other constructor arguments.  For ``"sgd"`` the momentum defaults to
        0.9 (unlike the :class:`SGD` constructor, whose default is 0).

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the choices) or a
        hyperparameter is invalid.
    TypeError
        If an unknown keyword argument is given.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}"
        )
    args = dict(_NAME_DEFAULTS.get(key, {}))
    if lr is not None:
        args["lr"] = lr
    args.update(kw)
    return OPTIMIZERS[key](**args)


# --------------------------------------------------------------------------
# learning-rate schedules
# --------------------------------------------------------------------------


class LRSchedule:
    """Base class of learning-rate schedules.

    A schedule is a pure function of its constructor arguments and the
    0-based global step index.  Schedules compare equal when their type and
    :meth:`to_config` agree.
    """

    name: ClassVar[str] = "schedule"

    def lr_at(self, step: int) -> float:  # pragma: no cover - abstract
        """Learning rate to use for global step ``step`` (0-based)."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_config(self) -> dict[str, Any]:
        """Return a JSON-serialisable description.

        Returns
        -------
        dict
            ``{"name": ..., <constructor arguments>}`` with plain Python
            ``str``/``int``/``float`` values; :func:`schedule_from_config`
            rebuilds an equal schedule from it.
        """
        return {"name": self.name, **self._params()}

    @staticmethod
    def _check_step(step: Any) -> int:
        step = operator.index(step)
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return step

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_config() == other.to_config()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self._params().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class ConstantLR(LRSchedule):
    """Constant learning rate.

    Parameters
    ----------
    base_lr : float
        Learning rate returned for every step, ``>= 0``.
    """

    name: ClassVar[str] = "constant"

    def __init__(self, base_lr: float) -> None:
        self.base_lr = _as_float("base_lr", base_lr, ge=0.0)

    def _params(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr}

    def lr_at(self, step: int) -> float:
        """Return ``base_lr``."""
        self._check_step(step)
        return self.base_lr


class StepLR(LRSchedule):
    """Step decay: ``lr = base_lr * gamma ** (step // step_size)``.

    Parameters
    ----------
    base_lr : float
        Initial learning rate, ``>= 0``.
    step_size : int
        Number of steps between decays, ``>= 1``.
    gamma : float, default 0.1
        Multiplicative decay factor, ``> 0``.
    """

    name: ClassVar[str] = "step"

    def __init__(self, base_lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.base_lr = _as_float("base_lr", base_lr, ge=0.0)
        self.step_size = _as_int("step_size", step_size, ge=1)
        self.gamma = _as_float("gamma", gamma, gt=0.0)

    def _params(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "step_size": self.step_size, "gamma": self.gamma}

    def lr_at(self, step: int) -> float:
        """Return ``base_lr * gamma ** (step // step_size)``."""
        step = self._check_step(step)
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineLR(LRSchedule):
    """Linear warmup followed by cosine decay to ``min_lr``.

    * ``step < warmup_steps``: ``base_lr * (step + 1) / (warmup_steps + 1)``,
      a linear ramp starting near 0 that reaches ``base_lr`` at
      ``step == warmup_steps``;
    * ``warmup_steps <= step < total_steps``:
      ``min_lr + (base_lr - min_lr) * (1 + cos(pi * q)) / 2`` with
      ``q = (step - warmup_steps) / (total_steps - warmup_steps)``;
    * ``step >= total_steps``: ``min_lr``.

    Without warmup, ``lr_at(0) == base_lr``, ``lr_at(total_steps // 2)`` is
    the midpoint (for even ``total_steps``) and ``lr_at(total_steps) ==
    min_lr``.

    Parameters
    ----------
    base_lr : float
        Peak learning rate, ``>= 0``.
    total_steps : int
        Step at which ``min_lr`` is reached, ``>= 1``.
    min_lr : float, default 0.0
        Final learning rate, ``>= 0``.
    warmup_steps : int, default 0
        Length of the linear warmup, ``0 <= warmup_steps <= total_steps``.
    """

    name: ClassVar[str] = "cosine"

    def __init__(
        self,
        base_lr: float,
        total_steps: int,
        min_lr: float = 0.0,
        warmup_steps: int = 0,
    ) -> None:
        self.base_lr = _as_float("base_lr", base_lr, ge=0.0)
        self.total_steps = _as_int("total_steps", total_steps, ge=1)
        self.min_lr = _as_float("min_lr", min_lr, ge=0.0)
        self.warmup_steps = _as_int("warmup_steps", warmup_steps, ge=0)
        if self.warmup_steps > self.total_steps:
            raise ValueError(
                f"warmup_steps must be <= total_steps ({self.total_steps}), "
                f"got {self.warmup_steps}"
            )

    def _params(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "min_lr": self.min_lr,
            "warmup_steps": self.warmup_steps,
        }

    def lr_at(self, step: int) -> float:
        """Learning rate for global step ``step`` (see class docstring)."""
        step = self._check_step(step)
        w = self.warmup_steps
        if step < w:
            return self.base_lr * (step + 1) / (w + 1)
        if step >= self.total_steps:
            return self.min_lr
        q = (step - w) / (self.total_steps - w)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * q))


class OneCycleLR(LRSchedule):
    """One-cycle policy with cosine annealing (PyTorch ``OneCycleLR``, two phases).

    With ``initial = max_lr / div_factor`` and
    ``final = initial / final_div_factor`` and ``peak = pct_start *
    total_steps - 1`` (a float, as in PyTorch):

    * ``0 <= step <= peak``: cosine from ``initial`` (step 0) to ``max_lr``
      (at ``peak``);
    * ``peak < step <= total_steps - 1``: cosine from ``max_lr`` to
      ``final`` (reached at the last step, ``total_steps - 1``);
    * later steps stay at ``final`` (PyTorch raises there instead).

    Momentum cycling is not part of this schedule.

    Parameters
    ----------
    max_lr : float
        Peak learning rate, ``>= 0``.
    total_steps : int
        Number of steps in the cycle, ``>= 1``.
    pct_start : float, default 0.3
        Fraction of the cycle spent increasing the rate, in ``(0, 1)``.
    div_factor : float, default 25.0
        ``initial = max_lr / div_factor``, ``> 0``.
    final_div_factor : float, default 1e4
        ``final = initial / final_div_factor``, ``> 0``.
    """

    name: ClassVar[str] = "onecycle"

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        self.max_lr = _as_float("max_lr", max_lr, ge=0.0)
        self.total_steps = _as_int("total_steps", total_steps, ge=1)
        self.pct_start = _as_float("pct_start", pct_start, gt=0.0, lt=1.0)
        self.div_factor = _as_float("div_factor", div_factor, gt=0.0)
        self.final_div_factor = _as_float("final_div_factor", final_div_factor, gt=0.0)
        self.initial_lr = self.max_lr / self.div_factor
        self.final_lr = self.initial_lr / self.final_div_factor
        self._peak = float(self.pct_start * self.total_steps) - 1.0
        self._end = float(self.total_steps - 1)

    def _params(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }

    @staticmethod
    def _cos(start: float, end: float, frac: float) -> float:
        return end + (start - end) * 0.5 * (math.cos(math.pi * frac) + 1.0)

    def lr_at(self, step: int) -> float:
        """Learning rate for global step ``step`` (see class docstring)."""
        step = self._check_step(step)
        if step >= self._end:
            return self.final_lr
        if step <= self._peak:
            # here 0 <= step <= peak, so peak > 0 unless step == peak == 0
            frac = step / self._peak if self._peak > 0.0 else 1.0
            return self._cos(self.initial_lr, self.max_lr, frac)
        frac = (step - self._peak) / (self._end - self._peak)
        return self._cos(self.max_lr, self.final_lr, frac)


class LeCunSDLMSchedule(LRSchedule):
    """The step size schedule of LeCun et al. (1998) for SDLM, by pass over the data.

    With ``epoch = step // steps_per_epoch`` (0-based; the paper counts passes from
    1) and the paper's ``base_lr = 0.0005``:

    * passes 1-2 (epochs 0-1): 0.0005;
    * passes 3-5 (epochs 2-4): 0.0002;
    * passes 6-8 (epochs 5-7): 0.0001;
    * passes 9-12 (epochs 8-11): 0.00005;
    * later passes: 0.00001.

    Another ``base_lr`` scales every value by ``base_lr / 0.0005``.

    Parameters
    ----------
    steps_per_epoch : int
        Optimizer steps per pass over the training set, ``>= 1``.
    base_lr : float, default 0.0005
        Rate of the first two passes, ``>= 0``.
    """

    name: ClassVar[str] = "lecun98"
    #: (last pass, eta) of the paper; after the last entry: ``_FINAL``.
    _PASSES: ClassVar[tuple[tuple[int, float], ...]] = (
        (2, 0.0005), (5, 0.0002), (8, 0.0001), (12, 0.00005))
    _FINAL: ClassVar[float] = 0.00001
    _PAPER_BASE: ClassVar[float] = 0.0005

    def __init__(self, steps_per_epoch: int, base_lr: float = 0.0005) -> None:
        self.steps_per_epoch = _as_int("steps_per_epoch", steps_per_epoch, ge=1)
        self.base_lr = _as_float("base_lr", base_lr, ge=0.0)

    def _params(self) -> dict[str, Any]:
        return {"steps_per_epoch": self.steps_per_epoch, "base_lr": self.base_lr}

    def lr_at(self, step: int) -> float:
        """Learning rate for global step ``step`` (see class docstring)."""
        step = self._check_step(step)
        passes = step // self.steps_per_epoch + 1  # 1-based, as in the paper
        eta = self._FINAL
        for last, value in self._PASSES:
            if passes <= last:
                eta = value
                break
        scale = self.base_lr / self._PAPER_BASE
        return eta if scale == 1.0 else eta * scale


#: Schedule registry used by :func:`schedule_from_config`.
SCHEDULES: dict[str, type[LRSchedule]] = {
    "constant": ConstantLR,
    "step": StepLR,
    "cosine": CosineLR,
    "onecycle": OneCycleLR,
    "lecun98": LeCunSDLMSchedule,
}


def make_schedule(
    name: str,
    base_lr: float,
    total_steps: int,
    steps_per_epoch: int,
    **overrides: Any,
) -> LRSchedule:
    """Create a schedule by name with defaults suited to a training run.

    Parameters
    ----------
    name : {"constant", "step", "cosine", "onecycle", "lecun98"}
        Schedule name (case-insensitive):

        * ``"constant"``: :class:`ConstantLR` ``(base_lr)``;
        * ``"step"``: :class:`StepLR` with ``step_size = max(1, total_steps
          // 3)`` and ``gamma = 0.1``, i.e. the rate drops tenfold after each
          third of the run (``base_lr``, ``base_lr/10``, ``base_lr/100``);
        * ``"cosine"``: :class:`CosineLR` ``(base_lr, total_steps)``, no
          warmup, ``min_lr = 0``;
        * ``"onecycle"``: :class:`OneCycleLR` with ``max_lr = base_lr`` and
          PyTorch's defaults;
        * ``"lecun98"``: :class:`LeCunSDLMSchedule` ``(steps_per_epoch,
          base_lr)``, the paper's SDLM schedule by pass (any run length).
    base_lr : float
        Base (or peak, for one-cycle) learning rate.
    total_steps : int
        Total number of optimizer steps in the run, ``>= 1``.
    steps_per_epoch : int
        Optimizer steps per epoch, ``>= 1``.  Validated but not used by the
        built-in schedules, which are all defined in terms of
        ``total_steps``; kept so epoch-based schedules can be added without
        changing callers.
    **overrides
        Constructor arguments replacing the defaults above (e.g.
        ``warmup_steps=500`` for ``"cosine"``).

    Returns
    -------
    LRSchedule

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the choices) or an argument
        is out of range.
    """
    key = name.lower() if isinstance(name, str) else name
    total_steps = _as_int("total_steps", total_steps, ge=1)
    _as_int("steps_per_epoch", steps_per_epoch, ge=1)
    if key == "constant":
        args: dict[str, Any] = {"base_lr": base_lr}
    elif key == "step":
        args = {"base_lr": base_lr, "step_size": max(1, total_steps // 3), "gamma": 0.1}
    elif key == "cosine":
        args = {"base_lr": base_lr, "total_steps": total_steps}
    elif key == "onecycle":
        args = {"max_lr": base_lr, "total_steps": total_steps}
    elif key == "lecun98":
        args = {"steps_per_epoch": steps_per_epoch, "base_lr": base_lr}
    else:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    args.update(overrides)
    return SCHEDULES[key](**args)


def schedule_from_config(cfg: Mapping[str, Any]) -> LRSchedule:
    """Rebuild a schedule from :meth:`LRSchedule.to_config` output.

    Parameters
    ----------
    cfg : Mapping
        ``{"name": <schedule name>, <constructor arguments>}``.

    Returns
    -------
    LRSchedule

    Raises
    ------
    ValueError
        If ``name`` is missing or unknown, or the arguments do not match the
        schedule's constructor or are out of range.
    """
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise ValueError("schedule config must be a mapping with a 'name' entry")
    args = dict(cfg)
    name = args.pop("name")
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    try:
        return SCHEDULES[name](**args)
    except TypeError as exc:
        raise ValueError(f"invalid config for schedule {name!r}: {exc}") from None


# --------------------------------------------------------------------------
# stochastic diagonal Levenberg-Marquardt (lenet_fast.sdlm)
# --------------------------------------------------------------------------
# SDLM lives in lenet_fast.sdlm (it needs the model's kernels for its Hessian
# estimate); it subclasses Optimizer, defined above, so it is imported here at the
# end and registered like the built-in optimizers.
from .sdlm import SDLM  # noqa: E402

OPTIMIZERS["sdlm"] = SDLM
_NAME_DEFAULTS["sdlm"] = {"lr": 0.0002, "mu": 0.02}
__all__ += ["SDLM"]
