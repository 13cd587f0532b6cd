"""The optimizers by name: `OPTIMIZERS` and `make_optimizer` (the command line's
``--optimizer`` offers every registered name)."""

from __future__ import annotations

from typing import Any

from ._base import Optimizer
from .first_order import SGD, Adam
from .sdlm import DEFAULT_ETA, SDLM

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
        0.0005 scaled by 0.4, see `lenet_fast.optim`).
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
