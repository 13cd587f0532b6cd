"""lenet_fast.experiment.run: one training as a plain function, the same as
``lenet-fast train``."""

from __future__ import annotations

import json
import pickle
import sys

import pytest

import lenet_fast
from lenet_fast import cli, experiment, recipes

TINY = {"train_limit": 1500, "test_limit": 400, "epochs": 1}


def test_run_is_the_train_command(tmp_path, mnist_dir, capsys):
    model_path = tmp_path / "cli.npz"
    metrics_path = tmp_path / "cli.json"
    code = cli.main(["train", "--data-dir", str(mnist_dir), "--no-download", "--threads", "1",
                     "--no-progress", "--epochs", "1", "--train-limit", "1500",
                     "--test-limit", "400", "--seed", "3", "--out", str(model_path),
                     "--metrics-json", str(metrics_path)])
    assert code == 0, capsys.readouterr()
    from_cli = json.loads(metrics_path.read_text())
    result = experiment.run(dict(TINY, seed=3, data_dir=str(mnist_dir), download=False,
                                 out=str(tmp_path / "run.npz")))
    for key in ("variant", "c3", "init", "epochs", "batch_size", "seed", "optimizer", "lr",
                "schedule", "augment", "train_images", "test_images", "test_accuracy",
                "test_loss"):
        assert result[key] == from_cli[key], key
    strip = [{k: v for k, v in r.items() if k not in experiment.TIMING_KEYS}
             for r in from_cli["history"]]
    assert [{k: v for k, v in r.items() if k not in experiment.TIMING_KEYS}
            for r in result["history"]] == strip
    assert "val_accuracy" in strip[0]
    assert result["weights_sha256"] == experiment.weights_digest(lenet_fast.load(model_path))
    assert lenet_fast.load(tmp_path / "run.npz").history == result["history"]
    # the command's defaults are the variant's recipe (recipes.RECIPES)
    recipe = recipes.RECIPES["modern"]
    assert (result["batch_size"], result["optimizer"], result["lr"], result["schedule"]) == (
        recipe["batch_size"], recipe["optimizer"], recipe["lr"], recipe["schedule"])
    assert result["threads"] == 1  # explicit: not the OpenMP default


def test_run_does_not_depend_on_threads_and_pickles():
    assert pickle.loads(pickle.dumps(experiment.run)) is experiment.run
    config = dict(TINY, variant="lecun98", seed=1, epoch_eval=False)
    one = experiment.run(dict(config, threads=1))
    two = experiment.run(dict(config, threads=2))
    assert one["weights_sha256"] == two["weights_sha256"]
    assert one["test_loss"] == two["test_loss"] and one["threads"] == 1 and two["threads"] == 2
    assert "val_accuracy" not in one["history"][0]
    json.dumps(one)  # JSON-able


@pytest.mark.parametrize("config, error, match", [
    ({"learning_rate": 0.1}, ValueError, "unknown config key.*'learning_rate'"),
    ({"variant": "modern", "optimizer": "sdlm"}, ValueError, "needs --variant lecun98"),
    ({"variant": "lenet1"}, ValueError, "variant must be one of"),
    ({"train_limit": 0}, ValueError, "train_limit must be a positive integer"),
    ([("seed", 1)], TypeError, "config must be a dict"),
])
def test_bad_config(config, error, match):
    with pytest.raises(error, match=match):
        experiment.run(config)


def test_settings_match_the_command():
    settings, options = experiment.settings_of({"variant": "lecun98", "optimizer": "sdlm"})
    assert settings.as_dict() == dict(recipes.train_settings(
        {"variant": "lecun98", "optimizer": "sdlm", "threads": 1}), out=None)
    assert settings.init == recipes.SDLM_INIT and settings.batch_size == 1
    assert options == dict(experiment.RUN_OPTIONS, **experiment.EXTRA_OPTIONS)


def test_missing_extras_are_named(monkeypatch, tmp_path, capsys):
    """Without matplotlib, joblib or dask.distributed, the commands that need them say
    which extra to install (one error line, exit code 1)."""
    model = tmp_path / "m.npz"
    lenet_fast.LeNet5().save(model)
    cases = [("matplotlib", ["report", str(model), "--out", str(tmp_path / "r.html")],
              'pip install "lenet-fast[plot]"'),
             ("joblib", ["sweep", "--out", str(tmp_path / "s.jsonl")],
              'pip install "lenet-fast[sweep]"'),
             ("distributed", ["sweep", "--scheduler", "tcp://127.0.0.1:1",
                              "--out", str(tmp_path / "s.jsonl")],
              'pip install "lenet-fast[cluster]"')]
    for module, argv, hint in cases:
        with monkeypatch.context() as m:
            m.setitem(sys.modules, module, None)  # import fails
            assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("lenet-fast: error: ") and hint in err, err
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob("*.jsonl"))
