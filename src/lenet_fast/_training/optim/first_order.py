"""First-order optimizers: SGD (momentum, Nesterov, weight decay) and Adam."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..._isa import kernels as _kernels
from ..._compute._checks import as_bool as _as_bool
from ..._compute._checks import as_float as _as_float
from ._base import _EMPTY, Optimizer, _hyperparameter


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
        _kernels.sgd(params, grads, self._buffers.get("momentum_buffer", _EMPTY), self._lr,
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
        When a hyperparameter is out of its range; the message names it.

    Notes
    -----
    Each step is one compiled call (the kernels' ``adam``) and keeps two moment
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
        _kernels.adam(params, grads, self._buffers["exp_avg"], self._buffers["exp_avg_sq"],
                    self._lr / bc1, bc2_sqrt, hp["beta1"], hp["beta2"], hp["eps"],
                    hp["weight_decay"])


