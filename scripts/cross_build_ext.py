"""Cross-compile lenet_fast's extensions for another Linux machine (scripts/aarch64_test.sh).

Uses setup.py itself: its extension list (`_extensions()`, which cythonizes the kernels
once, on this machine) and its `BuildExt` (the kernel paths `choose_isas` picks for the
target machine, the OpenMP probe, the flags and the macros of a normal build), with
three things swapped for the target's: the compiler (e.g. aarch64-linux-gnu-gcc), the
Python headers (the target's pyconfig.h) and numpy's headers (from numpy's wheel for the
target). The modules are written under --out with the target's file-name suffix, beside
nothing else: put the package's Python sources next to them to import it.

    python scripts/cross_build_ext.py --machine aarch64 --cc aarch64-linux-gnu-gcc \\
        --python-include R/usr/include/python3.11 \\
        --python-include R/usr/include/aarch64-linux-gnu/python3.11 \\
        --numpy-include SITE/numpy/_core/include \\
        --ext-suffix .cpython-311-aarch64-linux-gnu.so --out BUILD

Needs Cython, numpy and setuptools on this machine (setup.py's build requirements).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_setup():
    """setup.py as a module (its setup() call runs only as __main__)."""
    spec = importlib.util.spec_from_file_location("lenet_fast_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", required=True, help="target machine, e.g. aarch64")
    parser.add_argument("--cc", required=True, help="the cross C compiler")
    parser.add_argument("--python-include", action="append", required=True,
                        help="the target Python's header folders (repeat)")
    parser.add_argument("--numpy-include", required=True,
                        help="numpy's header folder from its wheel for the target")
    parser.add_argument("--ext-suffix", required=True,
                        help="the target's extension suffix, e.g. .cpython-311-aarch64-linux-gnu.so")
    parser.add_argument("--out", required=True, help="folder for lenet_fast/*.so")
    args = parser.parse_args(argv)

    # setup.py chooses the kernel paths for sysconfig's platform, which follows this
    os.environ["_PYTHON_HOST_PLATFORM"] = f"linux-{args.machine}"
    os.chdir(ROOT)   # setup.py's paths (csrc/, build/) are relative to the checkout
    setup_py = load_setup()
    if setup_py.target_machine() != args.machine:
        sys.exit(f"error: setup.py would build for {setup_py.target_machine()}, "
                 f"not {args.machine}")

    import numpy as np
    from setuptools import setup

    extensions = setup_py._extensions()
    host_numpy = np.get_include()
    for ext in extensions:
        ext.include_dirs = [args.numpy_include if d == host_numpy else d for d in ext.include_dirs]
    cc = args.cc

    class CrossBuildExt(setup_py.BuildExt):
        def finalize_options(self):
            super().finalize_options()
            # the target's headers, not this Python's; no library folder of this Python
            self.include_dirs = list(args.python_include)
            self.library_dirs, self.rpath = [], []

        def build_extensions(self):
            # Python's own essential flags for extensions (-fwrapv, -DNDEBUG), and -fPIC
            self.compiler.set_executables(
                compiler=[cc, "-DNDEBUG", "-fwrapv"],
                compiler_so=[cc, "-DNDEBUG", "-fwrapv", "-fPIC"],
                linker_so=[cc, "-shared"],
                linker_exe=[cc])
            super().build_extensions()

        def get_ext_filename(self, ext_name):
            return os.path.join(*ext_name.split(".")) + args.ext_suffix

    setup(name="lenet-fast", ext_modules=extensions, cmdclass={"build_ext": CrossBuildExt},
          script_args=["build_ext", "--build-lib", args.out,
                       "--build-temp", os.path.join("build", f"cross-{args.machine}")])


if __name__ == "__main__":
    main()
