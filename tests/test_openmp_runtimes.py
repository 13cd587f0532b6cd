"""Several OpenMP runtimes in one process: lenet_fast's (the system libgomp in a source
build, the vendored ``lenet_fast.libs/libgomp-<hash>.so`` in a wheel) beside PyTorch's and
scikit-learn's, imported in either order, with models used from several Python threads
while torch and scikit-learn run their own parallel loops.

Each scenario runs in a fresh interpreter (the import order is what is tested), and its
results must equal, bit for bit, those of a process that imported lenet_fast alone: same
kernel path, same thread count, so the same sums in the same order whatever else is
loaded. Skips without torch or scikit-learn (CI installs both, and scripts/wheel_test.sh
runs it against the installed wheel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("threadpoolctl", reason="lists the OpenMP runtimes loaded")

SCENARIO = r"""
import importlib, json, sys
from concurrent.futures import ThreadPoolExecutor

order = [name for name in sys.argv[1].split(",") if name]
for name in order:                      # the import order under test
    importlib.import_module(name)
import numpy as np
import lenet_fast
from threadpoolctl import threadpool_info

rng = np.random.default_rng(0)
x = rng.integers(0, 256, (48, 28, 28), dtype=np.uint8)
y = rng.integers(0, 10, 48)


def train_and_predict(k):
    # a model of its own per Python thread, each with a 2-thread OpenMP team
    model = lenet_fast.LeNet5("modern", c3="full", seed=1, n_threads=2)
    opt = lenet_fast.optim.SGD(lr=0.05, momentum=0.9)
    for _ in range(3):
        model.train_step(x, y, opt)
    return model.flat_params.copy(), model.predict_proba(x)


def torch_work():
    import torch
    torch.set_num_threads(2)
    a = torch.arange(64 * 64, dtype=torch.float32).reshape(64, 64) / 4096
    for _ in range(20):
        a = torch.tanh(a @ a.T / 64)
    return float(a.sum())


def sklearn_work():
    from sklearn.cluster import KMeans     # Cython prange: scikit-learn's OpenMP runtime
    data = np.random.default_rng(1).normal(size=(3000, 8))
    return float(KMeans(4, n_init=2, random_state=0).fit(data).inertia_)


shared = lenet_fast.LeNet5("lecun98", seed=2, n_threads=2)
with ThreadPoolExecutor(6) as pool:
    trained = [pool.submit(train_and_predict, k) for k in range(3)]
    # one model shared by several threads at once, as a threaded server uses it
    shared_out = [pool.submit(shared.predict_proba, x) for _ in range(3)]
    others = []
    if "torch" in sys.modules:
        others.append(pool.submit(torch_work))
    if "sklearn" in sys.modules:
        others.append(pool.submit(sklearn_work))
    trained = [f.result() for f in trained]
    shared_out = [f.result() for f in shared_out]
    [f.result() for f in others]

params, proba = trained[0]
same = all(np.array_equal(p, params) and np.array_equal(q, proba) for p, q in trained[1:])
same = same and all(np.array_equal(s, shared_out[0]) for s in shared_out[1:])
np.savez(sys.argv[2], params=params, proba=proba, shared=shared_out[0])
runtimes = sorted({i["filepath"] for i in threadpool_info() if i["user_api"] == "openmp"})
print(json.dumps({"same_in_every_thread": bool(same), "openmp": runtimes,
                  "lenet_fast": lenet_fast.__file__}))
"""


def _run(order, tmp_path):
    out = tmp_path / f"{order.replace(',', '-') or 'alone'}.npz"
    proc = subprocess.run([sys.executable, "-c", SCENARIO, order, str(out)], capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert proc.returncode == 0, f"import order {order or 'lenet_fast alone'}: {proc.stderr}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["same_in_every_thread"], f"{order}: threads disagreed"
    with np.load(out) as data:
        return report, {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    return _run("lenet_fast", tmp_path_factory.mktemp("alone"))


@pytest.mark.parametrize("order", ["lenet_fast,torch,sklearn", "torch,sklearn,lenet_fast",
                                   "sklearn,lenet_fast,torch"])
def test_other_openmp_runtimes_change_nothing(order, alone, tmp_path):
    pytest.importorskip("torch", reason="PyTorch brings its own libgomp")
    pytest.importorskip("sklearn", reason="scikit-learn brings its own libgomp")
    report, got = _run(order, tmp_path)
    # at least two runtimes really were loaded side by side (else nothing was tested)
    assert len(report["openmp"]) >= 2, report["openmp"]
    want = alone[1]
    for key in ("params", "proba", "shared"):
        assert np.array_equal(got[key], want[key]), f"{order}: {key} differs"
