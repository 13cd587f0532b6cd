"""What a timed step is, and how a row is timed: the digits pooled into batches,
lenet_fast's runner, and the rounds that time runners against each other.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._io import datasets
from ._machine import BenchError

#: Images preprocessed once and cut into the benchmark's batches.
POOL_IMAGES = 2048


#: Seconds slept before each timed round, so that the previous round's OpenMP
#: workers (of either library) have gone to sleep.
PAUSE = 0.02


MODES = ("train", "infer")


def load_images(data_dir: str | os.PathLike | None = None,
                n: int = POOL_IMAGES) -> tuple[np.ndarray, np.ndarray, str]:
    """Preprocessed benchmark images: the first `n` MNIST training digits.

    Parameters
    ----------
    data_dir : path, optional
        Folder with the MNIST IDX files (default: `lenet_fast.datasets.default_data_dir`).
        Nothing is downloaded.
    n : int
        Number of images.

    Returns
    -------
    x : float32 (n, 1, 32, 32)
    y : int64 (n,)
    source : str
        Where the images come from; seeded random images with random labels when
        MNIST is not found (the source says so).
    """
    digits, labels, source = _first_train_digits(data_dir, n)
    if digits is None:
        rng = np.random.default_rng(0)
        x = rng.uniform(-0.1, 1.175, (n, 1, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, n).astype(np.int64)
        return x, y, f"random images and labels (MNIST not loaded: {source})"
    return datasets.preprocess(digits), labels, source


def _first_train_digits(data_dir, n):
    """(uint8 digits, int64 labels, source) of the first `n` MNIST training digits, or
    (None, None, the reason) when MNIST cannot be read (nothing is downloaded)."""
    try:
        images, labels = datasets.load_mnist("train", data_dir, download=False, progress=False)
    except (datasets.DataNotFoundError, datasets.DataFormatError, OSError) as exc:
        return None, None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    k = min(n, len(images))
    folder = data_dir if data_dir is not None else datasets.default_data_dir()
    return images[:k], labels[:k].astype(np.int64), f"MNIST train[:{k}] from {folder}"


def load_digits(data_dir: str | os.PathLike | None = None, n: int = POOL_IMAGES) -> np.ndarray:
    """The digits of `load_images` before preprocessing: uint8 (n, 28, 28) (seeded random
    grey levels when MNIST is not found), for inference as users run it (digits in,
    probabilities out).

    Parameters
    ----------
    data_dir : str, os.PathLike or None
        The MNIST folder, as `load_images` takes it.
    n : int
        How many digits.

    Returns
    -------
    ndarray
        uint8 (n, 28, 28).
    """
    digits, _, _ = _first_train_digits(data_dir, n)
    if digits is None:
        return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return np.ascontiguousarray(digits)


def pool_batches(x: np.ndarray, y: np.ndarray,
                 batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """All the distinct contiguous batches of `batch_size` in the pool (views).

    Cycling through many batches, as training does, keeps a small-batch run from
    memorising its few images (which drives the gradients towards zero and denormals).
    A batch larger than the pool repeats its images.

    Parameters
    ----------
    x : ndarray
        The pool's images (float32 (N, 1, 32, 32) or uint8 (N, 28, 28)).
    y : ndarray
        Their labels (N,).
    batch_size : int
        Images per batch.

    Returns
    -------
    list of tuple
        (images, labels) views, one per batch.
    """
    n = len(x)
    if batch_size > n:
        idx = np.arange(batch_size) % n
        return [(np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx]))]
    k = max(1, n // batch_size)
    return [(x[j * batch_size:(j + 1) * batch_size], y[j * batch_size:(j + 1) * batch_size])
            for j in range(k)]


class LenetRunner:
    """lenet_fast: LeNet5 + SGD(lr=0.01, momentum=0.9), or inference: `LeNet5.forward` on
    float32 batches, `LeNet5.predict_proba` (digits in, probabilities out) on uint8 ones.

    Parameters
    ----------
    variant, c3 : str
        The network, as `LeNet5` takes them.
    mode : {"train", "infer"}
        Training steps or inference.
    batches : list of tuple
        (images, labels) pairs, as `pool_batches` makes them.
    n_threads : int
        The model's threads.
    """

    name = "lenet_fast"

    def __init__(self, variant, c3, mode, batches, n_threads):
        from .._model.lenet5 import LeNet5
        from .._training.optim.first_order import SGD

        self.model = LeNet5(variant, c3=c3, seed=0, n_threads=n_threads)
        self.optimizer = SGD(lr=0.01, momentum=0.9)
        self.mode = mode
        self.batches = batches
        self._next = 0
        self.last_loss = None

    def enter(self):
        """Prepare the process-wide state for this runner (nothing for lenet_fast)."""

    def run(self, steps):
        """Run training steps or forward passes over the batches, cyclically.

        Parameters
        ----------
        steps : int
            How many.
        """
        model, batches, k = self.model, self.batches, len(self.batches)
        j = self._next
        if self.mode == "train":
            opt = self.optimizer
            for _ in range(steps):
                x, y = batches[j]
                self.last_loss = model.train_step(x, y, opt)
                j = (j + 1) % k
        elif batches[0][0].dtype == np.uint8:
            for _ in range(steps):
                model.predict_proba(batches[j][0])
                j = (j + 1) % k
        else:
            for _ in range(steps):
                model.forward(batches[j][0])
                j = (j + 1) % k
        self._next = j

    def loss(self):
        """The last training loss.

        Returns
        -------
        float or None
            None for inference.
        """
        return None if self.last_loss is None else float(self.last_loss)


def _timed(runner, steps: int) -> float:
    """Seconds for `steps` steps of `runner`, garbage collection off."""
    runner.enter()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        runner.run(steps)
        return time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()


def _calibrate(runner, round_time: float) -> int:
    """Warm `runner` up; return the step count of a round of about `round_time` s."""
    runner.enter()
    runner.run(2)  # first calls: buffers, caches, lazy initialisation
    steps, elapsed = 1, _timed(runner, 1)
    probe = round_time / 4
    while elapsed < probe and steps < 1 << 24:
        grow = probe / max(elapsed, 1e-6)
        steps = int(min(max(steps * 2, steps * grow * 1.2), 1 << 24))
        elapsed = _timed(runner, steps)
    return max(1, int(round(round_time * steps / elapsed)))


def _summary(rates: Sequence[float]) -> dict[str, Any]:
    """Median, spread and the rounds of a list of images/s."""
    a = np.asarray(rates, dtype=np.float64)
    q1, median, q3 = np.percentile(a, [25, 50, 75])
    return {"median": float(median), "min": float(a.min()), "max": float(a.max()),
            "q1": float(q1), "q3": float(q3), "rounds": [float(r) for r in a]}


def _check_loss(runner, where: str) -> float | None:
    loss = runner.loss()
    if loss is not None and not math.isfinite(loss):
        raise BenchError(f"{runner.name} training loss is {loss} ({where}); "
                         "the timings would not be of a normal training step")
    return loss


def measure_row(runners: dict, batch_size: int, repeats: int,
                round_time: float) -> dict[str, Any]:
    """Time the runners ({key: runner}) interleaved: each is calibrated to rounds of about
    `round_time` seconds, then timed for `repeats` rounds, the order reversed every round.
    Returns {key: {"images_per_s": summary, "steps_per_round", "last_loss"}}; BenchError
    if a training loss is not finite.

    Parameters
    ----------
    runners : dict
        Key -> runner (`LenetRunner`, `TorchRunner`, ...).
    batch_size : int
        Images per step, for the images/s.
    repeats : int
        Timed rounds.
    round_time : float
        Seconds a round aims at.

    Returns
    -------
    dict
        ``{key: {"images_per_s": summary, "steps_per_round", "last_loss"}}``; a training
        loss that is not finite raises `BenchError`.
    """
    steps = {}
    for key, r in runners.items():
        steps[key] = _calibrate(r, round_time)
        _check_loss(r, "after warm-up")
    rates = {key: [] for key in runners}
    order = list(runners)
    for k in range(repeats):
        for key in (order if k % 2 == 0 else order[::-1]):
            time.sleep(PAUSE)
            n = steps[key]
            rates[key].append(n * batch_size / _timed(runners[key], n))
    return {key: {"images_per_s": _summary(rates[key]), "steps_per_round": steps[key],
                  "last_loss": _check_loss(r, "after timing")}
            for key, r in runners.items()}


def unique_positive(name: str, values: Sequence[int]) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be positive integers, got {v!r}")
        if int(v) not in out:
            out.append(int(v))
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out
