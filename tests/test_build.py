"""The build's instruction-set paths (issue 17) and the import-time choice between them.

`setup.py` compiles the kernels once per path (portable x86-64-v2, AVX2+FMA, AVX-512):
building a path needs a compiler that accepts its flags, not a CPU that runs it.
`lenet_fast._isa` imports the best path the CPU runs; LENET_FAST_ISA forces one, with a
clear ImportError (never SIGILL) when the CPU lacks it.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _isa, _omp

REPO_ROOT = Path(__file__).resolve().parents[1]
X86 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.fixture(scope="module")
def setup_module():
    """setup.py imported as a module (its setup() call only runs as __main__)."""
    pytest.importorskip("setuptools", reason="setup.py needs setuptools")
    spec = importlib.util.spec_from_file_location("lenet_fast_setup", REPO_ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    cwd = os.getcwd()
    try:
        os.chdir(REPO_ROOT)
        spec.loader.exec_module(module)
    finally:
        os.chdir(cwd)
    return module


def _compiles_all(flags):
    return True


def test_every_path_is_built_by_default(setup_module):
    paths, notes = setup_module.choose_isas("all", "x86_64", "unix", _compiles_all)
    assert list(paths) == ["portable", "avx2", "avx512"] and notes == []
    assert "-march=x86-64-v2" in paths["portable"] and not any("avx" in f for f in paths["portable"])
    assert {"-mavx2", "-mfma"} <= set(paths["avx2"]) and "-mavx512f" not in paths["avx2"]
    assert {"-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl"} <= set(paths["avx512"])


def test_a_path_the_compiler_rejects_is_skipped_with_a_note(setup_module):
    paths, notes = setup_module.choose_isas(
        "all", "x86_64", "unix", lambda flags: "-mavx512f" not in flags)
    assert list(paths) == ["portable", "avx2"]
    assert any("avx512" in n for n in notes)


def test_a_subset_always_keeps_the_portable_fallback(setup_module):
    paths, _ = setup_module.choose_isas("avx512", "x86_64", "unix", _compiles_all)
    assert list(paths) == ["portable", "avx512"]


def test_unknown_paths_are_refused(setup_module):
    with pytest.raises(ValueError, match="sse9"):
        setup_module.choose_isas("portable,sse9", "x86_64", "unix", _compiles_all)


def test_other_machines_build_the_portable_path_without_x86_flags(setup_module):
    paths, _ = setup_module.choose_isas("all", "aarch64", "unix", _compiles_all)
    assert paths == {"portable": []}


def test_the_paths_follow_the_target_machine_of_a_cross_build(setup_module, monkeypatch):
    """A cross build names its target in _PYTHON_HOST_PLATFORM (cibuildwheel's macOS builds
    for the other architecture, scripts/aarch64_test.sh): the paths are the target's."""
    monkeypatch.setenv("_PYTHON_HOST_PLATFORM", "linux-aarch64")
    assert setup_module.target_machine() == "aarch64"
    monkeypatch.setenv("_PYTHON_HOST_PLATFORM", "macosx-10.15-x86_64")
    assert setup_module.target_machine() == "x86_64"
    monkeypatch.setenv("_PYTHON_HOST_PLATFORM", "macosx-11.0-arm64")
    paths, _ = setup_module.choose_isas("all", setup_module.target_machine(), "unix", _compiles_all)
    assert paths == {"portable": []}


def test_the_build_probes_link_with_ldflags(setup_module, monkeypatch):
    """The OpenMP probe links as the extensions do, LDFLAGS included (where macOS builds
    find libomp): a library that LDFLAGS names but that does not exist fails it."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler on PATH")
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    program = "int main(void) { return 0; }\n"
    monkeypatch.delenv("LDFLAGS", raising=False)
    assert setup_module._try_compile(compiler, program, [], [], run=True)
    monkeypatch.setenv("LDFLAGS", "-lno_such_library_lenet_fast")
    assert not setup_module._try_compile(compiler, program, [], [])


def test_build_info_reports_the_path_that_runs():
    info = lenet_fast.build_info()
    assert info["isa"] in info["isa_built"] and info["isa"] in info["isa_supported"]
    assert info["lanes"] == {"portable": 4, "avx2": 8, "avx512": 16}[info["isa"]]
    assert info["isa_built"] == _omp.built_isas()
    if info["isa"] == "avx512":
        assert "-mavx512f" in info["compile_flags"]
    if info["isa"] == "portable":
        assert "-mavx2" not in info["compile_flags"]
    if os.environ.get("LENET_FAST_ISA", "auto") == "auto":   # the best one both allow
        assert info["isa"] == [p for p in info["isa_built"] if p in info["isa_supported"]][-1]


def test_the_choice_refuses_what_the_cpu_cannot_run():
    no512 = {f: True for f in ("sse4.2", "popcnt", "ssse3", "avx2", "fma")}
    supported = _isa.supported(no512, x86=True)
    assert supported == ["portable", "avx2"]
    assert _isa.choose("", _isa.PATHS, supported, no512) == "avx2"
    with pytest.raises(ImportError, match="AVX512F"):
        _isa.choose("avx512", _isa.PATHS, supported, no512)
    with pytest.raises(ImportError, match="did not build"):
        _isa.choose("avx2", ["portable"], supported, no512)
    with pytest.raises(ImportError, match="expected auto or one of"):
        _isa.choose("sse9", _isa.PATHS, supported, no512)
    old = {f: False for f in no512}
    with pytest.raises(ImportError, match="no kernel path"):
        _isa.choose("auto", _isa.PATHS, _isa.supported(old, x86=True), old)
    assert _isa.supported(old, x86=False) == ["portable"]


def test_forcing_a_path_the_cpu_lacks_fails_at_import_with_a_clear_error():
    missing = [p for p in _isa.PATHS if p not in _isa.SUPPORTED]
    target = missing[0] if missing else "sse9"
    proc = subprocess.run([sys.executable, "-c", "import lenet_fast"], capture_output=True,
                          text=True, env=dict(os.environ, LENET_FAST_ISA=target), timeout=120)
    assert proc.returncode != 0 and "ImportError" in proc.stderr and "LENET_FAST_ISA" in proc.stderr


@pytest.mark.parametrize("path", _isa.PATHS)
def test_each_supported_path_trains_like_the_others(path):
    """Every path built and runnable here gives the same predictions and nearly the same
    loss (paths may differ in the last bits), and each is bitwise thread-invariant."""
    if path not in _isa.BUILT or path not in _isa.SUPPORTED:
        pytest.skip(f"{path} is not built or not run by this CPU")
    code = (
        "import numpy as np, lenet_fast;"
        "rng = np.random.default_rng(0);"
        "x = rng.integers(0, 256, (48, 28, 28), dtype=np.uint8);"
        "y = rng.integers(0, 10, 48);"
        "out = [];"
        "import sys\n"
        "for t in (1, 2):\n"
        "    m = lenet_fast.LeNet5(seed=0, n_threads=t)\n"
        "    opt = lenet_fast.optim.SGD(lr=0.05, momentum=0.9)\n"
        "    for _ in range(3): m.train_step(x, y, opt)\n"
        "    out.append(m.flat_params.copy())\n"
        "assert np.array_equal(out[0], out[1]), 'thread count changed the result'\n"
        "np.save(sys.argv[1], out[0])\n"
    )
    ref = None
    results = {}
    for p in (path, _isa.ISA):
        target = Path(os.environ.get("TMPDIR", "/tmp")) / f"lf_isa_{os.getpid()}_{p}.npy"
        proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True,
                              text=True, env=dict(os.environ, LENET_FAST_ISA=p), timeout=300)
        assert proc.returncode == 0, proc.stderr
        results[p] = np.load(target)
        target.unlink()
    ref = results[_isa.ISA]
    # three momentum steps amplify last-bit differences: a loose bound, far below
    # the weights' scale (a wrong kernel moves them by ~0.1)
    np.testing.assert_allclose(results[path], ref, rtol=0, atol=2e-3)


def test_the_cpu_check_module_is_built_without_arch_flags():
    """The choice runs before any kernel module is imported, in code any CPU runs."""
    assert "-mavx" not in _omp.module_flags() and "-march" not in _omp.module_flags()
    features = _omp.cpu_features()
    assert {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(features)
    assert all(isinstance(v, bool) for v in features.values())
