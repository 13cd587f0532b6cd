"""Tests for lenet_fast.Trainer on real MNIST (small subsets, except the CI
accuracy test, which trains one epoch on all 60,000 training digits)."""

from __future__ import annotations

import math
import os
import signal

import numpy as np

import lenet_fast
from lenet_fast.datasets import preprocess
import pytest

from lenet_fast import checkpoint
from lenet_fast.metrics import evaluate
from lenet_fast import LeNet5
from lenet_fast.optim import SGD, Adam
from lenet_fast.schedules import LRSchedule
from lenet_fast import Trainer, TrainingDiverged, TrainingInterrupted
from lenet_fast._io import checkpoint as _checkpoint  # patched where the trainer reads it

HISTORY_KEYS = {"epoch", "lr", "train_loss", "train_accuracy", "images_per_second", "seconds"}
# Keys of a history record that do not depend on timing.
DETERMINISTIC_KEYS = ("epoch", "lr", "train_loss", "train_accuracy")


@pytest.fixture(scope="module")
def train_small(mnist_train):
    """The first 2,000 training digits."""
    images, labels = mnist_train
    return images[:2000], labels[:2000]


@pytest.fixture(scope="module")
def small_test_set(mnist_test):
    """The first 1,000 test digits."""
    images, labels = mnist_test
    return images[:1000], labels[:1000]


def _optimizer(kind):
    if kind == "adam":
        return Adam(lr=2e-3)
    if kind == "sgd":
        return SGD(lr=0.05, momentum=0.9)
    raise ValueError(kind)


def _trainer(model, opt, **kw):
    kw.setdefault("batch_size", 64)
    kw.setdefault("progress", False)
    return Trainer(model, opt, **kw)


def _assert_same_optimizer_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert np.array_equal(sa[key], sb[key]), f"optimizer state {key!r} differs"


def _deterministic(history):
    return [{k: rec[k] for k in DETERMINISTIC_KEYS} for rec in history]


class _Crash(Exception):
    """Stands for the process dying (after a checkpoint was written)."""


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_weights_whatever_the_thread_count(train_small):
    weights = []
    for nt in (1, 2):
        model = LeNet5("modern", seed=0, n_threads=nt)
        _trainer(model, Adam(lr=1e-3), epochs=1, seed=0).fit(train_small)
        weights.append(model.flat_params.copy())
    assert np.array_equal(weights[0], weights[1])
    # ... and the seed matters: another shuffling gives other weights.
    model = LeNet5("modern", seed=0, n_threads=2)
    _trainer(model, Adam(lr=1e-3), epochs=1, seed=1).fit(train_small)
    assert not np.array_equal(model.flat_params, weights[0])


# ----------------------------------------------------------------------------- resume
@pytest.mark.parametrize("kind, schedule", [("adam", "cosine"), ("sgd", "onecycle")])
def test_resume_from_epoch_checkpoint_equals_uninterrupted(kind, schedule, train_small, tmp_path,
                                                           monkeypatch):
    """A 2-epoch run that dies after writing epoch-001.npz, resumed by a new Trainer,
    ends exactly like the uninterrupted run (weights and optimizer state).

    The first run is laid out for 2 epochs: a run started with epochs=1 would save a
    schedule laid out for 1 epoch, and a resumed run keeps the checkpoint's schedule
    (see test_extending_a_finished_run_keeps_its_schedule)."""
    data = (train_small[0][:1280], train_small[1][:1280])

    full_model, full_opt = LeNet5("modern", seed=0), _optimizer(kind)
    full = _trainer(full_model, full_opt, epochs=2, schedule=schedule, seed=4)
    full.fit(data)

    # The same run, dying right after its first per-epoch checkpoint.
    real_save = checkpoint.save_training

    def save_then_die(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        raise _Crash(path)

    monkeypatch.setattr(_checkpoint, "save_training", save_then_die)
    with pytest.raises(_Crash):
        _trainer(LeNet5("modern", seed=0), _optimizer(kind), epochs=2, schedule=schedule,
                 seed=4, checkpoint_dir=tmp_path).fit(data)
    monkeypatch.undo()
    ckpt = tmp_path / "epoch-001.npz"
    assert sorted(os.listdir(tmp_path)) == ["epoch-001.npz"]

    # A new process: other initial weights and optimizer settings, all replaced by the resume.
    model = LeNet5("modern", seed=123)
    opt = Adam(lr=0.5) if kind == "adam" else SGD(lr=0.5, momentum=0.5)
    resumed = _trainer(model, opt, epochs=2, schedule=schedule, seed=4,
                       checkpoint_dir=tmp_path)
    history = resumed.fit(data, resume=ckpt)

    assert np.array_equal(model.flat_params, full_model.flat_params)
    _assert_same_optimizer_state(opt, full_opt)
    assert opt.step_count == full_opt.step_count == 2 * 20
    assert _deterministic(history) == _deterministic(full.history)
    assert sorted(os.listdir(tmp_path)) == ["epoch-001.npz", "epoch-002.npz"]
    assert np.array_equal(lenet_fast.load(tmp_path / "epoch-002.npz").flat_params,
                          full_model.flat_params)


def test_extending_a_finished_run_with_a_constant_schedule(train_small, tmp_path):
    """1 epoch with checkpoint_dir, then a new Trainer resuming from epoch-001.npz to 2
    epochs: with a constant learning rate this is the same as 2 epochs in one go."""
    data = (train_small[0][:1280], train_small[1][:1280])
    full_model, full_opt = LeNet5("modern", seed=0), SGD(lr=0.05, momentum=0.9)
    _trainer(full_model, full_opt, epochs=2, seed=2).fit(data)

    _trainer(LeNet5("modern", seed=0), SGD(lr=0.05, momentum=0.9), epochs=1, seed=2,
             checkpoint_dir=tmp_path).fit(data)
    model, opt = LeNet5("modern", seed=1), SGD(lr=0.05, momentum=0.9)
    _trainer(model, opt, epochs=2, seed=2).fit(data, resume=tmp_path / "epoch-001.npz")
    assert np.array_equal(model.flat_params, full_model.flat_params)
    _assert_same_optimizer_state(opt, full_opt)


def test_extending_a_finished_run_keeps_its_schedule(train_small, tmp_path):
    """Resuming keeps the checkpoint's schedule (as `lenet-fast train --resume` warns):
    a cosine schedule laid out for 1 epoch stays at its final rate, 0, afterwards."""
    data = (train_small[0][:640], train_small[1][:640])
    _trainer(LeNet5("modern", seed=0), Adam(lr=2e-3), epochs=1, schedule="cosine",
             checkpoint_dir=tmp_path).fit(data)
    model = LeNet5("modern", seed=0)
    t = _trainer(model, Adam(lr=2e-3), epochs=2, schedule="cosine")
    history = t.fit(data, resume=tmp_path / "epoch-001.npz")
    assert [rec["epoch"] for rec in history] == [1, 2]
    assert history[1]["lr"] == 0.0
    assert np.array_equal(model.flat_params,
                          lenet_fast.load(tmp_path / "epoch-001.npz").flat_params)


def test_resume_with_other_settings_is_refused(train_small, tmp_path):
    data = (train_small[0][:256], train_small[1][:256])
    _trainer(LeNet5("modern"), Adam(), epochs=1, seed=0, checkpoint_dir=tmp_path).fit(data)
    ckpt = tmp_path / "epoch-001.npz"
    with pytest.raises(ValueError, match="batch_size"):
        _trainer(LeNet5("modern"), Adam(), epochs=2, batch_size=32).fit(data, resume=ckpt)
    with pytest.raises(ValueError, match="seed"):
        _trainer(LeNet5("modern"), Adam(), epochs=2, seed=1).fit(data, resume=ckpt)
    with pytest.raises(ValueError, match="modern"):
        _trainer(LeNet5("lecun98"), Adam(), epochs=2).fit(data, resume=ckpt)
    with pytest.raises(ValueError):  # an Adam checkpoint into SGD
        _trainer(LeNet5("modern"), SGD(), epochs=2).fit(data, resume=ckpt)
    with pytest.raises(FileNotFoundError):
        _trainer(LeNet5("modern"), Adam(), epochs=2).fit(data, resume=tmp_path / "nope.npz")


# ----------------------------------------------------------------------------- Ctrl-C
def _interrupt_at(monkeypatch, model, call, times=1):
    """Make the model's `call`-th train_step send SIGINT to this process `times` times."""
    real_step = model.train_step
    calls = []

    def step(x, y, opt, **kw):
        calls.append(1)
        if len(calls) == call:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return real_step(x, y, opt, **kw)

    monkeypatch.setattr(model, "train_step", step)
    return calls


@pytest.mark.parametrize("call", [5, 20 + 5], ids=["epoch1", "epoch2"])
def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(call, train_small, tmp_path,
                                                        monkeypatch):
    data = (train_small[0][:1280], train_small[1][:1280])  # 20 batches per epoch
    full_model, full_opt = LeNet5("modern", seed=0), Adam(lr=2e-3)
    full = _trainer(full_model, full_opt, epochs=2, schedule="cosine", seed=1)
    full.fit(data)

    handler_before = signal.getsignal(signal.SIGINT)
    model, opt = LeNet5("modern", seed=0), Adam(lr=2e-3)
    calls = _interrupt_at(monkeypatch, model, call)
    trainer = _trainer(model, opt, epochs=2, schedule="cosine", seed=1,
                       checkpoint_dir=tmp_path)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(data)
    assert signal.getsignal(signal.SIGINT) is handler_before, "SIGINT handler not restored"

    # The step during which Ctrl-C arrived completed; nothing after it ran.
    assert len(calls) == call and opt.step_count == call
    path = info.value.checkpoint
    assert path == os.path.join(tmp_path, "interrupted.npz") and os.path.isfile(path)
    epoch, batch = divmod(call, 20)
    assert f"epoch {epoch + 1}, batch {batch}" in str(info.value)
    assert path in str(info.value)
    assert isinstance(info.value, KeyboardInterrupt)
    _, _, _, state = checkpoint.read_training(path)
    assert (state["epoch"], state["batch"]) == (epoch, batch)
    assert np.array_equal(lenet_fast.load(path).flat_params, model.flat_params)

    model2, opt2 = LeNet5("modern", seed=9), Adam(lr=1e-4)
    history = _trainer(model2, opt2, epochs=2, schedule="cosine", seed=1).fit(data, resume=path)
    assert np.array_equal(model2.flat_params, full_model.flat_params)
    _assert_same_optimizer_state(opt2, full_opt)
    assert [rec["epoch"] for rec in history] == [1, 2]
    assert history[-1]["lr"] == full.history[-1]["lr"]


def test_second_ctrl_c_stops_at_once(train_small, tmp_path, monkeypatch):
    data = (train_small[0][:640], train_small[1][:640])
    handler_before = signal.getsignal(signal.SIGINT)
    model, opt = LeNet5("modern", seed=0), Adam()
    _interrupt_at(monkeypatch, model, 3, times=2)
    with pytest.raises(KeyboardInterrupt) as info:
        _trainer(model, opt, epochs=1, checkpoint_dir=tmp_path).fit(data)
    assert not isinstance(info.value, TrainingInterrupted)
    assert opt.step_count == 2  # the third step never ran
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert not os.path.exists(tmp_path / "interrupted.npz")


def test_ctrl_c_without_checkpoint_dir(train_small, monkeypatch):
    data = (train_small[0][:640], train_small[1][:640])
    model = LeNet5("modern", seed=0)
    _interrupt_at(monkeypatch, model, 2)
    with pytest.raises(TrainingInterrupted) as info:
        _trainer(model, Adam(), epochs=1).fit(data)
    assert info.value.checkpoint is None


# ----------------------------------------------------------------------------- divergence
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("variant, lr", [("modern", 1e6), ("lecun98", 1e12)])
def test_absurd_learning_rate_raises_training_diverged(variant, lr, train_small):
    data = (train_small[0][:1280], train_small[1][:1280])
    model = LeNet5(variant, seed=0)
    trainer = _trainer(model, SGD(lr=lr), epochs=1)
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf)") as info:
        trainer.fit(data)
    message = str(info.value)
    assert "epoch 1" in message and "lower learning rate" in message
    assert np.all(np.isfinite(model.flat_params)), "a non-finite update was applied"


class _JumpAfterFirstEpoch(LRSchedule):
    """A sane rate for the first epoch, then an absurd one."""

    name = "jump"

    def __init__(self, lr, steps_per_epoch):
        self.lr, self.steps_per_epoch = lr, steps_per_epoch

    def _params(self):
        return {"lr": self.lr, "steps_per_epoch": self.steps_per_epoch}

    def lr_at(self, step):
        return self.lr if step < self.steps_per_epoch else 1e6


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_divergence_in_second_epoch_keeps_last_checkpoint_usable(train_small, tmp_path):
    data = (train_small[0][:1280], train_small[1][:1280])
    model = LeNet5("modern", seed=0)
    trainer = _trainer(model, SGD(lr=0.05, momentum=0.9), epochs=3,
                       schedule=_JumpAfterFirstEpoch(0.05, 20), checkpoint_dir=tmp_path)
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(data)
    ckpt = os.path.join(tmp_path, "epoch-001.npz")
    assert "epoch 2" in str(info.value)
    assert f"the last good checkpoint is {ckpt}" in str(info.value)
    assert np.all(np.isfinite(model.flat_params))
    assert sorted(os.listdir(tmp_path)) == ["epoch-001.npz"]
    saved = lenet_fast.load(ckpt)
    assert np.all(np.isfinite(saved.flat_params))
    _, _, _, state = checkpoint.read_training(ckpt)
    assert state["epoch"] == 1 and len(state["history"]) == 1


def test_nan_batch_is_not_applied(train_small, monkeypatch):
    """A NaN loss stops training before the update: the weights are those of the last
    good step."""
    data = (train_small[0][:640], train_small[1][:640])
    model, opt = LeNet5("modern", seed=0), Adam()
    real_step = model.train_step
    snapshots = []

    def step(x, y, o, **kw):
        snapshots.append(model.flat_params.copy())
        if len(snapshots) == 4:
            x = preprocess(x)         # the trainer passes uint8 digits
            x[1, 0, 10, 10] = np.nan
        return real_step(x, y, o, **kw)

    monkeypatch.setattr(model, "train_step", step)
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, batch 4"):
        _trainer(model, opt, epochs=1).fit(data)
    assert np.array_equal(model.flat_params, snapshots[-1])
    assert not np.array_equal(snapshots[-1], snapshots[0])
    assert opt.step_count == 3


# ----------------------------------------------------------------------------- arguments
def test_bad_arguments(train_small):
    images, labels = train_small[0][:100], train_small[1][:100]
    model, opt = LeNet5("modern"), Adam()
    for bad in (0, -1, 2.5, True, "64"):
        with pytest.raises(ValueError, match="batch_size"):
            Trainer(model, opt, batch_size=bad)
    for bad in (0, -3, 1.0):
        with pytest.raises(ValueError, match="epochs"):
            Trainer(model, opt, epochs=bad)
    with pytest.raises(ValueError, match="eval_batch_size"):
        Trainer(model, opt, eval_batch_size=0)

    trainer = _trainer(model, opt, epochs=1)
    before = model.flat_params.copy()
    with pytest.raises((TypeError, ValueError), match="uint8"):
        trainer.fit((images.astype(np.float32), labels))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        trainer.fit((images.reshape(100, 784), labels))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        trainer.fit((np.zeros((100, 32, 32), np.uint8), labels))
    with pytest.raises(ValueError, match=r"labels must be integers of shape \(100,\)"):
        trainer.fit((images, labels[:99]))
    with pytest.raises(ValueError, match="labels"):
        trainer.fit((images, labels.astype(np.float32)))
    bad_labels = labels.copy()
    bad_labels[7] = 10
    with pytest.raises(ValueError, match="0..9"):
        trainer.fit((images, bad_labels))
    with pytest.raises(TypeError, match="pair"):
        trainer.fit(images)
    with pytest.raises(ValueError, match="empty"):
        trainer.fit((images[:0], labels[:0]))
    with pytest.raises(ValueError, match="validation"):
        trainer.fit((images, labels), validation=(images, labels[:5]))
    assert np.array_equal(model.flat_params, before), "a rejected fit changed the weights"


# ----------------------------------------------------------------------------- history
def test_history_records(train_small, small_test_set):
    data = (train_small[0][:640], train_small[1][:640])
    model = LeNet5("modern", seed=0)
    trainer = _trainer(model, Adam(lr=2e-3), epochs=2, schedule="cosine")
    history = trainer.fit(data)
    assert history is trainer.history and len(history) == 2
    for i, rec in enumerate(history):
        assert set(rec) == HISTORY_KEYS
        assert rec["epoch"] == i + 1
        assert math.isfinite(rec["train_loss"]) and rec["train_loss"] > 0
        assert 0 <= rec["train_accuracy"] <= 1
        assert rec["seconds"] > 0 and rec["images_per_second"] > 0
        assert isinstance(rec["lr"], float)
    assert trainer.train_images == 2 * 640

    model = LeNet5("modern", seed=0)
    history = _trainer(model, Adam(lr=2e-3), epochs=1).fit(data, validation=small_test_set)
    (rec,) = history
    assert set(rec) == HISTORY_KEYS | {"val_accuracy", "val_loss"}
    metrics = evaluate(model, *small_test_set)
    assert rec["val_accuracy"] == metrics["accuracy"]
    assert rec["val_loss"] == pytest.approx(metrics["loss"])


def test_a_second_fit_starts_a_new_history(train_small):
    data = (train_small[0][:320], train_small[1][:320])
    trainer = _trainer(LeNet5("modern", seed=0), Adam(), epochs=2)
    trainer.fit(data)
    history = trainer.fit(data)
    assert [rec["epoch"] for rec in history] == [1, 2]


# ----------------------------------------------------------------------------- accuracy
def test_ci_accuracy_modern_one_epoch_full_mnist(mnist_train, mnist_test):
    """One epoch of the modern LeNet-5 on all 60,000 training digits reaches >= 98% on
    the 10,000 test digits (~20 s)."""
    model = LeNet5("modern", seed=0)
    trainer = Trainer(model, Adam(lr=2e-3), batch_size=64, epochs=1, schedule="cosine",
                      seed=0, progress=False)
    history = trainer.fit(mnist_train)
    metrics = evaluate(model, *mnist_test)
    assert metrics["n"] == 10_000
    assert metrics["accuracy"] >= 0.98, (
        f"test accuracy {metrics['accuracy']:.4f} after one epoch "
        f"(train accuracy {history[0]['train_accuracy']:.4f})")


def test_lecun98_trains(mnist_train, mnist_test):
    """The paper's network learns: > 90% on 1,000 test digits after one epoch on 20,000.

    It needs more steps than the modern variant. With the paper's initialisation
    (U(+-2.4/F), F the fan-in) the signal shrinks layer by layer, so at the start F6's
    output hardly depends on the input, and while every RBF distance is above j
    (`MAP_J`) the MAP criterion only pulls the output towards the right code. Measured
    (seed 0, 1,000 test digits): 5,000 images, batch 64, Adam 1e-3 (78 steps): 44%
    (modern: 87%); 5,000 images, batch 16, Adam 2e-3: 88%; 60,000 images, batch 64,
    Adam 1e-3: 96%; this test's setting (625 steps): 95%. The forward and backward
    passes match the float64 reference (test_model.py), so this is the paper's
    training dynamics, not a gradient bug.
    """
    images, labels = mnist_train
    model = LeNet5("lecun98", seed=0)
    trainer = Trainer(model, Adam(lr=3e-3), batch_size=32, epochs=1, schedule="cosine",
                      seed=0, progress=False)
    history = trainer.fit((images[:20_000], labels[:20_000]))
    metrics = evaluate(model, mnist_test[0][:1000], mnist_test[1][:1000])
    assert metrics["accuracy"] > 0.90, (
        f"lecun98 test accuracy {metrics['accuracy']:.4f} after one epoch on 20,000 digits "
        f"(train accuracy {history[0]['train_accuracy']:.4f}, loss {history[0]['train_loss']:.3f})")
