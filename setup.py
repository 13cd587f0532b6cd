"""Build the lenet_fast Cython extensions, with OpenMP when the compiler has it.

The kernels (csrc/_kernels.pyx) are cythonized once and the C that Cython makes is
compiled once per instruction-set path, into lenet_fast._kernels_<path>:

    portable  -march=x86-64-v2 (SSE4.2, POPCNT: every x86-64 CPU since about 2009)
    avx2      x86-64-v2 + AVX2 + FMA (8-float vectors)
    avx512    x86-64-v2 + AVX2 + FMA + AVX-512 F/BW/DQ/VL (16-float vectors, 32 registers)

Building a path needs only a compiler that accepts its flags, not a CPU that runs it, so
one `pip install .` and one wheel carry every path; `lenet_fast._isa` imports the best
one the running CPU executes (LENET_FAST_ISA forces one). On other machines (ARM, ...)
only the portable path is built, without architecture flags. The modules compile in
parallel (one compiler process per core).

Environment switches (read at build time):

LENET_FAST_OPENMP=auto|0|1   auto (default): use OpenMP if a test program compiles and
                             links with it, else warn and build serially; 0: serial;
                             1: fail the build if OpenMP is missing.
LENET_FAST_ISAS=all|LIST     the instruction-set paths to build (default all: portable,
                             avx2, avx512 on x86-64); a comma list such as portable,avx512
                             builds fewer (portable is always built: it is the fallback).
                             A path whose flags the compiler rejects is skipped, with a
                             message.
LENET_FAST_DEBUG=1           Cython bounds and wraparound checks on, -O1 -g.
LENET_FAST_SANITIZE=LIST     Compile and link with -fsanitize=LIST (e.g. address,undefined;
                             gcc/clang), -g, frame pointers, and sanitizer errors fatal.
                             Running it needs the sanitizer runtime preloaded into Python:
                             LD_PRELOAD=$(gcc -print-file-name=libasan.so)
                             ASAN_OPTIONS=detect_leaks=0 (see .ci/run).

The module lenet_fast._omp (build facts, CPU features) is always compiled without
architecture flags, so that choosing a path works on any CPU.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: The instruction-set paths, from the oldest CPUs to the newest, with their flags.
ISA_PATHS = ("portable", "avx2", "avx512")
_X86_BASE = ["-march=x86-64-v2", "-mtune=generic"]
_X86_FLAGS = {
    "portable": _X86_BASE,
    "avx2": _X86_BASE + ["-mavx2", "-mfma"],
    "avx512": _X86_BASE + ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512dq",
                           "-mavx512vl", "-mprefer-vector-width=512"],
}
_MSVC_FLAGS = {"portable": [], "avx2": ["/arch:AVX2"], "avx512": ["/arch:AVX512"]}

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


def choose_isas(requested, machine, compiler_type, compiles):
    """The instruction-set paths to build and their flags.

    Parameters
    ----------
    requested : str
        LENET_FAST_ISAS: "all" or a comma list of path names.
    machine : str
        The machine the extensions are built for (`target_machine()`).
    compiler_type : str
        "unix", "msvc", ...
    compiles : callable
        compiles(flags) -> bool: True if a test program compiles with `flags`.

    Returns
    -------
    (paths, notes)
        paths: {name: flags} in ISA_PATHS order, portable always first; notes: sentences
        saying what was left out and why (printed by the build).
    """
    names = [n.strip() for n in requested.split(",") if n.strip()]
    if requested.strip() == "all" or not names:
        names = list(ISA_PATHS)
    unknown = [n for n in names if n not in ISA_PATHS]
    if unknown:
        raise ValueError(f"LENET_FAST_ISAS: unknown path(s) {', '.join(unknown)}; expected "
                         f"all or a comma list of {', '.join(ISA_PATHS)}")
    if machine.lower() not in ("x86_64", "amd64"):
        note = "" if names == list(ISA_PATHS) else f"LENET_FAST_ISAS ignored on {machine}"
        return {"portable": []}, [note] if note else []
    table = _MSVC_FLAGS if compiler_type == "msvc" else _X86_FLAGS
    paths, notes = {}, []
    for name in ISA_PATHS:
        if name != "portable" and name not in names:
            continue
        flags = table[name]
        if flags and not compiles(flags):
            if name == "portable":
                notes.append("the compiler rejected the portable flags: building the "
                             "portable path without architecture flags")
                flags = []
            else:
                notes.append(f"the compiler rejected {' '.join(flags)}: the {name} path "
                             "is not built")
                continue
        paths[name] = list(flags)
    return paths, notes


def target_machine():
    """The machine the extensions are built for: the last part of sysconfig's platform
    (linux-x86_64, linux-aarch64, macosx-11.0-arm64, win-amd64, ...). It is the running
    machine, except in a cross build, where _PYTHON_HOST_PLATFORM names the target
    (cibuildwheel's macOS builds for the other architecture; scripts/aarch64_test.sh)."""
    return sysconfig.get_platform().rsplit("-", 1)[-1]


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
            # LDFLAGS as the extensions get it (distutils' linker for programs leaves it out),
            # so that an OpenMP runtime found through -L there (macOS: libomp) passes
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=extra_link,
                                     extra_preargs=shlex.split(os.environ.get("LDFLAGS", "")))
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
    """build_ext that probes OpenMP and each path's flags with the real compiler, and
    compiles the kernels once per instruction-set path, in parallel."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        openmp_mode = _env("LENET_FAST_OPENMP", "auto", ("auto", "0", "1"))
        isas_requested = os.environ.get("LENET_FAST_ISAS", "all").strip().lower() or "all"
        debug = os.environ.get("LENET_FAST_DEBUG", "0") == "1"
        sanitize = os.environ.get("LENET_FAST_SANITIZE", "").strip()
        if os.environ.get("LENET_FAST_ARCH"):
            warnings.warn("lenet_fast: LENET_FAST_ARCH is no longer read: every build carries "
                          "the portable, AVX2 and AVX-512 paths and picks one at import "
                          "(LENET_FAST_ISAS chooses which are built)")

        if ctype == "msvc":
            compile_args = ["/O2"] if not debug else ["/Od", "/Zi"]
        else:
            compile_args = ["-O3"] if not debug else ["-O1", "-g"]
            # Lets gcc vectorize float reductions; keeps NaN/inf semantics intact.
            compile_args += ["-fno-math-errno", "-fno-trapping-math",
                             "-fno-signed-zeros", "-fassociative-math"]
            if ctype == "unix" and sys.platform != "darwin":
                compile_args.append("-Wno-psabi")  # notes about vector ABI in portable builds
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

        def compiles(flags):
            return _try_compile(self.compiler, "int main(void){return 0;}\n", flags, [])

        try:
            paths, notes = choose_isas(isas_requested, target_machine(), ctype, compiles)
        except ValueError as exc:
            sys.exit(f"error: {exc}")
        for note in notes:
            print(f"lenet_fast: {note}")
        print(f"lenet_fast: building the kernel paths {', '.join(paths)}")

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

        # The kernel modules of the paths chosen (the largest compile first: the
        # build is parallel), then _omp, which is never compiled for a particular CPU.
        kernels = []
        for name in reversed(list(paths)):
            ext = next(e for e in self.extensions if e.name == f"{KERNELS}_{name}")
            ext.extra_compile_args = compile_args + paths[name]
            ext.define_macros = [("PyInit__kernels", f"PyInit__kernels_{name}"),
                                 ("LF_ISA", _c_string(name))]
            kernels.append(ext)
        others = [e for e in self.extensions if not e.name.startswith(KERNELS + "_")]
        for ext in others:
            ext.extra_compile_args = list(compile_args)
            ext.define_macros = []
        self.extensions = kernels + others
        for ext in self.extensions:
            ext.extra_link_args = list(link_args)
            ext.define_macros = list(ext.define_macros) + [
                ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                ("LF_BUILD_FLAGS", _c_string(" ".join(ext.extra_compile_args))),
                ("LF_BUILD_ISAS", _c_string(",".join(paths))),
            ]
        # Always compile: objects left in build/ by a build with other switches
        # (LENET_FAST_OPENMP, LENET_FAST_ISAS, LENET_FAST_DEBUG) must not be reused.
        self.force = True
        self.parallel = os.cpu_count() or 1
        super().build_extensions()


def _c_string(text):
    return '"' + text.replace('"', "").replace("\\", "") + '"'


KERNELS = "lenet_fast._kernels"


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
        Extension(name, [f"csrc/{name.rsplit('.', 1)[1]}.pyx"],
                  include_dirs=[np.get_include(), "csrc"])
        for name in ("lenet_fast._omp", KERNELS)
    ]
    omp, kernels = cythonize(extensions, compiler_directives=directives, build_dir="build",
                             include_path=["csrc"])
    # One module per instruction-set path from the one C file Cython made (a copy each,
    # so that their object files do not collide); BuildExt sets their flags and names
    # their init functions, and drops the paths it does not build.
    generated = kernels.sources[0]
    paths = []
    for name in reversed(ISA_PATHS):
        source = os.path.join(os.path.dirname(generated), f"_kernels_{name}.c")
        if not os.path.exists(source) or os.path.getmtime(source) < os.path.getmtime(generated):
            shutil.copyfile(generated, source)
        paths.append(Extension(f"{KERNELS}_{name}", [source], include_dirs=kernels.include_dirs))
    return paths + [omp]


if __name__ == "__main__":  # as pip and `python -m build` run it; tests import it
    setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
