"""Which instruction-set path of the kernels runs, chosen once at import.

Every build compiles the kernels several times (setup.py): ``portable`` (x86-64-v2),
``avx2`` (AVX2 + FMA, 8-float vectors) and ``avx512`` (AVX-512 F/BW/DQ/VL, 16-float
vectors and 32 registers), as the modules ``lenet_fast._kernels_<path>``. This module
asks the CPU what it executes (`lenet_fast._omp`, built without architecture flags) and
imports the best path that was built and that the CPU runs; ``LENET_FAST_ISA`` forces
one. The same computation on two paths may differ in the last bits (other vector
widths sum in other orders); on one path the results do not depend on the thread count.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform

from . import _omp

#: The paths, from the oldest CPUs to the newest.
PATHS = ("portable", "avx2", "avx512")

# The CPU features each path's code uses (each includes the one before: the avx2 and
# avx512 modules are compiled with the x86-64-v2 flags too).
_NEEDS = {
    "portable": ("sse4.2", "popcnt", "ssse3"),
    "avx2": ("sse4.2", "popcnt", "ssse3", "avx2", "fma"),
    "avx512": ("sse4.2", "popcnt", "ssse3", "avx2", "fma", "avx512f", "avx512bw", "avx512dq",
               "avx512vl"),
}

#: Vector width of each path in float32 lanes (its nominal peak: 2 FMA pipes x lanes x 2).
LANES = {"portable": 4, "avx2": 8, "avx512": 16}


def _x86():
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def built():
    """The paths this installation holds, oldest first."""
    return [p for p in PATHS if importlib.util.find_spec(f"lenet_fast._kernels_{p}") is not None]


def supported(features=None, x86=None):
    """The paths this CPU executes, oldest first (off x86: only ``portable``, which is
    built there without architecture flags)."""
    x86 = _x86() if x86 is None else x86
    if not x86:
        return ["portable"]
    features = _omp.cpu_features() if features is None else features
    return [p for p in PATHS if all(features.get(f, False) for f in _NEEDS[p])]


def choose(requested, built_paths, supported_paths, features=None):
    """The path to run: `requested` ("" or "auto": the best one both built and
    supported), else that path, checked.

    Raises
    ------
    ImportError
        An unknown name, a path this installation did not build, or one the CPU cannot
        execute (it would stop on an illegal instruction), each with the fix.
    """
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        usable = [p for p in built_paths if p in supported_paths]
        if not usable:
            raise ImportError(
                "lenet_fast: no kernel path of this installation runs on this CPU (built: "
                f"{', '.join(built_paths) or 'none'}; the CPU runs: "
                f"{', '.join(supported_paths) or 'none'}); reinstall from source: "
                "pip install --force-reinstall --no-binary lenet-fast lenet-fast")
        return usable[-1]
    if requested not in PATHS:
        raise ImportError(f"LENET_FAST_ISA={requested!r}: expected auto or one of "
                          f"{', '.join(PATHS)}")
    if requested not in built_paths:
        raise ImportError(f"LENET_FAST_ISA={requested}: this installation did not build that "
                          f"path (built: {', '.join(built_paths) or 'none'}; LENET_FAST_ISAS "
                          "at build time chooses them)")
    if requested not in supported_paths:
        missing = [f for f in _NEEDS[requested] if not (features or {}).get(f, False)]
        raise ImportError(f"LENET_FAST_ISA={requested}: this CPU lacks "
                          f"{', '.join(m.upper() for m in missing) or 'its instructions'}, so "
                          "its kernels would stop on an illegal instruction; it runs: "
                          f"{', '.join(supported_paths) or 'none'}")
    return requested


def load(path):
    """The kernel module of one path (it must be built and supported: see `choose`)."""
    return importlib.import_module(f"lenet_fast._kernels_{path}")


_FEATURES = _omp.cpu_features()
BUILT = built()
SUPPORTED = supported(_FEATURES)
ISA = choose(os.environ.get("LENET_FAST_ISA", ""), BUILT, SUPPORTED, _FEATURES)
#: The kernel module every part of lenet_fast calls.
kernels = load(ISA)


def build_info():
    """How the kernels were built and which path runs.

    Returns
    -------
    dict
        openmp (bool), isa (the path that runs), isa_requested (LENET_FAST_ISA or
        "auto"), isa_built and isa_supported (lists, oldest first), lanes (float32
        lanes of the running path's vectors) and compile_flags (the running path's
        compiler flags).
    """
    return {
        "openmp": _omp.built_with_openmp(),
        "isa": ISA,
        "isa_requested": (os.environ.get("LENET_FAST_ISA", "") or "auto").strip().lower(),
        "isa_built": list(BUILT),
        "isa_supported": list(SUPPORTED),
        "lanes": LANES[ISA],
        "compile_flags": kernels.compile_flags(),
    }
