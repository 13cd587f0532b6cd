"""Build the lenet_fast Cython extensions, with OpenMP when the compiler has it.

Environment switches (read at build time):

LENET_FAST_OPENMP=auto|0|1   auto (default): use OpenMP if a test program compiles and
                             links with it, else warn and build serially; 0: serial;
                             1: fail the build if OpenMP is missing.
LENET_FAST_ARCH=auto|avx2|native|portable|none
                             x86_64 code generation. auto (default): -mavx2 -mfma if the
                             building CPU runs an AVX2+FMA probe program (compiled AND
                             run), else -march=x86-64-v2 (portable), with a message;
                             avx2: -mavx2 -mfma whatever the building CPU (a wheel for
                             AVX2 machines); native: -march=native; portable:
                             -march=x86-64-v2 (a wheel for distribution); none: no
                             architecture flag. Ignored on other machines.
LENET_FAST_DEBUG=1           Cython bounds and wraparound checks on, -O1 -g.
LENET_FAST_SANITIZE=LIST     Compile and link with -fsanitize=LIST (e.g. address,undefined;
                             gcc/clang), -g, frame pointers, and sanitizer errors fatal.
                             Running it needs the sanitizer runtime preloaded into Python:
                             LD_PRELOAD=$(gcc -print-file-name=libasan.so)
                             ASAN_OPTIONS=detect_leaks=0 (see .ci/run).

The module lenet_fast._omp (build facts, CPU check) is always compiled without
architecture flags, so that importing lenet_fast on a CPU without AVX2 raises a clear
ImportError instead of stopping on an illegal instruction.
"""

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

MODULES = ["_omp", "_conv", "_pool", "_linear", "_net", "_optim", "_augment"]

OMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return (n >= 1 && omp_get_max_threads() >= 1) ? 0 : 1;
    }
    """
)


# Compiled and RUN at build time: exits 0 only on a CPU (and OS) that executes AVX2 and
# FMA instructions; elsewhere it dies with SIGILL or returns 1. Volatile inputs keep
# the compiler from folding the arithmetic away.
AVX2_PROBE = textwrap.dedent(
    """
    #include <immintrin.h>
    int main(void) {
        volatile float in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        float src[8], out[8];
        int i;
        for (i = 0; i < 8; i++) src[i] = in[i];
        __m256 a = _mm256_loadu_ps(src);
        __m256 r = _mm256_fmadd_ps(a, a, a);                       /* FMA: a*a + a */
        __m256i k = _mm256_add_epi32(_mm256_castps_si256(r),
                                     _mm256_set1_epi32((int)in[0] - 1)); /* AVX2 */
        _mm256_storeu_ps(out, _mm256_castsi256_ps(k));
        return out[7] == 72.0f ? 0 : 1;
    }
    """
)

# Compiled with the portable flags and run: uses SSE4.2-era instructions (popcnt).
PORTABLE_PROBE = textwrap.dedent(
    """
    int main(void) {
        volatile unsigned x = 0xF0F0u;
        return __builtin_popcount(x) == 8 ? 0 : 1;
    }
    """
)

ARCH_SETTING = ("auto", ("auto", "avx2", "native", "portable", "none"))
_X86_FLAGS = {"avx2": ["-mavx2", "-mfma"], "native": ["-march=native"],
              "portable": ["-march=x86-64-v2"]}
_MSVC_FLAGS = {"avx2": ["/arch:AVX2"], "native": ["/arch:AVX2"], "portable": []}


def choose_arch(arch, machine, compiler_type, probe):
    """The architecture flags to build with.

    Parameters
    ----------
    arch : str
        LENET_FAST_ARCH: auto, avx2, native, portable or none.
    machine : str
        platform.machine() of the build.
    compiler_type : str
        "unix", "msvc", ...
    probe : callable
        probe(flags, run) -> bool: True if a test program builds with `flags` (and,
        when `run`, the built program runs successfully on this machine).

    Returns
    -------
    (name, flags, note)
        The choice ("avx2", "native", "portable" or "none"), its compiler flags and a
        sentence saying why (printed by the build).
    """
    if machine.lower() not in ("x86_64", "amd64") or arch == "none":
        note = "" if arch in ("auto", "none") else f"LENET_FAST_ARCH={arch} ignored on {machine}"
        return "none", [], note
    table = _MSVC_FLAGS if compiler_type == "msvc" else _X86_FLAGS
    if arch == "auto":
        if probe(table["avx2"], True):
            return "avx2", table["avx2"], ("the building CPU runs AVX2 and FMA code (a wheel for "
                                           "other machines: LENET_FAST_ARCH=portable)")
        note = ("the building CPU cannot run AVX2+FMA code (or the compiler cannot build "
                "it): building portable kernels; set LENET_FAST_ARCH=avx2 to force AVX2")
        if not table["portable"] or probe(table["portable"], True):
            return "portable", table["portable"], note
        return "none", [], note
    flags = table[arch]
    if flags and not probe(flags, False):  # a forced choice may target another CPU: compile only
        return "none", [], f"the compiler rejected {' '.join(flags)}; building without them"
    return arch, flags, f"LENET_FAST_ARCH={arch}"


def _env(name, default, allowed):
    value = os.environ.get(name, default).strip().lower() or default
    if value not in allowed:
        sys.exit(f"error: {name}={value!r}; expected one of {', '.join(allowed)}")
    return value


def _openmp_flags(compiler_type):
    """Compile and link flags for OpenMP with this compiler family."""
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def _try_compile(compiler, source, extra_compile, extra_link, run=False):
    """True if `source` compiles and links with these flags (and, if `run`, the program
    exits with 0 on this machine; a crash such as SIGILL counts as False)."""
    tmp = tempfile.mkdtemp(prefix="lenet_fast_probe_")
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        devnull = open(os.devnull, "w")
        saved = os.dup(2)
        try:
            os.dup2(devnull.fileno(), 2)  # keep probe failures off the build log
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=extra_compile)
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=extra_link)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            devnull.close()
        if run:
            exe = compiler.executable_filename("probe", output_dir=tmp)
            return subprocess.run([exe], capture_output=True, timeout=60).returncode == 0
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """build_ext that probes OpenMP and architecture flags with the real compiler."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        openmp_mode = _env("LENET_FAST_OPENMP", "auto", ("auto", "0", "1"))
        arch_requested = _env("LENET_FAST_ARCH", *ARCH_SETTING)
        debug = os.environ.get("LENET_FAST_DEBUG", "0") == "1"
        sanitize = os.environ.get("LENET_FAST_SANITIZE", "").strip()

        if ctype == "msvc":
            compile_args = ["/O2"] if not debug else ["/Od", "/Zi"]
        else:
            compile_args = ["-O3"] if not debug else ["-O1", "-g"]
            # Lets gcc vectorize float reductions; keeps NaN/inf semantics intact.
            compile_args += ["-fno-math-errno", "-fno-trapping-math",
                             "-fno-signed-zeros", "-fassociative-math"]
            if ctype == "unix" and sys.platform != "darwin":
                compile_args.append("-Wno-psabi")  # notes about 32-byte vector ABI in portable builds
        link_args = []
        if sanitize:
            if ctype == "msvc" or not re.fullmatch(r"[a-z,-]+", sanitize):
                sys.exit(f"error: LENET_FAST_SANITIZE={sanitize!r}: expected a gcc/clang "
                         "-fsanitize list such as address,undefined")
            flags = [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all",
                     "-fno-omit-frame-pointer", "-g"]
            if not _try_compile(self.compiler, "int main(void){return 0;}\n", flags, flags):
                sys.exit(f"error: the compiler cannot build with -fsanitize={sanitize}")
            compile_args += flags
            link_args += flags
            print(f"lenet_fast: building with -fsanitize={sanitize}")

        def probe(flags, run):
            source = AVX2_PROBE if "avx2" in " ".join(flags).lower() else PORTABLE_PROBE
            if not run:
                source = "int main(void){return 0;}\n"
            return _try_compile(self.compiler, source, flags, [], run=run)

        arch, arch_flags, note = choose_arch(arch_requested, platform.machine(), ctype, probe)
        if note:
            print(f"lenet_fast: architecture {arch}: {note}")
        if arch_requested == "auto" and arch != "avx2" and note:
            warnings.warn(f"lenet_fast: {note}")

        use_openmp = False
        if openmp_mode != "0":
            omp_c, omp_l = _openmp_flags(ctype)
            if _try_compile(self.compiler, OMP_TEST, omp_c, omp_l):
                use_openmp = True
                compile_args += omp_c
                link_args += omp_l
            elif openmp_mode == "1":
                sys.exit("error: LENET_FAST_OPENMP=1 but the compiler cannot build an OpenMP program")
            else:
                warnings.warn("lenet_fast: OpenMP not available; building the kernels serially "
                              "(set LENET_FAST_OPENMP=1 to make this an error)")
                print("WARNING: lenet_fast is being built WITHOUT OpenMP (serial kernels)")

        # Always compile: objects left in build/ by a build with other switches
        # (LENET_FAST_OPENMP, LENET_FAST_ARCH, LENET_FAST_DEBUG) must not be reused.
        self.force = True
        kernel_args = compile_args + arch_flags
        for ext in self.extensions:
            # _omp holds the import-time CPU check: never compiled for a particular CPU
            own = compile_args if ext.name == "lenet_fast._omp" else kernel_args
            ext.extra_compile_args = list(own)
            ext.extra_link_args = list(link_args)
            ext.define_macros = list(ext.define_macros) + [
                ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                ("LF_BUILD_FLAGS", _c_string(" ".join(kernel_args))),
                ("LF_MODULE_FLAGS", _c_string(" ".join(own))),
                ("LF_BUILD_ARCH", _c_string(arch)),
                ("LF_BUILD_ARCH_REQUESTED", _c_string(arch_requested)),
            ]
        super().build_extensions()


def _c_string(text):
    return '"' + text.replace('"', "").replace("\\", "") + '"'


def _extensions():
    """The Cython extensions (Cython and numpy are needed from here on only)."""
    import numpy as np
    from Cython.Build import cythonize

    debug_build = os.environ.get("LENET_FAST_DEBUG", "0") == "1"
    directives = {
        "language_level": 3,
        "boundscheck": debug_build,
        "wraparound": debug_build,
        "initializedcheck": debug_build,
        "cdivision": True,
        "embedsignature": True,
    }
    extensions = [
        Extension(f"lenet_fast.{name}", [f"csrc/{name}.pyx"],
                  include_dirs=[np.get_include(), "csrc"])
        for name in MODULES
    ]
    return cythonize(extensions, compiler_directives=directives, build_dir="build",
                     include_path=["csrc"])


if __name__ == "__main__":  # as pip and `python -m build` run it; tests import it
    setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
