"""Shared set-up of the pytest-benchmark suite (``pytest benchmarks/``).

Plain ``pytest`` never collects this folder (pyproject's ``testpaths`` is
``tests``); give the path explicitly::

    pip install -e ".[bench]"
    pytest benchmarks/                                   # about 2 minutes
    pytest benchmarks/ --benchmark-group-by=group -k "C3" # a subset
    LENET_FAST_BENCH_SECONDS=1 pytest benchmarks/        # longer, steadier timings

Every benchmark checks its result before it is timed. Each one is run with
``benchmark.pedantic``: one calibration call sizes the rounds so that a benchmark
takes about ``LENET_FAST_BENCH_SECONDS`` (default 0.25 s) of timed work, which keeps
the whole suite within a few minutes on a 2-core machine.

The images are the first 2,048 real MNIST training digits from
``$LENET_FAST_DATA_DIR`` (else ``../shared/data/mnist`` next to the repository);
seeded random images with labels stand in when the files are absent.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lenet_fast import bench, datasets

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"

#: Seconds of timed work per benchmark (rounds x iterations x one call).
TARGET_SECONDS = float(os.environ.get("LENET_FAST_BENCH_SECONDS", "0.25"))

#: Shortest round: faster calls are repeated within a round (pedantic iterations).
MIN_ROUND_SECONDS = 0.002


def pytest_configure(config):
    if not config.pluginmanager.hasplugin("benchmark"):
        raise pytest.UsageError(
            "benchmarks/ needs pytest-benchmark: pip install -e \".[bench]\"")


def data_dir() -> Path:
    """``$LENET_FAST_DATA_DIR``, else ``../shared/data/mnist`` next to the repository."""
    env = os.environ.get(datasets.ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


@pytest.fixture(scope="session")
def mnist_pool():
    """(x float32 (2048, 1, 32, 32), y int64 (2048,), source str), read-only.

    `lenet_fast.bench.load_images` from `data_dir`: the first 2,048 preprocessed MNIST
    training digits, or seeded random images with random labels when MNIST is not
    found (source says which); the same pool ``lenet-fast bench`` times.
    """
    x, y, source = bench.load_images(data_dir(), bench.POOL_IMAGES)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y, source


def run_pedantic(benchmark, fn, target=None):
    """Time the no-argument callable `fn` with ``benchmark.pedantic``.

    One untimed call sizes the run: iterations per round so that a round lasts at
    least MIN_ROUND_SECONDS, and 3 to 500 rounds adding up to about `target`
    seconds (default TARGET_SECONDS). One warm-up round precedes them.
    """
    target = TARGET_SECONDS if target is None else target
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    iterations = max(1, int(MIN_ROUND_SECONDS / once))
    rounds = int(min(500, max(3, target / (once * iterations))))
    benchmark.extra_info["rounds"] = rounds
    benchmark.extra_info["iterations"] = iterations
    return benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=1)


@pytest.fixture
def timed(benchmark):
    """``timed(fn)``: run `fn` (no arguments) under pytest-benchmark; see run_pedantic."""
    return lambda fn, target=None: run_pedantic(benchmark, fn, target)
