"""Checks of what the model's methods are given: images, labels, counts and label
smoothing; each raises TypeError or ValueError naming the argument."""

import numpy as np


def _check_input(x):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray, not {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"x must be float32 (N, 1, 32, 32), got {x.dtype}; "
                        "use lenet_fast.datasets.preprocess for uint8 images")
    if x.ndim != 4 or x.shape[1:] != (1, 32, 32):
        raise ValueError(f"x must have shape (N, 1, 32, 32), got {x.shape}")
    return x


def _as_c(x):
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def _as_batch(x):
    """A checked, C-contiguous, non-empty training batch: float32 (N,1,32,32) or uint8 (N,28,28)."""
    x = _as_c(_as_model_input(x))
    if x.shape[0] == 0:
        raise ValueError("the batch is empty: x must hold at least one sample")
    return x


def _check_smoothing(value, variant):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"label_smoothing must be a number, not {type(value).__name__}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {value}")
    if value and variant != "modern":
        raise ValueError("label_smoothing applies to the modern preset's softmax output only")
    return value


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _as_model_input(x):
    x = np.asarray(x)
    if x.dtype == np.uint8:
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"uint8 images must have shape (N, 28, 28), got {x.shape}")
        return x
    return _check_input(x)


def _check_labels(y, n):
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got {y.dtype}")
    if n and (y.min() < 0 or y.max() > 9):
        raise ValueError("labels must be in 0..9")
    return np.ascontiguousarray(y, dtype=np.int64)
