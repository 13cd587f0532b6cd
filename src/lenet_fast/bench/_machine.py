"""What the machine can do and what a step costs: FLOPs per image, the machine's
description, the nominal and practical peaks, the load of other processes.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any


class BenchError(RuntimeError):
    """A benchmark could not run or produced an unusable result (e.g. a non-finite loss)."""


def flops_per_cycle() -> int:
    """float32 FLOPs per cycle and core: 2 FMA pipes x 2 FLOPs x the lanes of the widest
    vectors this CPU runs (64 with AVX-512, 32 with AVX2, 16 with SSE).

    Returns
    -------
    int
    """
    from .._isa import LANES, SUPPORTED

    return 4 * LANES[SUPPORTED[-1]] if SUPPORTED else 16


#: n of the practical-peak probe: numpy's float32 (n, n) @ (n, n).
MATMUL_SIZE = 2048


#: Connected C3 map pairs.
_C3_PAIRS = {"lecun": 60, "full": 96}


def layer_flops(variant: str = "modern", c3: str = "full") -> dict[str, dict[str, int]]:
    """FLOPs per image of each counted layer, forward and training step.

    Parameters
    ----------
    variant : {"modern", "lecun98"}
    c3 : {"lecun", "full"}

    Returns
    -------
    dict
        ``{layer: {"forward": int, "train": int}}`` for C1, C3, C5, F6 and the
        output layer ("out" for modern, "rbf" for lecun98); see the module docstring
        for the formulas.
    """
    if variant not in ("modern", "lecun98"):
        raise ValueError(f"variant must be 'modern' or 'lecun98', got {variant!r}")
    if c3 not in _C3_PAIRS:
        raise ValueError(f"c3 must be 'lecun' or 'full', got {c3!r}")
    macs = {
        "c1": 28 * 28 * 6 * 25,
        "c3": 10 * 10 * 25 * _C3_PAIRS[c3],
        "c5": 120 * 16 * 25,
        "f6": 120 * 84,
    }
    layers = {}
    for name, m in macs.items():
        forward = 2 * m
        # forward + dx + dw; C1 skips dx (the image needs no gradient).
        layers[name] = {"forward": forward, "train": (2 if name == "c1" else 3) * forward}
    if variant == "modern":
        forward = 2 * 84 * 10
        layers["out"] = {"forward": forward, "train": 3 * forward}
    else:
        forward = 3 * 84 * 10  # (x_j - c_ij)^2 summed: subtract, multiply, add
        layers["rbf"] = {"forward": forward, "train": 2 * forward}  # fixed centres: no dw
    return layers


def flops_per_image(variant: str = "modern", c3: str = "full") -> dict[str, Any]:
    """Total FLOPs per image of inference and of a training step.

    Parameters
    ----------
    variant : {"modern", "lecun98"}
        The preset.
    c3 : {"full", "lecun"}
        Dense C3 or LeCun's table (60 of its 96 map pairs).

    Returns
    -------
    dict
        ``{"forward": int, "train": int, "layers": layer_flops(variant, c3)}``.

    Examples
    --------
    >>> f = flops_per_image("modern", "full")
    >>> f["forward"], f["train"]
    (833040, 2263920)
    """
    layers = layer_flops(variant, c3)
    return {
        "forward": sum(v["forward"] for v in layers.values()),
        "train": sum(v["train"] for v in layers.values()),
        "layers": layers,
    }


def _mode_flops(flops: dict[str, Any], mode: str) -> int:
    return flops["train" if mode == "train" else "forward"]


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> list[dict[str, str]]:
    """The processor blocks of /proc/cpuinfo as dicts (empty list when unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    blocks = []
    for chunk in text.split("\n\n"):
        entry = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                entry[key.strip()] = value.strip()
        if entry:
            blocks.append(entry)
    return blocks


def machine_info() -> dict[str, Any]:
    """CPU model, core counts, clock and load of this machine.

    Returns
    -------
    dict
        ``cpu_model`` (None if unknown), ``logical_cpus``, ``usable_cpus`` (the
        process's affinity), ``physical_cores`` (distinct (package, core) pairs among
        the usable CPUs, else ``usable_cpus``), ``cpu_mhz`` (the mean ``cpu MHz`` of
        the usable CPUs, None if absent), ``platform``, ``python``, ``loadavg``
        (1, 5, 15 minutes; None where unsupported).
    """
    try:
        usable = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = list(range(os.cpu_count() or 1))
    blocks = _read_cpuinfo()
    mine = [b for b in blocks if b.get("processor", "").isdigit() and int(b["processor"]) in usable]
    mine = mine or blocks
    model = next((b["model name"] for b in mine if b.get("model name")), None)
    mhz = []
    for b in mine:
        try:
            mhz.append(float(b["cpu MHz"]))
        except (KeyError, ValueError):
            pass
    cores = {(b.get("physical id"), b.get("core id")) for b in mine if "core id" in b}
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(usable),
        "physical_cores": len(cores) if cores else len(usable),
        "cpu_mhz": sum(mhz) / len(mhz) if mhz else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg": load,
    }


def _machine_busy_seconds() -> float | None:
    """CPU-seconds all processes have been busy since boot (/proc/stat), None if unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        ticks = [int(v) for v in fields[1:]]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice (inside user/nice)]
    busy = sum(ticks[:8]) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / hz


class _OtherLoad:
    """CPUs used on average by *other* processes between `start` and `stop`.

    The machine's busy CPU time (/proc/stat) minus this process's own CPU time over
    the same wall-clock interval; None where /proc/stat is unreadable. A value near 1
    on a 2-core machine means another process held a core: a 2-thread run then waits
    for that core at every OpenMP barrier.
    """

    def start(self):
        self._machine = _machine_busy_seconds()
        self._own = time.process_time()
        self._wall = time.perf_counter()
        return self

    def stop(self) -> float | None:
        machine = _machine_busy_seconds()
        wall = time.perf_counter() - self._wall
        if machine is None or self._machine is None or wall <= 0:
            return None
        other = (machine - self._machine) - (time.process_time() - self._own)
        return max(0.0, other / wall)


def nominal_peak_gflops(threads: int, machine: dict[str, Any],
                        per_cycle: int | None = None) -> float | None:
    """Nominal float32 peak of `threads` threads: min(threads, cores) * GHz * FLOP/cycle
    (`flops_per_cycle` unless given).

    Parameters
    ----------
    threads : int
        Threads of the row.
    machine : dict
        As `machine_info` gives it (``cpu_mhz``, ``physical_cores``).
    per_cycle : int or None
        FLOPs per cycle and core; None: `flops_per_cycle`.

    Returns
    -------
    float or None
        GFLOP/s; None when the clock is unknown.
    """
    if not machine.get("cpu_mhz"):
        return None
    cores = min(threads, machine["physical_cores"])
    per_cycle = flops_per_cycle() if per_cycle is None else per_cycle
    return cores * machine["cpu_mhz"] / 1000.0 * per_cycle


_MATMUL_PROBE = """
import sys, time
import numpy as np
n, budget = int(sys.argv[1]), float(sys.argv[2])
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
c = a @ b
best, calls, start = float("inf"), 0, time.perf_counter()
while calls < 3 or time.perf_counter() - start < budget:
    t0 = time.perf_counter()
    np.matmul(a, b, out=c)
    best = min(best, time.perf_counter() - t0)
    calls += 1
print(2.0 * n ** 3 / best / 1e9, calls)
"""


def measure_matmul_peak(n_threads: int, budget: float = 0.5,
                        n: int = MATMUL_SIZE) -> dict[str, Any]:
    """Best GFLOP/s of numpy's float32 matrix product, (n, n) @ (n, n), with its BLAS on
    `n_threads` threads: the practical peak of this machine.

    Runs in a child process whose BLAS thread count is set by the environment
    (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS), so this process's BLAS
    and OpenMP pools are left alone.

    Parameters
    ----------
    n_threads : int
        BLAS threads of the child process.
    budget : float
        Seconds to spend timing.
    n : int
        Side of the square matrices.

    Returns
    -------
    dict
        ``{"gflops": best, "calls": int, "n": n}``.

    Raises
    ------
    BenchError
        If the probe fails.
    """
    import subprocess

    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n_threads), OMP_NUM_THREADS=str(n_threads),
               MKL_NUM_THREADS=str(n_threads), BLIS_NUM_THREADS=str(n_threads))
    proc = subprocess.run([sys.executable, "-c", _MATMUL_PROBE, str(n), str(budget)],
                          capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise BenchError(f"the numpy matmul probe failed: {proc.stderr.strip()[-300:]}")
    gflops, calls = proc.stdout.split()
    return {"gflops": float(gflops), "calls": int(calls), "n": n}
