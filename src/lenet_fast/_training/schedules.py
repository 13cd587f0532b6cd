"""Learning-rate schedules: pure functions of their constructor arguments and the
global step index.

`lenet_fast.Trainer` queries ``schedule.lr_at(step)`` and assigns the result to
``optimizer.lr`` before each step. Schedules are stored in checkpoints as
`LRSchedule.to_config` and rebuilt by `schedule_from_config`; `make_schedule`
builds one by name with the defaults of a training run. A new schedule is a
subclass of `LRSchedule` registered in `SCHEDULES` (and given its defaults in
`make_schedule`); the command line's ``--schedule`` offers every registered name.

Examples
--------
>>> from lenet_fast.schedules import make_schedule
>>> sched = make_schedule("cosine", 0.1, total_steps=100, steps_per_epoch=10)
>>> sched.lr_at(0), sched.lr_at(100)
(0.1, 0.0)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any, ClassVar

from .._compute._checks import as_float, as_int

__all__ = [
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




class LRSchedule:
    """Base class of learning-rate schedules.

    A schedule is a pure function of its constructor arguments and the
    0-based global step index.  Schedules compare equal when their type and
    :meth:`to_config` agree.
    """

    name: ClassVar[str] = "schedule"

    def lr_at(self, step: int) -> float:
        """Learning rate to use for global step ``step``.

        Parameters
        ----------
        step : int
            The global step, 0-based.

        Returns
        -------
        float
            As the class's docstring says.

        Raises
        ------
        ValueError
            For a negative step.
        """
        return self._lr(self._check_step(step))

    def _lr(self, step: int) -> float:  # pragma: no cover - abstract
        """The rate at a checked step: what a schedule defines."""
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
        self.base_lr = as_float("base_lr", base_lr, ge=0.0)

    def _params(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr}

    def _lr(self, step: int) -> float:
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
        self.base_lr = as_float("base_lr", base_lr, ge=0.0)
        self.step_size = as_int("step_size", step_size, ge=1)
        self.gamma = as_float("gamma", gamma, gt=0.0)

    def _params(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "step_size": self.step_size, "gamma": self.gamma}

    def _lr(self, step: int) -> float:
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

    def __init__(self, base_lr: float, total_steps: int, min_lr: float = 0.0,
                 warmup_steps: int = 0) -> None:
        self.base_lr = as_float("base_lr", base_lr, ge=0.0)
        self.total_steps = as_int("total_steps", total_steps, ge=1)
        self.min_lr = as_float("min_lr", min_lr, ge=0.0)
        self.warmup_steps = as_int("warmup_steps", warmup_steps, ge=0)
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

    def _lr(self, step: int) -> float:
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

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4) -> None:
        self.max_lr = as_float("max_lr", max_lr, ge=0.0)
        self.total_steps = as_int("total_steps", total_steps, ge=1)
        self.pct_start = as_float("pct_start", pct_start, gt=0.0, lt=1.0)
        self.div_factor = as_float("div_factor", div_factor, gt=0.0)
        self.final_div_factor = as_float("final_div_factor", final_div_factor, gt=0.0)
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

    def _lr(self, step: int) -> float:
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
        self.steps_per_epoch = as_int("steps_per_epoch", steps_per_epoch, ge=1)
        self.base_lr = as_float("base_lr", base_lr, ge=0.0)

    def _params(self) -> dict[str, Any]:
        return {"steps_per_epoch": self.steps_per_epoch, "base_lr": self.base_lr}

    def _lr(self, step: int) -> float:
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
    total_steps = as_int("total_steps", total_steps, ge=1)
    as_int("steps_per_epoch", steps_per_epoch, ge=1)
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
        Equal to the schedule that wrote `cfg`.

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
