"""Argument checks shared by the optimizers (`lenet_fast.optim`), the learning-rate
schedules (`lenet_fast.schedules`) and the curvature estimate (`lenet_fast.optim`).

Each returns a plain Python scalar (numpy 2 treats Python floats as "weak" scalars, so
arithmetic with float32 arrays stays float32) or raises a `TypeError` / `ValueError`
naming the argument.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import numpy as np

__all__ = ["as_float", "as_int", "as_bool"]


def as_float(
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


def as_int(name: str, value: Any, *, ge: int | None = None) -> int:
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


def as_bool(name: str, value: Any) -> bool:
    """Accept ``bool``/``numpy.bool_`` only and return a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def float32_array(name: str, a: Any, ndim: int | None = None, *,
                  shape: tuple[int, ...] | None = None) -> np.ndarray:
    """`a` as a C-contiguous float32 array with `ndim` dimensions (or exactly `shape`).

    Raises TypeError (not an array, not float32) or ValueError (its dimensions) naming
    the argument `name`.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, not {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {a.dtype} (use {name}.astype(np.float32))")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return np.ascontiguousarray(a)
