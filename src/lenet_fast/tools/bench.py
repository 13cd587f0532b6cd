"""Throughput of LeNet-5 training and inference, optionally beside PyTorch.

`run` measures images/s of the training step (forward + backward + SGD-momentum
update) and of inference (forward only) for each batch size and thread count, turns
them into achieved GFLOP/s, relates those to two peaks, and, when PyTorch is
importable, times the same network in PyTorch interleaved with lenet_fast in the same
process. `format_markdown` renders the result as markdown tables (for the README);
the result itself is a JSON-ready dict (``lenet-fast bench --json FILE``).

PyTorch is optional: it is imported only inside `run` (never when this module or
`lenet_fast` is imported), and only when asked for.

FLOP count
----------
FLOPs are counted exactly for the layers that do multiply-accumulate work, at
2 FLOPs per multiply-accumulate (MAC). Forward MACs per image:

=========  ============================  ===============================
layer      MACs                          value
=========  ============================  ===============================
C1         28*28 outputs * 6 maps * 25   117,600
C3         10*10 * 25 * P                P connected map pairs: 60 with
                                         LeCun's table (150,000), 96
                                         dense (240,000)
C5         120 * 16*25                   48,000
F6         120 * 84                      10,080
output     84 * 10 (modern, linear)      840
=========  ============================  ===============================

The lecun98 RBF output, ``y_i = sum_j (x_j - c_ij)^2``, is counted as 3 FLOPs per
(i, j) pair (subtract, multiply, add): 3 * 84 * 10 = 2,520 forward FLOPs.

Training FLOPs: every convolution and linear layer does three products of the size
of its forward pass (forward, input gradient dx, weight gradient dw), except C1,
whose dx (the gradient of the image) is not computed:

    train = 3 * forward(conv, linear) - forward(C1) + 2 * forward(RBF)

(the RBF has fixed centres: forward plus dx, also 3 FLOPs per pair). Not counted:
bias additions, nonlinearities, pooling/subsampling, the loss and the optimizer
update; they scale with the activations and parameters, not with the MACs, and add
a few percent. For the modern preset with a dense C3: forward 833,040 FLOPs per
image, training step 2,263,920.

Peaks
-----
* *Practical peak*: the best GFLOP/s of numpy's float32 matrix product (its BLAS:
  OpenBLAS or MKL, written for this CPU's widest vectors) on 2048 x 2048 matrices, with
  its BLAS limited to the row's thread count, in a child process, probed before and
  after the rows (a busy machine can only lower a best-of figure). It is what a
  well-tuned dense kernel reaches on this machine; the "% practical" columns are
  relative to it.
* *Nominal peak*: cores * GHz * FLOP/cycle, with FLOP/cycle = 2 FMA pipes x 2 FLOPs x
  the float32 lanes of the widest vectors the CPU runs (`lenet_fast._isa`: 16 with
  AVX-512, 64 FLOP/cycle; 8 with AVX2; 4 with SSE), the clock read from ``cpu MHz`` in
  /proc/cpuinfo (omitted when it is not there) and cores = min(threads, physical
  cores). CPUs that split 512-bit instructions into two halves (AMD Zen 4) reach half.

Protocol
--------
For every (batch size, thread count, mode) row, lenet_fast and PyTorch each run a
fresh model, cycling through the same preprocessed MNIST batches (the first 2,048
training digits, ``load_mnist("train")`` from the data folder, no download; seeded
random images with labels when MNIST is absent). After a warm-up each library is calibrated to a step count that lasts
about ``round_time`` seconds; then ``repeats`` rounds of each are timed,
alternating between the libraries (the order swaps every round) with a short pause
between rounds so that the other library's OpenMP workers stop spinning. Reported:
the median images/s, its spread (min-max and quartiles) and the ratio of medians.
Garbage collection is off while a round is timed. PyTorch uses
``torch.set_num_threads(threads)``, ``CrossEntropyLoss`` and
``torch.optim.SGD(lr=0.01, momentum=0.9)`` (lenet_fast: `lenet_fast.optim.SGD` with
the same settings); its inference runs under ``torch.inference_mode()``.

The machine may be shared: for each row the report gives the CPUs that *other*
processes used meanwhile (/proc/stat busy time minus this process's CPU time). A
row with more threads than cores left free is not representative (every OpenMP
barrier then waits for a descheduled thread): it is measured again, up to
``retries`` times (default `MAX_RETRIES`), and marked "contended" if it stays so.
"""

from __future__ import annotations

import gc
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
from ..io import datasets

__all__ = [
    "BenchError", "flops_per_cycle", "MATMUL_SIZE", "layer_flops", "flops_per_image",
    "machine_info", "nominal_peak_gflops", "measure_matmul_peak", "load_images",
    "load_digits", "pool_batches", "run", "run_isa_paths", "format_markdown",
    "format_isa_markdown",
]


def flops_per_cycle() -> int:
    """float32 FLOPs per cycle and core: 2 FMA pipes x 2 FLOPs x the lanes of the widest
    vectors this CPU runs (64 with AVX-512, 32 with AVX2, 16 with SSE)."""
    from .._isa import LANES, SUPPORTED

    return 4 * LANES[SUPPORTED[-1]] if SUPPORTED else 16


#: n of the practical-peak probe: numpy's float32 (n, n) @ (n, n).
MATMUL_SIZE = 2048

#: Images preprocessed once and cut into the benchmark's batches.
POOL_IMAGES = 2048

#: Seconds slept before each timed round, so that the previous round's OpenMP
#: workers (of either library) have gone to sleep.
PAUSE = 0.02

MODES = ("train", "infer")

#: A row is re-measured (at most this many times, after RETRY_PAUSE seconds) when
#: other processes left it fewer free cores than it has threads (see `_contended`).
MAX_RETRIES = 2
RETRY_PAUSE = 2.0

#: Slack, in CPUs, for `_contended`: short bursts of other work are tolerated.
CONTENTION_SLACK = 0.15

#: The libraries timed beside lenet_fast (the runtimes: inference rows only).
PEERS = ("torch", "onnxruntime", "openvino")
RUNTIMES = ("onnxruntime", "openvino")

#: Connected C3 map pairs.
_C3_PAIRS = {"lecun": 60, "full": 96}

#: What the PyTorch model is, for the report.
TORCH_NETWORK = ("Conv2d(1,6,5)-ReLU-MaxPool2d(2)-Conv2d(6,16,5)-ReLU-MaxPool2d(2)-"
                 "Conv2d(16,120,5)-ReLU-Linear(120,84)-ReLU-Linear(84,10), CrossEntropyLoss")


class BenchError(RuntimeError):
    """A benchmark could not run or produced an unusable result (e.g. a non-finite loss)."""


# --------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Machine and peaks
# --------------------------------------------------------------------------


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

    None when the clock is unknown.
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
    import sys

    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n_threads), OMP_NUM_THREADS=str(n_threads),
               MKL_NUM_THREADS=str(n_threads), BLIS_NUM_THREADS=str(n_threads))
    proc = subprocess.run([sys.executable, "-c", _MATMUL_PROBE, str(n), str(budget)],
                          capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise BenchError(f"the numpy matmul probe failed: {proc.stderr.strip()[-300:]}")
    gflops, calls = proc.stdout.split()
    return {"gflops": float(gflops), "calls": int(calls), "n": n}


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


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
    try:
        images, labels = datasets.load_mnist("train", data_dir, download=False, progress=False)
    except (datasets.DataNotFoundError, datasets.DataFormatError, OSError) as exc:
        rng = np.random.default_rng(0)
        x = rng.uniform(-0.1, 1.175, (n, 1, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, n).astype(np.int64)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return x, y, f"random images and labels (MNIST not loaded: {reason})"
    k = min(n, len(images))
    folder = data_dir if data_dir is not None else datasets.default_data_dir()
    return (datasets.preprocess(images[:k]), labels[:k].astype(np.int64),
            f"MNIST train[:{k}] from {folder}")


def load_digits(data_dir: str | os.PathLike | None = None, n: int = POOL_IMAGES) -> np.ndarray:
    """The digits of `load_images` before preprocessing: uint8 (n, 28, 28) (seeded random
    grey levels when MNIST is not found), for inference as users run it (digits in,
    probabilities out)."""
    try:
        images, _ = datasets.load_mnist("train", data_dir, download=False, progress=False)
    except (datasets.DataNotFoundError, datasets.DataFormatError, OSError):
        return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return np.ascontiguousarray(images[:min(n, len(images))])


def pool_batches(x: np.ndarray, y: np.ndarray,
                 batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """All the distinct contiguous batches of `batch_size` in the pool (views).

    Cycling through many batches, as training does, keeps a small-batch run from
    memorising its few images (which drives the gradients towards zero and denormals).
    A batch larger than the pool repeats its images.
    """
    n = len(x)
    if batch_size > n:
        idx = np.arange(batch_size) % n
        return [(np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx]))]
    k = max(1, n // batch_size)
    return [(x[j * batch_size:(j + 1) * batch_size], y[j * batch_size:(j + 1) * batch_size])
            for j in range(k)]


# --------------------------------------------------------------------------
# Runners: one model, one mode, one thread count
# --------------------------------------------------------------------------


class LenetRunner:
    """lenet_fast: LeNet5 + SGD(lr=0.01, momentum=0.9), or inference: `LeNet5.forward` on
    float32 batches, `LeNet5.predict_proba` (digits in, probabilities out) on uint8 ones."""

    name = "lenet_fast"

    def __init__(self, variant, c3, mode, batches, n_threads):
        from ..model.lenet5 import LeNet5
        from ..training.optim.first_order import SGD

        self.model = LeNet5(variant, c3=c3, seed=0, n_threads=n_threads)
        self.optimizer = SGD(lr=0.01, momentum=0.9)
        self.mode = mode
        self.batches = batches
        self._next = 0
        self.last_loss = None

    def enter(self):
        """Prepare the process-wide state for this runner (nothing for lenet_fast)."""

    def run(self, steps):
        """Run `steps` training steps or forward passes over the batches, cyclically."""
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
        """The last training loss as a float (None for inference)."""
        return None if self.last_loss is None else float(self.last_loss)


class OnnxRuntimeRunner:
    """ONNX Runtime running lenet_fast's own ONNX export (`LeNet5.to_onnx`: uint8 digits
    in, probabilities out) with `n_threads` intra-op threads; inference only."""

    name = "onnxruntime"

    def __init__(self, model_proto, batches, n_threads):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(model_proto.SerializeToString(), opts,
                                            providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.batches = batches
        self._next = 0

    def enter(self):
        """Nothing: the session owns its threads."""

    def run(self, steps):
        """`steps` inferences over the batches, cyclically."""
        run, name, batches, k = self.session.run, self.input, self.batches, len(self.batches)
        j = self._next
        for _ in range(steps):
            run(["probabilities"], {name: batches[j][0]})
            j = (j + 1) % k
        self._next = j

    def loss(self):
        return None


class OpenVinoRunner:
    """OpenVINO running lenet_fast's own ONNX export on the CPU with `n_threads`
    inference threads (one stream, latency hint), in float32 (its default on CPUs with
    AMX or AVX-512 BF16 is bfloat16, a different precision); inference only."""

    name = "openvino"

    def __init__(self, model_proto, batches, n_threads):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(model_proto.SerializeToString(), b"")
        self.compiled = core.compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": n_threads, "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output("probabilities")
        self.batches = batches
        self._next = 0

    def enter(self):
        """Nothing: the compiled model owns its threads."""

    def run(self, steps):
        """`steps` inferences over the batches, cyclically."""
        infer, batches, k = self.request.infer, self.batches, len(self.batches)
        j = self._next
        for _ in range(steps):
            infer([batches[j][0]])
            j = (j + 1) % k
        self._next = j

    def loss(self):
        return None


def import_runtimes() -> tuple[dict[str, Any], dict[str, str]]:
    """({name: runner class}, {name: reason it is missing}) for ONNX Runtime and
    OpenVINO; both need the onnx package to export lenet_fast's model."""
    found, missing = {}, {}
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        reason = f"onnx not installed ({exc})"
        return {}, {"onnxruntime": reason, "openvino": reason}
    for name, module, cls in (("onnxruntime", "onnxruntime", OnnxRuntimeRunner),
                              ("openvino", "openvino", OpenVinoRunner)):
        try:
            __import__(module)
            found[name] = cls
        except Exception as exc:  # ImportError, or a broken install
            missing[name] = f"not usable ({type(exc).__name__}: {exc})"
    return found, missing


def torch_network(torch):
    """The PyTorch LeNet-5 (modern, dense C3), seeded."""
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


class TorchRunner:
    """PyTorch: the same network + CrossEntropyLoss + torch.optim.SGD, or forward only."""

    name = "torch"

    def __init__(self, torch, mode, batches, n_threads):
        self.torch = torch
        self.n_threads = n_threads
        self.mode = mode
        self.net = torch_network(torch)
        self.xs = [torch.from_numpy(x) for x, _ in batches]
        self.ys = [torch.from_numpy(y) for _, y in batches]
        self._next = 0
        self._last = None
        if mode == "train":
            self.net.train()
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
            self.loss_fn = torch.nn.CrossEntropyLoss()
        else:
            self.net.eval()

    def enter(self):
        """Set PyTorch's thread count for this runner."""
        if self.torch.get_num_threads() != self.n_threads:
            self.torch.set_num_threads(self.n_threads)

    def run(self, steps):
        """Run `steps` training steps or forward passes over the batches, cyclically."""
        net, xs, ys, k = self.net, self.xs, self.ys, len(self.xs)
        j = self._next
        if self.mode == "train":
            opt, loss_fn = self.optimizer, self.loss_fn
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(xs[j]), ys[j])
                loss.backward()
                opt.step()
                j = (j + 1) % k
            self._last = loss
        else:
            softmax = self.torch.softmax
            with self.torch.inference_mode():
                for _ in range(steps):
                    softmax(net(xs[j]), 1)
                    j = (j + 1) % k
        self._next = j

    def loss(self):
        """The last training loss as a float (None for inference)."""
        return None if self._last is None else float(self._last.detach())


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


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
    if a training loss is not finite."""
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


def import_torch():
    """(torch module, None) or (None, reason it cannot be used)."""
    try:
        import torch
    except ImportError as exc:
        return None, f"not installed ({exc})"
    except Exception as exc:  # a broken install: report it, run without torch
        return None, f"import failed: {type(exc).__name__}: {exc}"
    return torch, None


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


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------


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
            from ..model.lenet5 import LeNet5
            from ..io.onnx_export import build_onnx
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


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def format_ips(s: dict[str, Any]) -> str:
    return f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def isa_paths(text: str) -> list[str]:
    """The paths `--isa` names ("all": every path built and run by this CPU), checked.

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
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """`run` (lenet_fast only) once per instruction-set path, each in a child process
    with ``LENET_FAST_ISA`` set; {"schema", "command": "bench-isa", "paths", "results":
    {path: run's result}, "wall_seconds"}."""
    import subprocess
    import sys
    import tempfile

    wall = time.perf_counter()
    _check_settings(batch_sizes, threads, repeats, round_time, MODES, retries)
    say = progress or (lambda message: None)
    results = {}
    with tempfile.TemporaryDirectory(prefix="lenet_fast_isa_") as tmp:
        for path in paths:
            say(f"kernel path {path}")
            out = os.path.join(tmp, f"{path}.json")
            cmd = [sys.executable, "-m", "lenet_fast", "bench", "--no-torch", "--no-runtimes",
                   "--variant", variant, "--c3", c3,
                   "--batch-sizes", ",".join(map(str, batch_sizes)),
                   "--threads", ",".join(map(str, threads)), "--repeats", str(repeats),
                   "--round-time", str(round_time), "--retries", str(retries), "--json", out]
            if data_dir is not None:
                cmd += ["--data-dir", str(data_dir)]
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env=dict(os.environ, LENET_FAST_ISA=path))
            if proc.returncode != 0:
                raise BenchError(f"the {path} run failed: {proc.stderr.strip()[-300:]}")
            with open(out) as f:
                results[path] = json.load(f)
    return {"schema": "lenet_fast.bench-isa/1", "command": "bench-isa", "paths": list(paths),
            "results": results, "wall_seconds": time.perf_counter() - wall}


def format_isa_markdown(result: dict[str, Any]) -> str:
    """`run_isa_paths`'s result as markdown: lenet_fast's median images/s per path."""
    paths = result["paths"]
    first = result["results"][paths[0]]
    lines = [f"## lenet-fast bench --isa: {first['settings']['variant']}, C3 "
             f"{first['settings']['c3']}", "", "- machine: " + (first["machine"]["cpu_model"]
                                                                or "unknown CPU"),
             "- each cell: lenet_fast's median images/s, GFLOP/s and share of the practical "
             "peak (numpy's float32 matmul at the row's threads) on that path; ratio: over "
             f"the {paths[0]} path", ""]
    head = ["mode", "batch", "threads"] + [f"{p}" for p in paths]
    if len(paths) > 1:
        head += [f"{p} / {paths[0]}" for p in paths[1:]]
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for i, row in enumerate(first["rows"]):
        cells = [row["mode"], str(row["batch_size"]), str(row["threads"])]
        medians = []
        for p in paths:
            lf = result["results"][p]["rows"][i]["lenet_fast"]
            medians.append(lf["images_per_s"]["median"])
            cells.append(f"{medians[-1]:,.0f} ({lf['gflops']:.1f} GFLOP/s, "
                         f"{_pct(lf['share_of_practical_peak'])})")
        cells += [f"{m / medians[0]:.2f}x" for m in medians[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"wall time {result['wall_seconds']:.0f} s"]
    return "\n".join(lines)


def format_markdown(result: dict[str, Any]) -> str:
    """The result of `run` as markdown: a header, one table per mode, thread speedups
    (or `format_isa_markdown` for `run_isa_paths`'s result)."""
    if result.get("command") == "bench-isa":
        return format_isa_markdown(result)
    s = result["settings"]
    lines = [f"## lenet-fast bench: {s['variant']}, C3 {s['c3']}", ""] + _markdown_header(result)
    for mode in s["modes"]:
        lines += _markdown_mode(result, mode)
    if result["speedups"]:
        lines += _markdown_speedups(result)
    lines += ["", f"wall time {result['wall_seconds']:.0f} s"]
    return "\n".join(lines)


def _markdown_header(result: dict[str, Any]) -> list[str]:
    """The bullet list of `format_markdown`: machine, versions, FLOPs, peaks, method."""
    s, m, peak = result["settings"], result["machine"], result["peak"]
    tor = result["torch"]
    f = result["flops_per_image"]
    lines = []
    cpu = m["cpu_model"] or "unknown CPU"
    clock = f" @ {m['cpu_mhz'] / 1000:.2f} GHz" if m["cpu_mhz"] else ""
    load = lambda v: "n/a" if v is None else f"{v[0]:.2f}"  # noqa: E731
    lines.append(f"- machine: {cpu}, {m['physical_cores']} core(s), {m['usable_cpus']} usable "
                 f"CPU(s){clock}; load average {load(m['loadavg'])} at start, "
                 f"{load(m.get('loadavg_end'))} at end")
    v = result["versions"]
    rt = result.get("runtimes", {})
    rt_versions = "".join(f", {name} {rt[name]['version'] or '-'}" for name in RUNTIMES
                          if rt.get(name, {}).get("available"))
    b = result["build"]
    lines.append(f"- versions: lenet_fast {v['lenet_fast']}, numpy {v['numpy']}, "
                 f"torch {v['torch'] or '-'}{rt_versions}, Python {v['python']}; OpenMP "
                 f"{'on' if b['openmp'] else 'off'}; kernel path {b.get('isa', '?')} "
                 f"(built: {', '.join(b.get('isa_built', []))}); build flags "
                 f"`{b.get('compile_flags', '')}`")
    lines.append(f"- data: {result['data']}")
    lines.append(f"- FLOPs per image (2 per multiply-accumulate; see lenet_fast.bench): "
                 f"inference {f['forward']:,}, training step {f['train']:,}")
    threads = s["threads"]
    practical = ", ".join(f"{t} thread(s) {peak['practical_gflops'][str(t)]:.1f}"
                          for t in threads)
    lines.append(f"- practical peak (best of numpy's float32 matmul, {MATMUL_SIZE} x "
                 f"{MATMUL_SIZE}, its BLAS on the row's threads), GFLOP/s: {practical}; "
                 "'% practical' is relative to it at the row's thread count")
    if all(peak["nominal_gflops"][str(t)] for t in threads):
        nominal = ", ".join(f"{t} thread(s) {peak['nominal_gflops'][str(t)]:.1f}" for t in threads)
        lines.append(f"- nominal peak (min(threads, cores) x GHz x {peak['flops_per_cycle']} "
                     f"FLOP/cycle), GFLOP/s: {nominal}; '% nominal' is relative to it")
    else:
        lines.append("- nominal peak: not available (no 'cpu MHz' in /proc/cpuinfo)")
    if tor["available"]:
        lines.append(f"- torch {v['torch']}: {tor['network']}; SGD(lr=0.01, momentum=0.9); "
                     f"inference under torch.inference_mode(); FLOPs per image: inference "
                     f"{tor['flops_per_image']['forward']:,}, training {tor['flops_per_image']['train']:,}")
        if not tor["same_network"]:
            lines.append(f"- NOTE: torch runs the modern network with a dense C3; lenet_fast runs "
                         f"{s['variant']} with C3 {s['c3']}, so the ratio compares different networks")
    else:
        lines.append(f"- torch: {tor['reason']}")
    for name in RUNTIMES:
        info = rt.get(name, {})
        if info.get("available"):
            lines.append(f"- {name} {info['version']}: lenet_fast's own ONNX export "
                         "(LeNet5.to_onnx: uint8 digits in, probabilities out), the row's "
                         "thread count, float32" + (" (INFERENCE_PRECISION_HINT f32)"
                                                   if name == "openvino" else "")
                         + "; inference rows only")
        elif info:
            lines.append(f"- {name}: {info['reason']}")
    lines.append("- inference: lenet_fast runs LeNet5.predict_proba on uint8 digits "
                 "(probabilities out), as the runtimes do; torch runs softmax(net(x)) on "
                 "preprocessed float32 images")
    lines.append(f"- each cell: median images/s over {s['repeats']} round(s) of ~{s['round_time']:g} s "
                 f"(min-max in parentheses)" + ("; lenet_fast and torch rounds interleaved, "
                                                "ratio = lenet_fast median / torch median"
                                                if tor["available"] else ""))
    other = m.get("other_cpus_at_start")
    lines.append("- 'other CPUs': CPUs used on average by other processes during the row "
                 "(/proc/stat busy time minus this process's CPU time)"
                 + ("" if other is None else f"; {other:.2f} just before the start"))
    contended = [r for r in result["rows"] if r.get("contended")]
    if contended:
        lines.append(f"- WARNING: * marks {len(contended)} row(s) during which other processes "
                     f"left fewer free cores than the row has threads (still so after "
                     f"{s['retries']} retries): not representative; re-run on a quiet machine")
    return lines


_MODE_TITLES = {"train": "Training (forward + backward + SGD-momentum update)",
                "infer": "Inference (forward only)"}


def _markdown_mode(result: dict[str, Any], mode: str) -> list[str]:
    """The table of one mode's rows (`format_markdown`)."""
    rows = [r for r in result["rows"] if r["mode"] == mode]
    peers = [name for name in PEERS if any(r.get(name) for r in rows)]
    head = ["batch", "threads", "lenet_fast img/s", "GFLOP/s", "% practical", "% nominal"]
    for name in peers:
        head += [f"{name} img/s", f"lenet_fast / {name}"]
    if any(r.get("ratio_lenet_fast_over_best_runtime") for r in rows):
        head.append("lenet_fast / best runtime")
    head.append("other CPUs")
    lines = ["", f"### {_MODE_TITLES[mode]}", "", "| " + " | ".join(head) + " |",
             "|" + "---:|" * len(head)]
    for r in rows:
        lf = r["lenet_fast"]
        cells = [str(r["batch_size"]), str(r["threads"]), format_ips(lf["images_per_s"]),
                 f"{lf['gflops']:.2f}", _pct(lf["share_of_practical_peak"]),
                 _pct(lf["share_of_nominal_peak"])]
        for name in peers:
            peer = r.get(name)
            ratio = r.get(f"ratio_lenet_fast_over_{name}")
            cells += [format_ips(peer["images_per_s"]) if peer else "-",
                      f"{ratio:.2f}x" if ratio else "-"]
        if "lenet_fast / best runtime" in head:
            best = r.get("ratio_lenet_fast_over_best_runtime")
            cells.append(f"{best:.2f}x" if best else "-")
        cells.append("-" if r.get("other_cpus") is None else
                     f"{r['other_cpus']:.2f}" + (" *" if r.get("contended") else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown_speedups(result: dict[str, Any]) -> list[str]:
    """The thread-scaling table (`format_markdown`)."""
    torch = result["torch"]["available"]
    head = ["mode", "batch", "T", "lenet_fast"] + (["torch"] if torch else [])
    lines = ["", "### Thread scaling (median images/s at T threads / at 1 thread)", "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for e in result["speedups"]:
        cells = [e["mode"], str(e["batch_size"]), str(e["threads"]), f"{e['lenet_fast']:.2f}x"]
        if torch:
            cells.append(f"{e['torch']:.2f}x")
        if e.get("contended"):
            cells[-1] += " *"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def stderr_progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
