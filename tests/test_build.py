"""The build's choice of architecture flags (issue 13, item 9) and the import-time CPU check.

`setup.py` decides from what the building CPU can run: it compiles and runs an AVX2+FMA
probe, and falls back to portable flags when the probe cannot run. `LENET_FAST_ARCH`
forces a choice. An installed package built for AVX2 refuses to import on a CPU without
it (a clear ImportError rather than SIGILL in the middle of a kernel).
"""

from __future__ import annotations

import importlib.util
import os
import platform
from pathlib import Path

import pytest

import lenet_fast

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


class _Probe:
    """Stands for the compiler: which flag sets compile, which probes run."""

    def __init__(self, compiles=True, runs=True):
        self.compiles, self.runs, self.calls = compiles, runs, []

    def __call__(self, flags, run):
        self.calls.append((tuple(flags), run))
        return self.compiles and (self.runs or not run)


def test_auto_picks_avx2_when_the_building_cpu_runs_it(setup_module):
    probe = _Probe()
    arch, flags, note = setup_module.choose_arch("auto", "x86_64", "unix", probe)
    assert (arch, flags) == ("avx2", ["-mavx2", "-mfma"])
    assert (("-mavx2", "-mfma"), True) in probe.calls, "the AVX2 probe must be run, not only compiled"


def test_auto_falls_back_to_portable_with_a_message_when_the_probe_cannot_run(setup_module):
    probe = _Probe(runs=False)
    arch, flags, note = setup_module.choose_arch("auto", "x86_64", "unix", probe)
    assert arch in ("portable", "none") and "-mavx2" not in flags
    assert "AVX2" in note and "LENET_FAST_ARCH" in note


def test_auto_falls_back_when_the_compiler_rejects_avx2(setup_module):
    arch, flags, note = setup_module.choose_arch("auto", "x86_64", "unix", _Probe(compiles=False))
    assert (arch, flags) == ("none", [])


def test_forced_avx2_is_kept_even_if_this_cpu_cannot_run_it(setup_module):
    """LENET_FAST_ARCH=avx2 builds for another machine (a distribution wheel for AVX2)."""
    arch, flags, _ = setup_module.choose_arch("avx2", "x86_64", "unix", _Probe(runs=False))
    assert (arch, flags) == ("avx2", ["-mavx2", "-mfma"])


def test_forced_portable_never_adds_avx2(setup_module):
    arch, flags, _ = setup_module.choose_arch("portable", "x86_64", "unix", _Probe())
    assert arch == "portable" and not any("avx" in f or "native" in f for f in flags)


def test_other_machines_get_no_x86_flags(setup_module):
    arch, flags, _ = setup_module.choose_arch("auto", "aarch64", "unix", _Probe())
    assert (arch, flags) == ("none", [])


def test_the_default_is_auto(setup_module, monkeypatch):
    monkeypatch.delenv("LENET_FAST_ARCH", raising=False)
    assert setup_module._env("LENET_FAST_ARCH", *setup_module.ARCH_SETTING) == "auto"


@pytest.mark.skipif(not X86, reason="x86_64 only")
def test_the_real_probe_agrees_with_the_cpu(setup_module, tmp_path):
    """The compiled probe program runs exactly when the CPU has AVX2 and FMA."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    has = "avx2" in flags and "fma" in flags
    runs = setup_module._try_compile(compiler, setup_module.AVX2_PROBE, ["-mavx2", "-mfma"], [],
                                     run=True)
    assert runs == has


def test_build_info_reports_the_choice():
    info = lenet_fast.build_info()
    assert info["arch"] in ("avx2", "portable", "native", "none")
    assert info["arch_requested"] in ("auto", "avx2", "portable", "native", "none")
    if info["arch"] == "avx2":
        assert "-mavx2" in info["compile_flags"]
    if info["arch"] in ("portable", "none"):
        assert "-mavx2" not in info["compile_flags"]


def test_an_avx2_build_refuses_to_import_on_a_cpu_without_avx2():
    from lenet_fast import _omp
    info = {"arch": "avx2", "compile_flags": "-O3 -mavx2 -mfma"}
    with pytest.raises(ImportError, match="LENET_FAST_ARCH=portable"):
        _omp.require_cpu(info, {"avx2": False, "fma": True})
    _omp.require_cpu(info, {"avx2": True, "fma": True})
    _omp.require_cpu({"arch": "portable", "compile_flags": ""}, {"avx2": False, "fma": False})


def test_the_cpu_check_module_is_built_without_arch_flags():
    """The check runs before any kernel module is imported, in code that any x86-64 CPU runs."""
    from lenet_fast import _omp
    assert "-mavx2" not in _omp.module_flags() and "-march" not in _omp.module_flags()
    features = _omp.cpu_features()
    assert set(features) == {"avx2", "fma"} and all(isinstance(v, bool) for v in features.values())
