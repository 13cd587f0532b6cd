"""Build the lenet_fast Cython extensions, with OpenMP when the compiler has it.

Environment switches (read at build time):

LENET_FAST_OPENMP=auto|0|1   auto (default): use OpenMP if a test program compiles and
                             links with it, else warn and build serially; 0: serial;
                             1: fail the build if OpenMP is missing.
LENET_FAST_ARCH=avx2|native|portable|none
                             x86_64 code generation. avx2 (default): -mavx2 -mfma;
                             native: -march=native; portable: -march=x86-64-v2;
                             none: no architecture flag. Ignored on other machines.
LENET_FAST_DEBUG=1           Cython bounds and wraparound checks on, -O1 -g.
"""

import os
import platform
import shutil
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
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


def _try_compile(compiler, source, extra_compile, extra_link):
    """True if `source` compiles and links with these flags (output discarded)."""
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
        arch = _env("LENET_FAST_ARCH", "avx2", ("avx2", "native", "portable", "none"))
        debug = os.environ.get("LENET_FAST_DEBUG", "0") == "1"

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

        machine = platform.machine().lower()
        if machine in ("x86_64", "amd64") and arch != "none":
            if ctype == "msvc":
                candidate = {"avx2": ["/arch:AVX2"], "native": ["/arch:AVX2"], "portable": []}[arch]
            else:
                candidate = {"avx2": ["-mavx2", "-mfma"], "native": ["-march=native"],
                             "portable": ["-march=x86-64-v2"]}[arch]
            if candidate and _try_compile(self.compiler, "int main(void){return 0;}\n", candidate, []):
                compile_args += candidate
            elif candidate:
                warnings.warn(f"lenet_fast: compiler rejected {candidate}; building without them")

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
        flags = " ".join(compile_args)
        for ext in self.extensions:
            ext.extra_compile_args = list(compile_args)
            ext.extra_link_args = list(link_args)
            ext.define_macros = list(ext.define_macros) + [
                ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                ("LF_BUILD_FLAGS", '"' + flags.replace('"', "") + '"'),
                ("LF_BUILD_ARCH", '"' + arch + '"'),
            ]
        super().build_extensions()


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
    Extension(
        f"lenet_fast.{name}",
        [f"csrc/{name}.pyx"],
        include_dirs=[np.get_include(), "csrc"],
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives, build_dir="build",
                          include_path=["csrc"]),
    cmdclass={"build_ext": BuildExt},
)
