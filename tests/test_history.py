"""The training history saved with a model (``meta/history``) and restored by
`lenet_fast.load` as ``model.history``; per-sample results of `metrics.evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lenet_fast
from lenet_fast import CheckpointError, LeNet5, Trainer, checkpoint, optim
from lenet_fast.metrics import evaluate
from lenet_fast._io import checkpoint as _checkpoint  # its private helpers


@pytest.fixture(scope="module")
def small(mnist_train, mnist_test):
    return (mnist_train[0][:600], mnist_train[1][:600]), (mnist_test[0][:300], mnist_test[1][:300])


@pytest.fixture(scope="module", params=["modern", "lecun98"])
def trained(request, small):
    model = LeNet5(request.param, seed=0, n_threads=1)
    history = Trainer(model, optim.make_optimizer("adam", 0.002), batch_size=32, epochs=2,
                      progress=False).fit(small[0], validation=small[1])
    return model, history


def _write(path, arrays):
    """An archive with a consistent digest (as a forger would make it)."""
    arrays = dict(arrays)
    arrays.pop("meta/sha256", None)
    arrays["meta/sha256"] = np.array(_checkpoint._digest(arrays))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_history_travels_with_the_model(trained, tmp_path):
    model, history = trained
    assert model.history == history and model.history is not history
    assert [r["epoch"] for r in history] == [1, 2]
    assert {"lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    model.save(tmp_path / "m.npz")
    loaded = lenet_fast.load(tmp_path / "m.npz")
    assert loaded.history == history
    assert LeNet5(model.variant).history == []


def test_file_without_history_loads_with_an_empty_one(trained, tmp_path):
    model, _ = trained
    arrays = _checkpoint._pack(model)  # what files written before the history look like
    assert "meta/history" not in arrays
    _write(tmp_path / "old.npz", arrays)
    loaded = lenet_fast.load(tmp_path / "old.npz")
    assert loaded.history == []
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)


def test_training_checkpoint_gives_its_history(trained, small, tmp_path):
    model, _ = trained
    net = LeNet5(model.variant, seed=1, n_threads=1)
    Trainer(net, optim.make_optimizer("sgd", 0.01), epochs=1, progress=False,
            checkpoint_dir=tmp_path).fit(small[0])
    assert lenet_fast.load(tmp_path / "epoch-001.npz").history == net.history


@pytest.mark.parametrize("history, problem", [
    ("{}", "not a list"),
    ("[1, 2]", "entry 0 is a int"),
    ('[{"epoch": [1]}]', "not a number or string"),
    ('[{"epoch": true}]', "not a number or string"),
    ('[{"note": "' + "x" * 300 + '"}]', "longer than 256"),
    (json.dumps([{f"k{i}": i for i in range(65)}]), "65 keys"),
    (json.dumps([{}] * 5_001), "5001 entries"),
    ("[{", "not valid JSON"),
])
def test_bad_history_is_refused(trained, tmp_path, history, problem):
    model, _ = trained
    _write(tmp_path / "bad.npz", _checkpoint._pack(model, {"meta/history": np.array(history)}))
    with pytest.raises(CheckpointError, match=problem):
        lenet_fast.load(tmp_path / "bad.npz")


def test_history_entry_must_be_text(trained, tmp_path):
    model, _ = trained
    _write(tmp_path / "bad.npz", _checkpoint._pack(model, {"meta/history": np.zeros(3)}))
    with pytest.raises(CheckpointError, match="meta/history is not a JSON text"):
        lenet_fast.load(tmp_path / "bad.npz")


def test_history_size_is_bounded(trained, tmp_path):
    model, _ = trained
    text = "[" + " " * checkpoint.HISTORY_MAX_BYTES + "]"  # valid JSON, too long
    _write(tmp_path / "big.npz", _checkpoint._pack(model, {"meta/history": np.array(text)}))
    with pytest.raises(CheckpointError, match="at most 1,048,576 bytes"):
        lenet_fast.load(tmp_path / "big.npz")
    net = LeNet5("modern")
    net.history = [{f"key{k}": "v" * 200 for k in range(6)}] * 1000  # ~1.3 MB of JSON
    with pytest.raises(ValueError, match="bytes of JSON"):
        net.save(tmp_path / "m.npz")


def test_saving_an_unfit_history_fails_and_writes_nothing(tmp_path):
    model = LeNet5("modern")
    model.history = [{"epoch": 1, "weights": np.zeros(3)}]
    with pytest.raises(ValueError, match="'weights': a ndarray"):
        model.save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())
    model.history = [{"epoch": np.int64(1), "loss": np.float32(0.5)}]  # numpy scalars are fine
    model.save(tmp_path / "m.npz")
    assert lenet_fast.load(tmp_path / "m.npz").history == [{"epoch": 1, "loss": 0.5}]


def test_per_sample_results(trained, small):
    model, _ = trained
    images, labels = small[1]
    metrics = evaluate(model, images, labels, batch_size=128, per_sample=True)
    assert metrics["predictions"].dtype == np.int64
    np.testing.assert_array_equal(metrics["predictions"], model.predict(images))
    assert metrics["probabilities"].dtype == np.float32
    assert metrics["probabilities"].shape == (300, 10)
    np.testing.assert_allclose(metrics["probabilities"], model.predict_proba(images), atol=1e-6)
    losses = metrics["losses"]
    assert losses.shape == (300,) and losses.dtype == np.float64
    assert losses.mean() == pytest.approx(metrics["loss"], rel=1e-5)
    # each sample's loss is the model's loss on that sample alone
    from lenet_fast.datasets import preprocess
    for i in (0, 7, 299):
        alone, _ = model.loss(preprocess(images[i:i + 1]), labels[i:i + 1])
        assert losses[i] == pytest.approx(alone, rel=1e-4, abs=1e-5)
    plain = evaluate(model, images, labels)
    assert "losses" not in plain and plain["confusion"] == metrics["confusion"]
