"""Optimizers of one flat parameter vector: SGD, Adam and SDLM.

The model keeps every trainable parameter as a view into one contiguous
``float32`` array, and the backward pass writes every gradient into a second
contiguous array of the same shape. Each optimizer here updates that one vector
from that one gradient vector with one compiled call per step (the kernels' `sgd`, `adam`, `scaled_sgd`: csrc/_optim.pxi,
over the update kernels of ``csrc/lf_update.pxd``):

* state buffers are allocated when the ``(params, grads)`` pair is first seen (or on
  `Optimizer.load_state_dict`) and reused afterwards, so a step allocates nothing;
* input validation runs only when the ``(params, grads)`` pair changes identity;
* scalar factors (bias corrections, step sizes) are Python floats, which numpy 2
  treats as "weak" scalars.

A new optimizer is a subclass of `Optimizer` registered in `OPTIMIZERS` (with its
by-name defaults in ``_NAME_DEFAULTS``); the command line's ``--optimizer`` offers
every registered name. Learning-rate schedules are in `lenet_fast.schedules`;
SDLM's curvature estimate in `lenet_fast.sdlm`.

Examples
--------
>>> import numpy as np
>>> from lenet_fast.schedules import make_schedule
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
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ._isa import kernels as _optim
from ._checks import as_bool as _as_bool, as_float as _as_float, as_int as _as_int
from .sdlm import PAPER_SAMPLES, estimate_hessian_diagonal

_EMPTY = np.empty(0, dtype=np.float32)  # the momentum buffer of momentum-free SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "SDLM",
    "PAPER_ETA",
    "DEFAULT_ETA",
    "OPTIMIZERS",
    "make_optimizer",
]

#: The paper's eta for passes 1-2 of SDLM (its schedule:
#: `lenet_fast.schedules.LeCunSDLMSchedule`).
PAPER_ETA = 0.0005

#: SDLM's default eta: the paper's scaled by 0.4 (`lenet_fast.sdlm` explains why).
DEFAULT_ETA = 0.0002


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


def _hyperparameter(name: str, doc: str) -> property:
    """A read-only property of an optimizer's hyperparameter `name` (``self._hp``)."""
    return property(lambda self: self._hp[name], doc=doc)


class Optimizer:
    """Base class for in-place optimizers of one flat ``float32`` vector.

    Subclasses define the update rule; this class handles the learning rate,
    input validation, lazy allocation of the state buffers, the step counter
    and (de)serialisation of the state.

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
      argument). The constructor stores its result in ``self._hp``, which
      the update and the read-only properties read.
    * ``_buffer_names_for(hp) -> tuple[str, ...]``: persistent ``float32``
      buffers of the parameter size (class method).
    * ``_update(params, grads, t)``: apply step number ``t`` (1-based) using
      ``self._buffers``; must not allocate.
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
        self._bound_params: np.ndarray | None = None
        self._bound_grads: np.ndarray | None = None
        self._hp: dict[str, Any] = {}  # the subclass's hyperparameters (_check_hparams)

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

    @classmethod
    def _buffer_names_for(cls, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

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
            names = self._buffer_names_for(self._hp)
            if any(nm not in self._buffers for nm in names):
                self._buffers = {nm: np.zeros(n, dtype=np.float32) for nm in names}
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
        hp = self._hp
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
        self._hp = hp
        self.base_lr = base_lr
        self._lr = lr
        self._step = step
        self._size = None if num_params < 0 else num_params
        self._buffers = buffers
        self._bound_params = None
        self._bound_grads = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"lr": self._lr, **self._hp}.items())
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
    One compiled call per step (the kernels' `sgd`). Memory: one momentum
    buffer (if ``momentum > 0``).
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
        self._hp = self._check_hparams(momentum=momentum, nesterov=nesterov,
                                       weight_decay=weight_decay)

    @classmethod
    def _check_hparams(cls, *, momentum: Any, nesterov: Any, weight_decay: Any) -> dict[str, Any]:
        momentum = _as_float("momentum", momentum, ge=0.0)
        nesterov = _as_bool("nesterov", nesterov)
        weight_decay = _as_float("weight_decay", weight_decay, ge=0.0)
        if nesterov and momentum <= 0.0:
            raise ValueError("nesterov=True requires momentum > 0")
        return {"momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}

    momentum = _hyperparameter("momentum", "Momentum factor (read-only).")
    nesterov = _hyperparameter("nesterov", "Whether Nesterov momentum is used (read-only).")
    weight_decay = _hyperparameter("weight_decay", "L2 weight-decay coefficient (read-only).")

    @classmethod
    def _buffer_names_for(cls, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if hp["momentum"] > 0.0 else ()

    def _update(self, params: np.ndarray, grads: np.ndarray, t: int) -> None:
        hp = self._hp
        _optim.sgd(params, grads, self._buffers.get("momentum_buffer", _EMPTY), self._lr,
                   hp["momentum"], hp["weight_decay"], hp["nesterov"], t == 1)


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
    One compiled call per step (the kernels' `adam`). Memory: two moment
    buffers.
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
        self._hp = self._check_hparams(beta1=beta1, beta2=beta2, eps=eps,
                                       weight_decay=weight_decay)

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

    @property
    def betas(self) -> tuple[float, float]:
        """``(beta1, beta2)`` (read-only)."""
        return (self._hp["beta1"], self._hp["beta2"])

    eps = _hyperparameter("eps", "Denominator epsilon (read-only).")
    weight_decay = _hyperparameter("weight_decay", "L2 weight-decay coefficient (read-only).")

    @classmethod
    def _buffer_names_for(cls, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _update(self, params: np.ndarray, grads: np.ndarray, t: int) -> None:
        hp = self._hp
        bc1 = 1.0 - hp["beta1"]**t
        bc2_sqrt = math.sqrt(1.0 - hp["beta2"]**t)
        _optim.adam(params, grads, self._buffers["exp_avg"], self._buffers["exp_avg_sq"],
                    self._lr / bc1, bc2_sqrt, hp["beta1"], hp["beta2"], hp["eps"],
                    hp["weight_decay"])


class SDLM(Optimizer):
    """Stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998, appendix C).

    ``p_k -= lr / (mu + h_k) * g_k`` with h the diagonal Gauss-Newton estimate
    (`lenet_fast.sdlm.estimate_hessian_diagonal`). ``lr`` is the paper's eta; the paper's schedule
    over passes is `lenet_fast.schedules.LeCunSDLMSchedule` (name ``"lecun98"``, the
    default when this optimizer is chosen by name in the CLI).

    `before_epoch`, which `lenet_fast.Trainer` calls at the start of every pass,
    re-estimates h on ``samples`` training images drawn with the generator it is
    given. Until h is first estimated (or set with `set_hessian`) it is 0, i.e. the
    update is SGD with learning rate ``lr / mu``.

    Parameters
    ----------
    lr : float, default 0.0002 (`DEFAULT_ETA`)
        eta, the global step size (``>= 0``); the paper's is 0.0005 (`PAPER_ETA`),
        unstable with this model (`lenet_fast.sdlm`).
    mu : float, default 0.02
        Keeps the steps bounded where the curvature is small (``> 0``).
    samples : int, default 500
        Training images drawn for each re-estimate of h.

    Notes
    -----
    The state dict holds ``mu``, ``samples`` and the float32 vector ``hessian``
    (also before the first step, once h has been set), so a resumed run continues
    bit-for-bit.
    """

    name: ClassVar[str] = "sdlm"
    _HPARAM_KINDS: ClassVar[dict[str, str]] = {"mu": "f", "samples": "f"}
    #: The schedule the paper uses with this optimizer (`lenet_fast.schedules.SCHEDULES`).
    default_schedule: ClassVar[str] = "lecun98"

    def __init__(self, lr: float = DEFAULT_ETA, mu: float = 0.02,
                 samples: int = PAPER_SAMPLES) -> None:
        super().__init__(lr)
        self._scale: np.ndarray | None = None
        self._hp = self._check_hparams(mu=mu, samples=samples)

    @classmethod
    def _check_hparams(cls, *, mu: Any, samples: Any) -> dict[str, Any]:
        mu = _as_float("mu", mu, gt=0.0)
        if isinstance(samples, float) and samples.is_integer():  # from a state dict
            samples = int(samples)
        samples = _as_int("samples", samples, ge=1)
        return {"mu": mu, "samples": samples}

    mu = _hyperparameter("mu", "The damping term mu (read-only).")
    samples = _hyperparameter("samples", "Training images per re-estimate of h (read-only).")

    @property
    def hessian(self) -> np.ndarray | None:
        """A copy of the current h (float32), or None before it is set or a first step."""
        h = self._buffers.get("hessian")
        return None if h is None else h.copy()

    @classmethod
    def _buffer_names_for(cls, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return ("hessian", "residual")

    def _update(self, params: np.ndarray, grads: np.ndarray, t: int) -> None:
        _optim.scaled_sgd(params, grads, self._step_scale(), self._lr, self._buffers["residual"])

    def _step_scale(self) -> np.ndarray:
        """``1 / (mu + h)`` (float32), recomputed only when h changes."""
        if self._scale is None:
            h = self._buffers.get("hessian")
            if h is None:
                h = np.zeros(self._size, np.float32)
            self._scale = (np.float32(1.0) / (h + np.float32(self._hp["mu"]))).astype(np.float32)
        return self._scale

    def fused_update(self, params: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bind to ``params``/``grads``; return the per-parameter factor ``1 / (mu + h)``
        and the residual buffer.

        For `lenet_fast.Trainer`'s compiled loop, which makes the update of `step`
        itself (the same kernel, `lf_update.scaled_sgd_compensated`) and then calls
        `advance`. The factor is valid until h next changes.
        """
        if params is not self._bound_params or grads is not self._bound_grads:
            self._bind(params, grads)
        return self._step_scale(), self._buffers["residual"]

    def advance(self, steps: int) -> None:
        """Count ``steps`` updates that a compiled loop made with the factor `fused_update`
        returned."""
        self._step += int(steps)

    # -- h ---------------------------------------------------------------
    def set_hessian(self, h: np.ndarray) -> None:
        """Use h (1-D float32, finite, >= 0, one entry per parameter) from now on."""
        if not isinstance(h, np.ndarray) or h.dtype != np.float32 or h.ndim != 1:
            raise TypeError("h must be a 1-D float32 numpy.ndarray")
        if self._size is not None and h.shape[0] != self._size:
            raise ValueError(f"h has {h.shape[0]} entries; the optimizer is bound to "
                             f"{self._size} parameters")
        if not np.all(np.isfinite(h)) or (h.size and h.min() < 0):
            raise ValueError("h must be finite and >= 0")
        buf = self._buffers.get("hessian")
        if buf is None or buf.shape != h.shape:
            self._buffers["hessian"] = h.copy()
        else:
            np.copyto(buf, h)
        res = self._buffers.get("residual")
        if res is None or res.shape != h.shape:
            self._buffers["residual"] = np.zeros_like(h)
        self._size = h.shape[0]
        self._scale = None

    def before_epoch(self, model, images, labels, epoch, rng) -> None:
        """Re-estimate h on `samples` training images drawn (without replacement) with `rng`.

        Called by `lenet_fast.Trainer` at the start of each pass. `images` are uint8
        (N, 28, 28) digits (or preprocessed float32 (N, 1, 32, 32)); `labels` and
        `epoch` are not needed by the estimate.
        """
        n = len(images)
        idx = rng.choice(n, size=min(self._hp["samples"], n), replace=False)
        self.set_hessian(estimate_hessian_diagonal(model, images[idx]))

    # -- state -------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        d = super().state_dict()
        h = self._buffers.get("hessian")
        if self._step == 0 and h is not None:  # estimated before the first step
            d["hessian"] = h.copy()
            d["num_params"] = np.array(h.shape[0], dtype=np.int64)
        return d

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping, got {type(state).__name__}")
        self._scale = None
        if "hessian" not in state or "step" not in state or int(np.asarray(state["step"])) > 0:
            super().load_state_dict(state)
            return
        # step 0 with an h estimated before the first step: validate, then commit.
        h = np.asarray(state["hessian"])
        rest = {k: v for k, v in state.items() if k != "hessian"}
        num_params = int(np.asarray(rest.get("num_params", -1)))
        if h.dtype != np.float32 or h.shape != (num_params,):
            raise ValueError(f"buffer 'hessian' must be float32 of shape ({num_params},), "
                             f"got {h.dtype} {h.shape}")
        if not np.all(np.isfinite(h)) or (h.size and h.min() < 0):
            raise ValueError("buffer 'hessian' must be finite and >= 0")
        super().load_state_dict(rest)
        self._buffers = {"hessian": np.array(h, dtype=np.float32, order="C", copy=True),
                         "residual": np.zeros(num_params, np.float32)}
        self._size = num_params


#: Optimizer registry used by :func:`make_optimizer` (and the command line's
#: ``--optimizer`` choices).
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "sdlm": SDLM}

#: Constructor defaults applied when an optimizer is created by name.
_NAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.01, "momentum": 0.9},
    "adam": {"lr": 1e-3},
    "sdlm": {"lr": DEFAULT_ETA, "mu": 0.02},
}


def make_optimizer(name: str, lr: float | None = None, **kw: Any) -> Optimizer:
    """Create an optimizer by name.

    Parameters
    ----------
    name : {"sgd", "adam", "sdlm"}
        Optimizer name (case-insensitive).
    lr : float, optional
        Learning rate.  Defaults: 0.01 for ``"sgd"``, 1e-3 for ``"adam"``,
        0.0002 for ``"sdlm"`` (:class:`SDLM`, ``mu = 0.02``; the paper's eta
        0.0005 scaled by 0.4, see `lenet_fast.sdlm`).
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
