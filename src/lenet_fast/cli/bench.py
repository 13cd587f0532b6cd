"""``lenet-fast bench``: throughput, time to accuracy, the busy-core run."""

from __future__ import annotations

import sys

from .._io import datasets
from .._training import recipes
from ._common import (
    CLIError,
    _check_writable,
    _non_negative_int,
    _one_line,
    _os_error,
    _positive_float,
    _positive_int,
    _positive_int_list,
    write_json_atomic,
)

HELP = "measure training and inference speed (images/s, GFLOP/s), vs PyTorch"
DESCRIPTION = """
Measure the images/s of training steps (forward + backward + SGD momentum update) and of
inference, for each batch size and thread count, with the achieved GFLOP/s and its share
of the practical peak that the command measures itself (numpy's float32 matmul, 2048 x
2048, at the row's thread count) and of the nominal peak (cores x GHz x FLOP/cycle of
the CPU's widest vectors). If PyTorch is installed, the same network is timed in PyTorch
too, and for inference ONNX Runtime and OpenVINO run lenet_fast's own ONNX export (uint8
digits in, probabilities out) where installed, interleaved round by round. Prints
markdown tables.
"""
EPILOG = """
Install the optional PyTorch as a CPU build, e.g. pip install torch --index-url
https://download.pytorch.org/whl/cpu (plain 'pip install torch' may fetch a multi-GB
CUDA build). Takes about 1-2 minutes with the defaults; see lenet_fast.bench for the
FLOP count and the protocol.
"""


def add_arguments(p, parsers):
    """The options of ``bench``."""
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write every number, the machine and the versions to this JSON file")
    p.add_argument("--threads", type=_positive_int_list, default=[1, 2], metavar="T[,T...]",
                   help="thread counts to measure (default: 1,2)")
    p.add_argument("--batch-sizes", type=_positive_int_list, default=None,
                   metavar="B[,B...]", help="batch sizes to measure (default: 1,16,64,256)")
    p.add_argument("--variant", choices=("modern", "lecun98"), default="modern",
                   help="lenet_fast preset (default: modern); PyTorch always runs the modern "
                        "network with a dense C3")
    p.add_argument("--c3", choices=("lecun", "full"), default="full",
                   help="lenet_fast's C3 connections (default: full, the same network as PyTorch)")
    p.add_argument("--repeats", type=_positive_int, default=5, metavar="R",
                   help="timed rounds per library and row; medians are reported (default: 5)")
    p.add_argument("--round-time", type=_positive_float, default=0.4, metavar="S",
                   help="seconds of one timed round (default: 0.4)")
    p.add_argument("--retries", type=_non_negative_int, default=2, metavar="N",
                   help="measure a row again, up to N times, while other processes leave it "
                        "fewer free cores than it has threads (default: 2)")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    p.add_argument("--no-runtimes", action="store_true",
                   help="do not time ONNX Runtime and OpenVINO")
    p.add_argument("--isa", metavar="PATHS", default=None,
                   help="run the benchmark once per kernel instruction-set path (all, or a "
                        "comma list of portable, avx2, avx512), each in a child process with "
                        "LENET_FAST_ISA set and PyTorch and numpy's BLAS held to the same "
                        "instruction set (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, "
                        "MKL_ENABLE_INSTRUCTIONS, OPENBLAS_CORETYPE), and print each path "
                        "beside PyTorch and its share of that path's practical peak: what a "
                        "CPU without AVX-512 gets (ONNX Runtime and OpenVINO cannot be held "
                        "and do not run; default: only the path this CPU picks)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--time-to-accuracy", action="store_true",
                      help="instead: train the default recipe (or --recipe; dense C3) in "
                           "lenet_fast and in PyTorch, same initial weights, data order, "
                           "optimizer and schedule, at each --threads count, and print the "
                           "seconds of training to the first epoch at >= 99.0%% test accuracy, the accuracy per epoch and "
                           "the ratio (about 2 minutes; needs MNIST; see "
                           "lenet_fast.bench.time_to_accuracy)")
    mode.add_argument("--busy", action="store_true",
                      help="instead: keep one core busy with a child process and time training "
                           "at 1 and at 2 threads in alternating rounds, lenet_fast and PyTorch, "
                           "for each --batch-sizes (default there: 64,256); prints the 2/1 "
                           "thread ratio (see lenet_fast.bench.busy)")
    p.add_argument("--recipe", choices=tuple(recipes.NAMED_RECIPES), default=None,
                   help="--time-to-accuracy: train this named recipe (see 'lenet-fast train "
                        "--help') instead of the default one, in both libraries")
    p.add_argument("--seed", type=_non_negative_int, default=0, metavar="S",
                   help="--time-to-accuracy: weights and data order of both runs (default: 0)")
    p.add_argument("--data-dir", metavar="D", default=None,
                   help=f"folder with the MNIST IDX files (default: ${datasets.ENV_VAR}, else "
                        "~/.cache/lenet_fast/mnist); nothing is downloaded, random images are "
                        "used when MNIST is absent")



def run(args):
    from ..bench import _markdown as markdown, _throughput as throughput, busy, time_to_accuracy
    from ..bench._machine import BenchError

    if args.json is not None:
        _check_writable(args.json, "benchmark JSON")
    args.batch_sizes_given = args.batch_sizes is not None
    if args.batch_sizes is None:
        args.batch_sizes = [1, 16, 64, 256]
    progress = markdown.stderr_progress if sys.stderr.isatty() else None
    render = markdown.format_markdown
    if args.recipe is not None and not args.time_to_accuracy:
        raise CLIError("--recipe applies to --time-to-accuracy", code=2)
    try:
        if args.time_to_accuracy:
            render = time_to_accuracy.format_markdown
            result = time_to_accuracy.run(seed=args.seed, threads=args.threads,
                                          use_torch=not args.no_torch, data_dir=args.data_dir,
                                          progress=progress, recipe=args.recipe)
        elif args.busy:
            render = busy.format_markdown
            sizes = args.batch_sizes if args.batch_sizes_given else [64, 256]
            result = busy.run(batch_sizes=sizes, threads=max(2, max(args.threads)), c3=args.c3,
                              rounds=args.repeats, round_time=max(args.round_time, 0.5),
                              use_torch=not args.no_torch, data_dir=args.data_dir,
                              progress=progress)
        elif args.isa is not None:
            result = throughput.run_isa_paths(
                throughput.isa_paths(args.isa), variant=args.variant, c3=args.c3,
                batch_sizes=args.batch_sizes, threads=args.threads, repeats=args.repeats,
                round_time=args.round_time, data_dir=args.data_dir, retries=args.retries,
                use_torch=not args.no_torch, progress=progress)
        else:
            result = throughput.run(variant=args.variant, c3=args.c3,
                                    batch_sizes=args.batch_sizes, threads=args.threads,
                                    repeats=args.repeats, round_time=args.round_time,
                                    use_torch=not args.no_torch,
                                    use_runtimes=not args.no_runtimes, data_dir=args.data_dir,
                                    retries=args.retries, progress=progress)
    except (BenchError, ValueError) as exc:
        raise CLIError(_one_line(exc)) from None
    except (datasets.DataNotFoundError, datasets.DataFormatError) as exc:
        raise CLIError(_one_line(exc)) from None
    print(render(result))
    if args.json is not None:
        try:
            write_json_atomic(args.json, result)
        except OSError as exc:
            raise CLIError(f"cannot write benchmark JSON {args.json}: {_os_error(exc)}") from None
        print(f"results written to {args.json}")
    return 0


