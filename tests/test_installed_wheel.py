"""The repaired wheel as a user installs it (scripts/wheel_test.sh): the package runs from
site-packages, not from a checkout; the one x86-64 wheel carries every kernel path; the
kernels load the libgomp vendored into the wheel; no compiler is reachable; the license
text and metadata are in the installed distribution.

scripts/wheel_test.sh runs these (with the kernel, model and CLI tests) from a copy of
tests/ outside the checkout, with LENET_FAST_EXPECT_WHEEL=1; elsewhere they skip.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

import lenet_fast

pytestmark = pytest.mark.skipif(
    os.environ.get("LENET_FAST_EXPECT_WHEEL") != "1",
    reason="checks an installed wheel: scripts/wheel_test.sh runs it (LENET_FAST_EXPECT_WHEEL=1)")

PACKAGE = Path(lenet_fast.__file__).resolve().parent
SITE = Path(sysconfig.get_paths()["platlib"]).resolve()


def test_the_package_runs_from_site_packages_not_from_a_checkout():
    assert PACKAGE == SITE / "lenet_fast", lenet_fast.__file__
    assert SITE.name == "site-packages" and Path(sys.prefix).resolve() in SITE.parents
    # no source tree anywhere on the import path
    for entry in sys.path:
        folder = Path(entry or ".").resolve()
        assert not (folder / "lenet_fast" / "__init__.py").is_file() or folder == SITE, entry
    assert not (PACKAGE.parent.parent / "setup.py").exists()
    running = f"lenet_fast._kernels_{lenet_fast.build_info()['isa']}"
    for module in ("lenet_fast._omp", "lenet_fast._isa", running):
        assert Path(sys.modules[module].__file__).resolve().is_relative_to(PACKAGE)


def test_every_kernel_path_is_in_the_one_wheel_and_the_best_one_runs():
    info = lenet_fast.build_info()
    expected = ["portable", "avx2", "avx512"] if platform.machine() == "x86_64" else ["portable"]
    assert info["isa_built"] == expected
    assert info["isa"] == [p for p in expected if p in info["isa_supported"]][-1]
    assert info["openmp"]
    for path in expected:
        assert len(list(PACKAGE.glob(f"_kernels_{path}.*.so"))) == 1


def test_the_kernels_use_the_vendored_libgomp():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    vendored = list((SITE / "lenet_fast.libs").glob("libgomp*.so*"))
    assert len(vendored) == 1, vendored
    lenet_fast.LeNet5(seed=0, n_threads=2).predict_proba(
        __import__("numpy").zeros((4, 28, 28), "uint8"))
    loaded = {Path(i["filepath"]).resolve() for i in threadpoolctl.threadpool_info()
              if i["user_api"] == "openmp"}
    assert vendored[0].resolve() in loaded, loaded


def test_no_compiler_is_reachable():
    for name in ("cc", "gcc", "c++", "g++", "clang", f"{platform.machine()}-linux-gnu-gcc"):
        assert shutil.which(name) is None, f"{name} is on PATH: {shutil.which(name)}"
    assert os.environ.get("CC") == "false"


def test_the_installed_distribution_carries_the_license():
    dist = importlib.metadata.distribution("lenet-fast")
    assert dist.metadata["License-Expression"] == "MIT"
    licenses = [f for f in dist.files if f.name == "LICENSE" and "licenses" in f.parts]
    assert len(licenses) == 1
    assert "MIT License" in licenses[0].read_text()
    assert dist.version == lenet_fast.__version__
