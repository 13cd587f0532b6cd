"""`Optimizer`: the one-flat-vector optimizer that SGD, Adam and SDLM subclass
(state buffers, checked hyperparameters, state dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..._compute._checks import as_float as _as_float
from ..._compute._checks import as_int as _as_int

_EMPTY = np.empty(0, dtype=np.float32)  # the momentum buffer of momentum-free SGD


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
    def get(self):
        return self._hp[name]

    return property(get, doc=doc)


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


