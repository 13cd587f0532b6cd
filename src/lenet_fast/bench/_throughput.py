"""``lenet-fast bench``: images/s of training and inference by batch size and
thread count, beside the peers, once or per instruction-set path.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._version import __version__
from ._machine import (
    MATMUL_SIZE,
    BenchError,
    _mode_flops,
    _OtherLoad,
    flops_per_cycle,
    flops_per_image,
    machine_info,
    measure_matmul_peak,
    nominal_peak_gflops,
)
from ._peers import (
    PEERS,
    RUNTIMES,
    TORCH_NETWORK,
    TorchRunner,
    import_runtimes,
    import_torch,
)
from ._runners import (
    MODES,
    PAUSE,
    LenetRunner,
    load_digits,
    load_images,
    measure_row,
    pool_batches,
    unique_positive,
)

#: A row is re-measured (at most this many times, after RETRY_PAUSE seconds) when
#: other processes left it fewer free cores than it has threads (see `_contended`).
MAX_RETRIES = 2


RETRY_PAUSE = 2.0


#: Slack, in CPUs, for `_contended`: short bursts of other work are tolerated.
CONTENTION_SLACK = 0.15


def run(*, variant: str = "modern", c3: str = "full",
        batch_sizes: Sequence[int] = (1, 16, 64, 256), threads: Sequence[int] = (1, 2),
        repeats: int = 5, round_time: float = 0.4, use_torch: bool = True,
        use_runtimes: bool = True,
        data_dir: str | os.PathLike | None = None, modes: Sequence[str] = MODES,
        retries: int = MAX_RETRIES,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure training and inference throughput (see the module docstring).

    Parameters
    ----------
    variant : {"modern", "lecun98"}
        lenet_fast preset. PyTorch always runs the modern network with a dense C3.
    c3 : {"lecun", "full"}
        lenet_fast's C3 connections.
    batch_sizes, threads : sequences of positive int
        The rows: every batch size with every thread count.
    repeats : int
        Timed rounds per library and row.
    round_time : float
        Approximate seconds of one round.
    use_torch : bool
        Also time PyTorch if it can be imported.
    use_runtimes : bool
        Also time ONNX Runtime and OpenVINO (inference rows, lenet_fast's own ONNX
        export) where they can be imported.
    data_dir : path, optional
        MNIST folder (no download; random data when absent).
    modes : sequence of {"train", "infer"}
    retries : int
        Times a row is measured again while other processes leave it fewer free
        cores than it has threads.
    progress : callable, optional
        Called with a short status line before each row.

    Returns
    -------
    dict
        JSON-ready: ``settings``, ``machine``, ``versions``, ``build``, ``data``,
        ``flops_per_image``, ``torch`` (availability and its FLOPs), ``runtimes``
        (ONNX Runtime and OpenVINO: availability), ``peak`` (practical and nominal, by
        thread count), ``rows`` (one per mode, batch size and thread count; per library
        the images/s summary, GFLOP/s and shares of the peaks; the ratios of lenet_fast's
        median to each peer's and to the better runtime's), ``speedups``
        (t threads over 1 thread) and ``wall_seconds``.

    Raises
    ------
    ValueError
        For bad arguments.
    BenchError
        When a training loss is not finite.
    """
    from .._isa import build_info
    from .._omp import built_with_openmp

    wall = time.perf_counter()
    batch_sizes, threads, modes = _check_settings(batch_sizes, threads, repeats, round_time,
                                                  modes, retries)
    flops = flops_per_image(variant, c3)
    say = progress or (lambda message: None)
    torch, torch_reason = None, "disabled (--no-torch)"
    if use_torch:
        say("importing torch")
        torch, torch_reason = import_torch()
    torch_flops = flops_per_image("modern", "full")
    runtimes, runtime_missing = ({}, {"onnxruntime": "disabled (--no-runtimes)",
                                      "openvino": "disabled (--no-runtimes)"})
    onnx_model = None
    if use_runtimes and "infer" in modes:
        say("importing ONNX Runtime and OpenVINO")
        runtimes, runtime_missing = import_runtimes()
        if runtimes:
            from .._io.onnx_export import build_onnx
            from .._model.lenet5 import LeNet5
            onnx_model = build_onnx(LeNet5(variant, c3=c3, seed=0))

    machine = machine_info()
    load = _OtherLoad().start()
    time.sleep(0.25)
    machine["other_cpus_at_start"] = load.stop()
    peak = _Peak(threads, machine, budget=min(0.5, max(0.1, round_time)))
    say("measuring the practical peak (numpy's float32 matmul)")
    peak.probe()

    x, y, source = load_images(data_dir)
    digits = load_digits(data_dir, len(x))
    rows = []
    for b in batch_sizes:
        batches = pool_batches(x, y, b)
        digit_batches = pool_batches(digits, y, b)
        for t in threads:
            for mode in modes:
                say(f"batch {b}, {t} thread(s), {'training' if mode == 'train' else 'inference'}")
                runners = [LenetRunner(variant, c3, mode,
                                       batches if mode == "train" else digit_batches, t)]
                if torch is not None:
                    runners.append(TorchRunner(torch, mode, batches, t))
                if mode == "infer":
                    runners += [cls(onnx_model, digit_batches, t) for cls in runtimes.values()]
                row = _measure_free_row(runners, b, t, repeats, round_time, retries,
                                        machine["usable_cpus"], say)
                rows.append({"mode": mode, "batch_size": b, "threads": t, **row})

    say("measuring the practical peak again")
    peak.probe()
    for row in rows:
        for name, lib_flops in (("lenet_fast", flops), ("torch", torch_flops),
                                ("onnxruntime", flops), ("openvino", flops)):
            if row.get(name) is not None:
                peak.rate(row[name], _mode_flops(lib_flops, row["mode"]), row["threads"])

    machine["loadavg_end"] = machine_info()["loadavg"]
    return {
        "schema": "lenet_fast.bench/1",
        "command": "bench",
        "settings": {"variant": variant, "c3": c3, "batch_sizes": batch_sizes,
                     "threads": threads, "repeats": repeats, "round_time": round_time,
                     "modes": modes, "use_torch": bool(use_torch),
                     "use_runtimes": bool(use_runtimes), "pause": PAUSE,
                     "retries": retries,
                     "optimizer": "SGD(lr=0.01, momentum=0.9)"},
        "machine": machine,
        "versions": {"lenet_fast": __version__, "numpy": np.__version__,
                     "python": platform.python_version(),
                     "torch": getattr(torch, "__version__", None)},
        "build": {**build_info(), "openmp": built_with_openmp()},
        "peer_isa": peer_isa(torch),
        "data": source,
        "flops_per_image": flops,
        "torch": {"available": torch is not None, "reason": torch_reason,
                  "network": TORCH_NETWORK if torch is not None else None,
                  "flops_per_image": torch_flops if torch is not None else None,
                  "same_network": torch is not None and variant == "modern" and c3 == "full"},
        "runtimes": {name: {"available": name in runtimes,
                            "reason": runtime_missing.get(name),
                            "version": _version_of(name) if name in runtimes else None}
                     for name in ("onnxruntime", "openvino")},
        "peak": peak.result,
        "rows": rows,
        "speedups": _speedups(rows, threads),
        "wall_seconds": time.perf_counter() - wall,
    }


def _version_of(module: str) -> str | None:
    try:
        return getattr(__import__(module), "__version__", None)
    except Exception:
        return None


def _check_settings(batch_sizes, threads, repeats, round_time, modes, retries):
    """`run`'s arguments checked (ValueError otherwise): (batch_sizes, threads, modes)
    as lists without repeats."""
    batch_sizes = unique_positive("batch_sizes", batch_sizes)
    threads = unique_positive("threads", threads)
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    if not (isinstance(round_time, (int, float)) and math.isfinite(round_time) and round_time > 0):
        raise ValueError(f"round_time must be a positive number, got {round_time!r}")
    modes = list(dict.fromkeys(modes))
    if not modes or any(m not in MODES for m in modes):
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes!r}")
    return batch_sizes, threads, modes


class _Peak:
    """The peaks a row's GFLOP/s are compared with, per thread count: the practical peak
    (`measure_matmul_peak`, the best of every `probe`) and the nominal."""

    def __init__(self, threads, machine, budget):
        self.threads, self.budget = threads, budget
        per_cycle = flops_per_cycle()
        self.result = {
            "method": (f"best GFLOP/s of numpy's float32 matmul ({MATMUL_SIZE} x {MATMUL_SIZE}) "
                       "with its BLAS on the row's thread count, probed before and after "
                       "the rows"),
            "practical_gflops": {}, "practical_calls": {},
            "flops_per_cycle": per_cycle,
            "nominal_method": (f"min(threads, physical cores) x GHz (cpu MHz) x {per_cycle} "
                               "FLOP/cycle (2 FMA pipes x 2 x the widest vector's lanes)"),
            "nominal_gflops": {str(t): nominal_peak_gflops(t, machine, per_cycle)
                               for t in threads}}

    def probe(self):
        """Measure numpy's matmul at every thread count; keep the best (a busy machine can
        only lower a best-of figure)."""
        best, calls = self.result["practical_gflops"], self.result["practical_calls"]
        for t in self.threads:
            measured = measure_matmul_peak(t, budget=self.budget)
            best[str(t)] = max(measured["gflops"], best.get(str(t), 0.0))
            calls[str(t)] = measured["calls"] + calls.get(str(t), 0)

    def rate(self, measured, flops_per_image, threads):
        """Add GFLOP/s and their shares of the peaks to one library's `measured` row."""
        key = str(threads)
        gflops = measured["images_per_s"]["median"] * flops_per_image / 1e9
        nominal = self.result["nominal_gflops"][key]
        measured["gflops"] = gflops
        measured["share_of_practical_peak"] = gflops / self.result["practical_gflops"][key]
        measured["share_of_nominal_peak"] = gflops / nominal if nominal else None


def _measure_free_row(runners, batch_size, threads, repeats, round_time, retries,
                      usable_cpus, say):
    """One row (`measure_row`), measured again up to `retries` times while other
    processes leave fewer free CPUs than `threads`; with the load and the lenet_fast/torch
    ratio of medians."""
    for attempt in range(1 + retries):
        load = _OtherLoad().start()
        measured = measure_row({r.name: r for r in runners}, batch_size, repeats, round_time)
        other = load.stop()
        if attempt == retries or not _contended(other, threads, usable_cpus):
            break
        say(f"other processes used {other:.2f} CPUs: measuring the row again")
        time.sleep(RETRY_PAUSE)
    lenet = measured["lenet_fast"]
    row = {"other_cpus": other, "contended": _contended(other, threads, usable_cpus),
           "attempts": attempt + 1}
    median = lambda m: m["images_per_s"]["median"]  # noqa: E731
    best_runtime = None
    for name in ("lenet_fast",) + PEERS:
        row[name] = measured.get(name)
        if name != "lenet_fast":
            peer = measured.get(name)
            row[f"ratio_lenet_fast_over_{name}"] = median(lenet) / median(peer) if peer else None
            if name in RUNTIMES and peer and (best_runtime is None or median(peer) > best_runtime):
                best_runtime = median(peer)
    row["ratio_lenet_fast_over_best_runtime"] = (median(lenet) / best_runtime
                                                 if best_runtime else None)
    return row


def _contended(other_cpus: float | None, threads: int, usable_cpus: int) -> bool:
    """Whether other processes left fewer free CPUs than `threads` (with some slack)."""
    if other_cpus is None:
        return False
    return other_cpus > max(0, usable_cpus - threads) + CONTENTION_SLACK


def _speedups(rows: list[dict[str, Any]], threads: list[int]) -> list[dict[str, Any]]:
    """Median images/s at t threads over 1 thread, per mode, batch size and library."""
    if 1 not in threads:
        return []
    index = {(r["mode"], r["batch_size"], r["threads"]): r for r in rows}
    out = []
    for r in rows:
        if r["threads"] == 1:
            continue
        base = index.get((r["mode"], r["batch_size"], 1))
        if base is None:
            continue
        entry = {"mode": r["mode"], "batch_size": r["batch_size"], "threads": r["threads"],
                 "contended": bool(r.get("contended") or base.get("contended"))}
        for name in ("lenet_fast", "torch"):
            if r.get(name) is not None and base.get(name) is not None:
                entry[name] = r[name]["images_per_s"]["median"] / base[name]["images_per_s"]["median"]
            else:
                entry[name] = None
        out.append(entry)
    return out


#: What each lenet_fast path is compared with in `run_isa_paths`: the peers held to the
#: same instruction set, through variables the child process sets before it imports
#: torch or numpy (PyTorch's ATen kernels, oneDNN, MKL, and numpy's OpenBLAS, whose
#: Haswell kernels are AVX2 + FMA and Nehalem's SSE4.2). On the avx512 path the peers
#: run as the CPU lets them. ONNX Runtime and OpenVINO choose their kernels from CPUID
#: and cannot be held, so `--isa` does not run them.
PEER_ISA_ENV = {
    "avx512": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
    "portable": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OPENBLAS_CORETYPE": "Nehalem"},
}
_PEER_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
              "OPENBLAS_CORETYPE")


def peer_isa(torch=None) -> dict[str, Any]:
    """The instruction sets the peers of this process run: the variables that hold them,
    PyTorch's CPU capability and the BLAS libraries' kernels (threadpoolctl's
    "architecture", where threadpoolctl is installed).

    Parameters
    ----------
    torch : module, optional
        The imported torch.

    Returns
    -------
    dict
        ``env`` (each variable's value or None), ``torch_cpu_capability`` and ``blas``
        (a list of {"library", "architecture"}; None without threadpoolctl).
    """
    capability = None
    if torch is not None:
        try:
            capability = torch.backends.cpu.get_cpu_capability()
        except Exception:
            capability = None
    try:
        from threadpoolctl import threadpool_info
        blas = [{"library": i.get("internal_api"), "architecture": i.get("architecture")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        blas = None
    return {"env": {k: os.environ.get(k) for k in _PEER_VARS},
            "torch_cpu_capability": capability, "blas": blas}


def isa_paths(text: str) -> list[str]:
    """The paths `--isa` names ("all": every path built and run by this CPU), checked.

    Parameters
    ----------
    text : str
        "all", or a comma list of portable, avx2, avx512.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        An unknown path, or one not built or not run by this CPU.
    """
    from .._isa import BUILT, PATHS, SUPPORTED

    usable = [p for p in BUILT if p in SUPPORTED]
    names = usable if text.strip().lower() == "all" else [
        n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--isa: expected all or a comma list of paths")
    for n in names:
        if n not in PATHS:
            raise ValueError(f"--isa: unknown path {n!r}; expected all or some of "
                             f"{', '.join(PATHS)}")
        if n not in usable:
            raise ValueError(f"--isa: the {n} path is not built here or not run by this CPU "
                             f"(usable: {', '.join(usable)})")
    return list(dict.fromkeys(names))


def run_isa_paths(paths: Sequence[str], *, variant: str = "modern", c3: str = "full",
                  batch_sizes: Sequence[int] = (1, 16, 64, 256),
                  threads: Sequence[int] = (1, 2), repeats: int = 5, round_time: float = 0.4,
                  data_dir: str | os.PathLike | None = None, retries: int = MAX_RETRIES,
                  use_torch: bool = True,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """`run` once per instruction-set path, each in a child process with
    ``LENET_FAST_ISA`` set and its peers held to the same instruction set
    (`PEER_ISA_ENV`, set before the child imports them): PyTorch where installed, and
    numpy's matmul for the practical peak; {"schema", "command": "bench-isa", "paths",
    "results": {path: run's result}, "wall_seconds"}.

    Parameters
    ----------
    paths : sequence of str
        The instruction-set paths, as `isa_paths` checks them.
    variant, c3, batch_sizes, threads, repeats, round_time, data_dir, retries, progress : as in `run`
        The settings of each path's run.
    use_torch : bool
        Time PyTorch beside each path (held to its instruction set).

    Returns
    -------
    dict
        With "schema", "command" ("bench-isa"), "paths", "results" (path -> `run`'s
        result) and "wall_seconds".
    """
    import subprocess
    import tempfile

    wall = time.perf_counter()
    _check_settings(batch_sizes, threads, repeats, round_time, MODES, retries)
    say = progress or (lambda message: None)
    results = {}
    with tempfile.TemporaryDirectory(prefix="lenet_fast_isa_") as tmp:
        for path in paths:
            say(f"kernel path {path}")
            out = os.path.join(tmp, f"{path}.json")
            cmd = [sys.executable, "-m", "lenet_fast", "bench", "--no-runtimes",
                   "--variant", variant, "--c3", c3,
                   "--batch-sizes", ",".join(map(str, batch_sizes)),
                   "--threads", ",".join(map(str, threads)), "--repeats", str(repeats),
                   "--round-time", str(round_time), "--retries", str(retries), "--json", out]
            if data_dir is not None:
                cmd += ["--data-dir", str(data_dir)]
            if not use_torch:
                cmd.append("--no-torch")
            env = {k: v for k, v in os.environ.items() if k not in _PEER_VARS}
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env=dict(env, LENET_FAST_ISA=path, **PEER_ISA_ENV[path]))
            if proc.returncode != 0:
                raise BenchError(f"the {path} run failed: {proc.stderr.strip()[-300:]}")
            with open(out) as f:
                results[path] = json.load(f)
    return {"schema": "lenet_fast.bench-isa/1", "command": "bench-isa", "paths": list(paths),
            "results": results, "wall_seconds": time.perf_counter() - wall}
