"""lenet_fast.RunSettings: a run's settings, typed and frozen, resolved in one place from
the defaults, the recipe, the settings given and a resumed checkpoint."""

import dataclasses

import pytest

from lenet_fast import RunSettings, SettingsError, cli, experiment, recipes

#: A checkpoint's settings as ``lenet-fast train --resume`` reads them.
SAVED = {"variant": "modern", "c3": "full", "init": "he", "batch_size": 64, "seed": 0,
         "optimizer": "sgd", "lr": 0.08, "schedule": "constant", "augment": "none",
         "weight_decay": 5e-4, "nesterov": True, "label_smoothing": 0.1, "momentum": 0.9,
         "beta1": None, "beta2": None, "warmup": None, "epochs": 2, "epoch": 1}


def test_a_new_run_takes_the_recipe_where_nothing_is_given():
    s = RunSettings.resolve()
    assert (s.variant, s.epochs, s.batch_size, s.optimizer, s.lr) == ("modern", 2, 64, "sgd", 0.08)
    assert s.out == "lenet5-modern.npz" and s.threads is None
    assert s.as_dict() == recipes.train_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 0.1


def test_given_settings_win_and_contradictions_are_refused():
    s = RunSettings.resolve({"variant": "lecun98", "optimizer": "sdlm", "threads": 2})
    assert (s.batch_size, s.init, s.schedule, s.threads) == (1, recipes.SDLM_INIT, "lecun98", 2)
    with pytest.raises(SettingsError, match="needs --variant lecun98"):
        RunSettings.resolve({"optimizer": "sdlm"})
    with pytest.raises(SettingsError, match="label-smoothing applies to --variant modern"):
        RunSettings.resolve({"variant": "lecun98", "label_smoothing": 0.1})
    with pytest.raises(SettingsError, match="unknown setting"):
        RunSettings.resolve({"learning_rate": 0.1})


def test_a_resumed_run_keeps_the_checkpoints_settings():
    s = RunSettings.resolve({"threads": 1}, resumed=SAVED, resume_path="ck.npz")
    assert (s.lr, s.epochs, s.threads, s.label_smoothing) == (0.08, 2, 1, 0.1)
    assert RunSettings.resolve({"epochs": 5}, resumed=SAVED, resume_path="ck.npz").epochs == 5
    with pytest.raises(SettingsError, match=r"--lr 0.1 conflicts with the checkpoint ck.npz"):
        RunSettings.resolve({"lr": 0.1}, resumed=SAVED, resume_path="ck.npz")
    with pytest.raises(SettingsError, match="has already completed 1 epoch"):
        RunSettings.resolve({"epochs": 1}, resumed=SAVED, resume_path="ck.npz")
    with pytest.raises(SettingsError, match="cannot extend the run"):
        RunSettings.resolve({"epochs": 3}, resumed=dict(SAVED, schedule="cosine"),
                            resume_path="ck.npz")


def test_the_command_and_the_python_run_resolve_alike():
    args = cli.build_parser().parse_args(["train", "--variant", "lecun98", "--threads", "1"])
    from_cli, _ = cli.train._train_settings(args)
    from_run, _ = experiment.settings_of({"variant": "lecun98"})
    assert from_cli == from_run.replace(out=from_cli.out)
    assert from_run.out is None  # a run saves no model unless told
    with pytest.raises(ValueError, match="label-smoothing"):
        experiment.settings_of({"variant": "lecun98", "label_smoothing": 0.1})
