"""The knobs that the one-epoch recipe search needed: a validation split held out of the
training digits (``holdout``), SGD's momentum and Adam's betas as training settings."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lenet_fast
from lenet_fast import LeNet5, RunSettings, Trainer, cli, experiment, recipes
from lenet_fast._io import datasets as _datasets  # patched: the code reads it there
from lenet_fast._training import experiment as _experiment  # patched: the code reads it there
from lenet_fast.metrics import evaluate
from lenet_fast.optim import Adam
from lenet_fast.sweep import run_key

TINY = {"train_limit": 1200, "epochs": 1, "epoch_eval": True}


def _quiet_run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ holdout


def test_holdout_trains_on_the_rest_and_never_reads_the_test_set(mnist_dir, mnist_train,
                                                                 monkeypatch):
    read = []
    original = _experiment._mnist

    def recording(split, data_dir, download):
        read.append(split)
        return original(split, data_dir, download)

    monkeypatch.setattr(_experiment, "_mnist", recording)
    config = dict(TINY, seed=2, data_dir=str(mnist_dir), download=False)
    held = experiment.run(dict(config, holdout=700))
    assert read == ["train"]  # the test split is never read
    # The first 1,200 digits are the same with or without a holdout: the same weights.
    plain = experiment.run(config)
    assert held["weights_sha256"] == plain["weights_sha256"]
    assert held["train_images"] == plain["train_images"] == 1200
    # ... evaluated on the last 700 training digits, under val_* keys
    assert held["val_images"] == 700 and held["holdout"] == 700
    assert not {"test_accuracy", "test_error", "test_loss", "test_images"} & set(held)
    trainer = experiment.build(experiment.settings_of(config)[0])
    trainer.fit((mnist_train[0][:1200], mnist_train[1][:1200]))
    expected = evaluate(trainer.model, mnist_train[0][-700:], mnist_train[1][-700:])
    assert held["val_accuracy"] == expected["accuracy"]
    assert held["val_error"] == expected["error"] and held["val_loss"] == expected["loss"]
    assert held["history"][0]["val_accuracy"] == expected["accuracy"]
    # the record of a holdout run is not the same run as a plain one
    assert run_key(dict(config, holdout=700)) != run_key(config)
    assert run_key(dict(config, holdout=0)) == run_key(config)


def test_holdout_with_record_errors_indexes_the_held_out_digits(mnist_dir, mnist_train):
    result = experiment.run(dict(TINY, seed=0, data_dir=str(mnist_dir), download=False,
                                 holdout=500, record_errors=True))
    wrong = result["val_errors"]
    assert "test_errors" not in result
    assert len(wrong["index"]) == round(result["val_error"] * 500)
    labels = mnist_train[1][-500:]
    assert all(labels[i] != p for i, p in zip(wrong["index"], wrong["predicted"]))


@pytest.mark.parametrize("config, match", [
    ({"holdout": -1}, "holdout must be a non-negative integer"),
    ({"holdout": True}, "holdout must be a non-negative integer"),
    ({"holdout": 100, "test_limit": 50}, "does not read"),
])
def test_bad_holdout(config, match):
    with pytest.raises(ValueError, match=match):
        experiment.run(config)


def test_holdout_must_leave_training_digits(mnist_dir):
    with pytest.raises(ValueError, match="must leave training digits"):
        experiment.run({"holdout": 60000, "data_dir": str(mnist_dir), "download": False})


def test_sweep_command_on_a_holdout(tmp_path, mnist_dir, capsys):
    out = tmp_path / "r.jsonl"
    argv = ["sweep", "--seeds", "0", "--set", "lr=0.05,0.1", "--set", "epochs=1", "--jobs", "1",
            "--train-limit", "800", "--holdout", "300", "--data-dir", mnist_dir,
            "--no-download", "--out", out]
    code, text, err = _quiet_run(capsys, *argv)
    assert code == 0, err
    assert "validation (the last 300 training digits held out) error over seeds 0" in text
    assert "| lr | runs | validation error % mean |" in text
    assert ": validation error " in text
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["params"]["holdout"] for r in records] == [300, 300]
    assert all(r["result"]["val_images"] == 300 and "test_error" not in r["result"]
               for r in records)
    code, _, err = _quiet_run(capsys, *argv, "--test-limit", "100")
    assert code == 2 and "--holdout does not read" in err


# ------------------------------------------------------------------ optimizer settings


def test_adam_betas_reach_the_optimizer(mnist_dir, mnist_train):
    config = dict(TINY, seed=1, data_dir=str(mnist_dir), download=False, epoch_eval=False,
                  optimizer="adam", lr=0.004, test_limit=200)
    tuned = experiment.run(dict(config, beta1=0.7, beta2=0.9))
    assert (tuned["beta1"], tuned["beta2"], tuned["momentum"]) == (0.7, 0.9, None)
    default = experiment.run(config)
    assert (default["beta1"], default["beta2"]) == (0.9, 0.999)
    assert tuned["weights_sha256"] != default["weights_sha256"]
    # the same run by hand: an Adam with those betas
    s = experiment.settings_of(config)[0]
    model = LeNet5("modern", c3=s.c3, seed=1, n_threads=1)
    Trainer(model, Adam(0.004, betas=(0.7, 0.9)), batch_size=s.batch_size, epochs=1,
            schedule=s.schedule, seed=1, progress=False,
            label_smoothing=s.label_smoothing).fit(
        (mnist_train[0][:1200], mnist_train[1][:1200]))
    assert experiment.weights_digest(model) == tuned["weights_sha256"]


def test_sgd_momentum_reaches_the_optimizer():
    settings = recipes.train_settings({"momentum": 0.5})
    assert settings["momentum"] == 0.5 and settings["beta1"] is None
    assert recipes.make_optimizer(settings).momentum == 0.5
    assert recipes.make_optimizer(recipes.train_settings({})).momentum == 0.9
    adam = recipes.make_optimizer(recipes.train_settings({"optimizer": "adam", "beta2": 0.95}))
    assert adam.betas == (0.9, 0.95)


@pytest.mark.parametrize("given, match", [
    ({"momentum": 0.5, "optimizer": "adam"}, "--momentum applies to --optimizer sgd only"),
    ({"beta1": 0.7}, "--beta1 applies to --optimizer adam only"),
    ({"beta2": 0.9, "variant": "lecun98", "optimizer": "sdlm"}, "--beta2 applies"),
    ({"warmup": 0.2, "schedule": "cosine"}, "--warmup applies to --schedule onecycle only"),
])
def test_an_optimizers_setting_with_another_optimizer_is_an_error(given, match):
    with pytest.raises(lenet_fast.SettingsError, match=match):
        RunSettings.resolve(given)
    # a resumed run's settings are checked there too
    saved = dict(RunSettings.resolve().as_dict(), epochs=2, epoch=1, schedule="onecycle")
    with pytest.raises(lenet_fast.SettingsError, match="--recipe applies to a new run"):
        RunSettings.resolve({"recipe": "one-epoch"}, resumed=saved, resume_path="ck.npz")


def test_run_keys_of_runs_recorded_before_the_optimizer_settings():
    """Runs recorded before momentum and the betas were settings had the optimizers'
    defaults: giving those defaults names the same run; other values another run."""
    assert run_key({"seed": 0}) == run_key({"seed": 0, "momentum": 0.9})
    assert "momentum" not in run_key({"seed": 0}) and "beta1" not in run_key({"seed": 0})
    assert run_key({"seed": 0}) != run_key({"seed": 0, "momentum": 0.8})
    adam = {"seed": 0, "optimizer": "adam"}
    assert run_key(adam) == run_key(dict(adam, beta1=0.9, beta2=0.999))
    assert run_key(adam) != run_key(dict(adam, beta1=0.7))


def test_train_command_betas_and_resume(tmp_path, mnist_dir, capsys):
    common = ["train", "--data-dir", mnist_dir, "--no-download", "--threads", "1",
              "--no-progress", "--train-limit", "600", "--test-limit", "100", "--epochs", "2",
              "--optimizer", "adam", "--lr", "0.003", "--beta1", "0.7", "--beta2", "0.9"]
    code, _, err = _quiet_run(capsys, *common, "--checkpoint-dir", tmp_path / "ckpt",
                              "--out", tmp_path / "full.npz", "--metrics-json",
                              tmp_path / "full.json")
    assert code == 0, err
    metrics = json.loads((tmp_path / "full.json").read_text())
    assert (metrics["beta1"], metrics["beta2"]) == (0.7, 0.9)
    ckpt = tmp_path / "ckpt" / "epoch-001.npz"
    resume = ["train", "--data-dir", mnist_dir, "--no-download", "--threads", "1",
              "--no-progress", "--train-limit", "600", "--test-limit", "100", "--resume", ckpt]
    # the betas come from the checkpoint: the resumed run ends where the full one did
    code, _, err = _quiet_run(capsys, *resume, "--out", tmp_path / "resumed.npz")
    assert code == 0, err
    full = lenet_fast.load(tmp_path / "full.npz").params
    resumed = lenet_fast.load(tmp_path / "resumed.npz").params
    assert full.keys() == resumed.keys()
    assert all(np.array_equal(full[k], resumed[k]) for k in full)
    code, _, err = _quiet_run(capsys, *resume, "--beta1", "0.8", "--out", tmp_path / "m.npz")
    assert code == 2 and "--beta1 0.8 conflicts with the checkpoint" in err
    # an optimizer's setting with another optimizer: a usage error
    code, _, err = _quiet_run(capsys, "train", "--beta1", "0.7", "--out", tmp_path / "x.npz")
    assert code == 2 and "--beta1 applies to --optimizer adam only" in err
    code, _, err = _quiet_run(capsys, "train", "--momentum", "1.0", "--out", tmp_path / "x.npz")
    assert code == 2 and "--momentum" in err and "[0, 1)" in err


# ------------------------------------------------------------------ one-cycle warmup


def test_warmup_is_the_one_cycle_schedules_rising_part(mnist_train, monkeypatch, tmp_path):
    from lenet_fast.checkpoint import read_training
    from lenet_fast.schedules import OneCycleLR

    settings = experiment.settings_of({"warmup": 0.6, "epochs": 2, "batch_size": 50})[0]
    assert settings.warmup == 0.6
    assert recipes.schedule_options(settings.as_dict()) == {"pct_start": 0.6}
    trainer = experiment.build(settings, checkpoint_dir=str(tmp_path))
    rates = []
    original = LeNet5.train_step

    def recording(self, x, y, optimizer, **kw):
        rates.append(optimizer.lr)
        return original(self, x, y, optimizer, **kw)

    monkeypatch.setattr(LeNet5, "train_step", recording)
    trainer.fit((mnist_train[0][:500], mnist_train[1][:500]))
    expected = OneCycleLR(settings.lr, 20, pct_start=0.6)
    assert rates == [expected.lr_at(k) for k in range(20)]
    assert max(range(20), key=rates.__getitem__) == 11  # the peak at 60% of 20 steps
    assert read_training(tmp_path / "epoch-001.npz")[2]["pct_start"] == 0.6
    with pytest.raises(TypeError, match="by name"):
        Trainer(LeNet5(), Adam(), schedule=expected, schedule_options={"pct_start": 0.5})


def test_train_command_warmup(tmp_path, mnist_dir, capsys):
    common = ["train", "--data-dir", mnist_dir, "--no-download", "--threads", "1",
              "--no-progress", "--train-limit", "400", "--test-limit", "100"]
    code, _, err = _quiet_run(capsys, *common, "--epochs", "2", "--warmup", "0.2",
                              "--checkpoint-dir", tmp_path / "ckpt", "--out", tmp_path / "m.npz",
                              "--metrics-json", tmp_path / "m.json")
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["warmup"] == 0.2
    ckpt = tmp_path / "ckpt" / "epoch-001.npz"
    code, _, err = _quiet_run(capsys, *common, "--resume", ckpt, "--warmup", "0.3",
                              "--out", tmp_path / "r.npz")
    assert code == 2 and "--warmup 0.3 conflicts with the checkpoint" in err
    code, _, err = _quiet_run(capsys, *common, "--resume", ckpt, "--warmup", "0.2",
                              "--out", tmp_path / "r.npz")
    assert code == 0, err
    code, _, err = _quiet_run(capsys, "train", "--warmup", "0.2", "--schedule", "cosine",
                              "--out", tmp_path / "x.npz")
    assert code == 2 and "--warmup applies to --schedule onecycle only" in err
    code, _, err = _quiet_run(capsys, "train", "--warmup", "0", "--out", tmp_path / "x.npz")
    assert code == 2 and "(0, 1)" in err


# ------------------------------------------------------------------ named recipes


def test_named_recipe_fills_the_settings_not_given():
    recipe = recipes.NAMED_RECIPES["one-epoch"]
    settings = recipes.train_settings({"recipe": "one-epoch"})
    assert settings["recipe"] == "one-epoch" and settings["epochs"] == 1
    assert all(settings[k] == v for k, v in recipe.items())
    # a setting given wins; another schedule drops the recipe's one-cycle warmup
    assert recipes.train_settings({"recipe": "one-epoch", "lr": 0.05})["lr"] == 0.05
    other = recipes.train_settings({"recipe": "one-epoch", "schedule": "cosine"})
    assert other["warmup"] is None and other["batch_size"] == recipe["batch_size"]
    with pytest.raises(ValueError, match="recipe for --variant modern"):
        recipes.train_settings({"recipe": "one-epoch", "variant": "lecun98"})
    with pytest.raises(ValueError, match="recipe must be one of"):
        recipes.train_settings({"recipe": "two-epoch"})
    # the default recipe is untouched, and a sweep's runs recorded before keep their keys
    assert recipes.train_settings({})["recipe"] is None
    assert "recipe" not in run_key({"seed": 0})


def test_train_command_recipe(tmp_path, mnist_dir, capsys):
    code, _, err = _quiet_run(capsys, "train", "--recipe", "one-epoch", "--data-dir", mnist_dir,
                              "--no-download", "--threads", "1", "--no-progress",
                              "--train-limit", "640", "--test-limit", "100",
                              "--checkpoint-dir", tmp_path / "ckpt",
                              "--out", tmp_path / "m.npz", "--metrics-json", tmp_path / "m.json")
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    recipe = recipes.NAMED_RECIPES["one-epoch"]
    assert all(metrics[k] == v for k, v in recipe.items() if k != "recipe")
    assert len(metrics["history"]) == recipe["epochs"]
    code, _, err = _quiet_run(capsys, "train", "--recipe", "one-epoch", "--resume",
                              tmp_path / "ckpt" / "epoch-001.npz", "--out", tmp_path / "r.npz")
    assert code == 2 and "--recipe applies to a new run" in err
    code, _, err = _quiet_run(capsys, "train", "--recipe", "one-epoch", "--variant", "lecun98",
                              "--out", tmp_path / "x.npz")
    assert code == 2 and "recipe for --variant modern" in err


@pytest.mark.parametrize("given", [{}, {"recipe": "one-epoch"},
                                   {"optimizer": "adam", "lr": 0.01, "beta1": 0.7, "beta2": 0.9,
                                    "weight_decay": 1e-4}])
def test_pytorch_optimizer_of_a_recipe_makes_the_same_update(given):
    torch = pytest.importorskip("torch", reason="PyTorch is optional (pip install torch==2.13.0)")
    from lenet_fast.bench import time_to_accuracy as tta

    settings = RunSettings.resolve(given, save=False)
    rng = np.random.default_rng(0)
    start = rng.normal(size=50).astype(np.float32)
    grads = rng.normal(size=(4, 50)).astype(np.float32)
    ours = recipes.make_optimizer(settings.as_dict())
    mine = start.copy()
    param = torch.nn.Parameter(torch.from_numpy(start.copy()))
    theirs = tta.torch_optimizer(torch, [param], settings)
    for g in grads:
        ours.step(mine, g.copy())
        param.grad = torch.from_numpy(g.copy())
        theirs.step()
    np.testing.assert_allclose(param.detach().numpy(), mine, rtol=1e-5, atol=1e-6)


def test_time_to_accuracy_runs_a_named_recipe_in_both_libraries(monkeypatch, mnist_train,
                                                                 mnist_test):
    torch = pytest.importorskip("torch", reason="PyTorch is optional (pip install torch==2.13.0)")
    from lenet_fast.bench import time_to_accuracy as tta

    small = (mnist_train[0][:1600], mnist_train[1][:1600])
    monkeypatch.setattr(_datasets, "load_mnist",
                        lambda split, *a, **k: small if split == "train" else
                        (mnist_test[0][:500], mnist_test[1][:500]))
    result = tta.run(threads=[1], target=0.5, recipe="one-epoch")
    assert result["recipe"]["name"] == "one-epoch" and result["settings"]["epochs"] == 1
    mine, theirs = result["runs"]
    assert (mine["library"], theirs["library"]) == ("lenet_fast", "torch")
    # the same weights, data order, optimizer and schedule: nearly the same network
    assert abs(mine["accuracy"][0] - theirs["accuracy"][0]) <= 0.02
    assert mine["accuracy"][0] > 0.3  # trained: chance is 0.1
    text = tta.format_markdown(result)
    assert "the one-epoch recipe" in text and "0.3 warmup" in text
    assert torch.get_num_threads() == 1
