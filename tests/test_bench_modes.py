"""`lenet-fast bench --time-to-accuracy` and `--busy` (lenet_fast.bench.time_to_accuracy,
lenet_fast.bench.busy): what they compute, on small settings (their figures are in the README)."""

import numpy as np
import pytest

from lenet_fast import LeNet5, datasets
from lenet_fast.bench import busy
from lenet_fast.bench import time_to_accuracy as tta
from lenet_fast._io import datasets as _datasets  # patched: the code reads it there


def test_seconds_to_target_is_the_first_epoch_reaching_it():
    assert tta._to_target([2.0, 3.0, 4.0], [0.98, 0.991, 0.995], 0.99) == (5.0, 2)
    assert tta._to_target([2.0, 3.0], [0.98, 0.985], 0.99) == (None, None)


def test_torch_copy_starts_from_the_same_weights():
    torch = pytest.importorskip("torch", reason="PyTorch is optional (pip install torch==2.13.0)")
    model = LeNet5("modern", c3="full", seed=3)
    x = np.random.default_rng(0).uniform(-0.1, 1.175, (5, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        out = tta.torch_copy(torch, model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, model.forward(x), rtol=1e-4, atol=1e-4)


def test_time_to_accuracy_reports_each_epoch(monkeypatch):
    try:
        train = datasets.load_mnist("train", download=False, progress=False)
    except (datasets.DataNotFoundError, OSError):
        pytest.skip("MNIST not found ($LENET_FAST_DATA_DIR)")
    small = (train[0][:3000], train[1][:3000])
    monkeypatch.setattr(_datasets, "load_mnist",
                        lambda split, *a, **k: small if split == "train" else
                        (train[0][-1000:], train[1][-1000:]))
    result = tta.run(threads=[1], epochs=2, target=0.5, use_torch=False)
    (run,) = result["runs"]
    assert run["library"] == "lenet_fast" and len(run["accuracy"]) == 2
    assert run["epoch_reaching_target"] == 1 and run["seconds_to_target"] == run["seconds"][0]
    assert result["recipe"]["c3"] == "full" and result["ratio"] is None
    assert "not run" in tta.format_markdown(result)


def test_busy_measures_both_thread_counts_and_stops_its_neighbour(tmp_path):
    with busy.BusyNeighbour() as n:
        assert n.proc.poll() is None            # spinning
    assert n.proc.returncode is not None        # killed and reaped: no process left behind
    result = busy.run(batch_sizes=[32], rounds=1, round_time=0.05, use_torch=False,
                      data_dir=tmp_path)            # no MNIST there: random images
    (row,) = result["rows"]
    r = row["lenet_fast"]
    assert r["1"]["median"] > 0 and r["2"]["median"] > 0
    assert r["ratio"] == pytest.approx(r["2"]["median"] / r["1"]["median"])
    assert "2 threads / 1" in busy.format_markdown(result)
    with pytest.raises(ValueError, match="threads"):
        busy.run(threads=1)
