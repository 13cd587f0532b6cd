"""``lenet-fast info``: versions, the build, threads and where MNIST is looked for."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numpy as np

from .._isa import build_info
from .._omp import built_with_openmp, max_threads
from .._version import __version__
from .._io import datasets

HELP = "show versions, the OpenMP build and where MNIST is looked for"
DESCRIPTION = """
Show the lenet_fast, Python and numpy versions, whether the kernels were built with
OpenMP, the default thread count, the compiler flags and architecture of the build,
whether Pillow is available, and the MNIST folder that would be used and whether the
data is there.
"""


def add_arguments(p, parsers):
    """The options of ``info``."""
    p.add_argument("--data-dir", metavar="D", default=None,
                   help="check this folder instead of the default one")



def _mnist_status(folder):
    names = [name for pair in datasets.SPLITS.values() for name in pair]
    missing = [name for name in names
               if not ((folder / name).is_file() or (folder / f"{name}.gz").is_file())]
    if not missing:
        return "present (all 4 IDX files)"
    if len(missing) == len(names):
        return "not present (will be downloaded on first use)"
    return f"incomplete, missing: {', '.join(missing)}"


def run(args):
    try:
        import PIL
        pillow = f"yes ({PIL.__version__})"
    except ImportError:
        pillow = "no (predict cannot read PNG/JPEG; pip install Pillow)"
    info = build_info()
    if args.data_dir is not None:
        folder, source = Path(args.data_dir).expanduser(), "--data-dir"
    else:
        folder = datasets.default_data_dir()
        source = f"${datasets.ENV_VAR}" if os.environ.get(datasets.ENV_VAR) else "default cache folder"
    rows = [
        ("lenet_fast", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("numpy", np.__version__),
        ("openmp", "on" if built_with_openmp() else "off (serial build)"),
        ("default threads", str(max(1, max_threads()))),
        ("kernel path", f"{info['isa']} ({info['lanes']} float lanes; LENET_FAST_ISA="
                         f"{info['isa_requested']})"),
        ("paths built", ", ".join(info["isa_built"])),
        ("cpu runs", ", ".join(info["isa_supported"]) or "none"),
        ("compile flags", info.get("compile_flags", "")),
        ("pillow", pillow),
        ("mnist folder", f"{folder} ({source})"),
        ("mnist data", _mnist_status(folder)),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}} {value}")
    return 0


# --------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------
