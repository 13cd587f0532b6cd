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

from ._machine import (BenchError, MATMUL_SIZE, flops_per_cycle, flops_per_image, layer_flops,
                      machine_info, measure_matmul_peak, nominal_peak_gflops)
from ._markdown import format_ips, format_isa_markdown, format_markdown, stderr_progress
from ._peers import (TORCH_NETWORK, OnnxRuntimeRunner, OpenVinoRunner, TorchRunner,
                    import_runtimes, import_torch)
from ._runners import (POOL_IMAGES, LenetRunner, load_digits, load_images, measure_row,
                      pool_batches)
from ._throughput import PEER_ISA_ENV, isa_paths, peer_isa, run, run_isa_paths

__all__ = [
    "BenchError", "flops_per_cycle", "layer_flops", "flops_per_image", "machine_info",
    "nominal_peak_gflops", "measure_matmul_peak", "load_images", "load_digits",
    "pool_batches", "LenetRunner", "TorchRunner", "OnnxRuntimeRunner", "OpenVinoRunner",
    "import_runtimes", "import_torch", "measure_row", "run", "isa_paths", "run_isa_paths",
    "PEER_ISA_ENV", "peer_isa",
    "format_markdown", "format_isa_markdown", "format_ips", "stderr_progress",
]
