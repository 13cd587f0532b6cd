"""Tests of the ``lenet-fast`` command (lenet_fast.cli), mostly in-process via main().

Training runs use --train-limit/--test-limit and --threads 1 so the whole file stays
fast; results do not depend on the thread count.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import shlex
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import lenet_fast
from lenet_fast import cli, datasets, recipes
from lenet_fast import LeNet5
from lenet_fast._io import datasets as _datasets  # patched: the code reads it there

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _data_dir() -> Path:
    env = os.environ.get("LENET_FAST_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "data" / "mnist").resolve()


DATA_DIR = _data_dir()
_MISSING = [name for name in MNIST_FILES
            if not ((DATA_DIR / name).is_file() or (DATA_DIR / f"{name}.gz").is_file())]
SKIP_REASON = (f"real MNIST not found in {DATA_DIR} (missing {', '.join(_MISSING)}; "
               "set LENET_FAST_DATA_DIR to a folder holding the IDX files)")
needs_data = pytest.mark.skipif(bool(_MISSING), reason=SKIP_REASON)

# Every training/evaluation run: the real data, no download, one thread, no bars.
COMMON = ["--data-dir", str(DATA_DIR), "--no-download", "--threads", "1"]
TRAIN = ["train", *COMMON, "--no-progress"]

REQUIRED_KEYS = {
    "variant", "c3", "epochs", "batch_size", "threads", "seed", "optimizer", "lr",
    "schedule", "test_accuracy", "test_error", "train_seconds", "train_images_per_second",
    "wall_seconds", "history", "version", "openmp",
}


def run(capsys, *argv):
    """main(argv) in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_quiet(*argv):
    """main(argv) with its output captured, for module-scoped fixtures."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_one_error_line(err, *fragments):
    """stderr is exactly one 'lenet-fast: error: ...' line, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lenet-fast: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


def params_of(path):
    return lenet_fast.load(path).params


def assert_same_params(a, b):
    pa, pb = params_of(a), params_of(b)
    assert pa.keys() == pb.keys()
    differ = [name for name in pa if not np.array_equal(pa[name], pb[name])]
    assert not differ, f"parameters differ: {differ}"


def png_bytes(grey):
    """A minimal 8-bit greyscale PNG of the uint8 (H, W) array (no Pillow needed)."""
    grey = np.ascontiguousarray(grey, dtype=np.uint8)
    h, w = grey.shape

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + grey[row].tobytes() for row in range(h))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def idx_bytes(images):
    images = np.ascontiguousarray(images, dtype=np.uint8)
    return struct.pack(">IIII", 2051, *images.shape) + images.tobytes()


@pytest.fixture(scope="module")
def mnist_test_images():
    if _MISSING:
        pytest.skip(SKIP_REASON)
    return datasets.load_mnist("test", DATA_DIR, download=False, progress=False)


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    """A saved, untrained modern model: enough for tests that need no data."""
    path = tmp_path_factory.mktemp("untrained") / "untrained.npz"
    LeNet5("modern", seed=1).save(path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One quick training run: 1 epoch on 2000 images, 500 test images."""
    if _MISSING:
        pytest.skip(SKIP_REASON)
    folder = tmp_path_factory.mktemp("trained")
    model, metrics = folder / "model.npz", folder / "metrics.json"
    code, out, err = run_quiet(*TRAIN, "--epochs", 1, "--train-limit", 2000,
                               "--test-limit", 500, "--out", model, "--metrics-json", metrics)
    return {"code": code, "out": out, "err": err, "model": model, "metrics": metrics,
            "folder": folder}


# ------------------------------------------------------------------ defaults, help


def test_train_defaults_in_one_dict():
    assert recipes.TRAIN_DEFAULTS == {
        "variant": "modern", "recipe": None, "c3": None, "init": "auto", "epochs": None, "batch_size": None,
        "optimizer": None, "lr": None, "schedule": None, "weight_decay": None,
        "nesterov": None, "label_smoothing": None, "momentum": None, "beta1": None,
        "beta2": None, "warmup": None, "threads": None, "seed": 0, "out": None,
    }
    # The settings left None come from the variant's measured recipe.
    assert recipes.RECIPES["modern"] == {
        "c3": "full", "epochs": 2, "batch_size": 64, "optimizer": "sgd", "lr": 0.08,
        "schedule": "onecycle", "weight_decay": 5e-4, "nesterov": True, "label_smoothing": 0.1}
    assert recipes.RECIPES["lecun98"] == {
        "c3": "lecun", "epochs": 10, "batch_size": 32, "optimizer": "adam", "lr": 0.002,
        "schedule": "cosine", "weight_decay": 0.0, "nesterov": False, "label_smoothing": 0.0}


def test_recipe_settings_follow_the_optimizer():
    """The modern recipe's SGD settings (Nesterov, weight decay) do not carry over to
    another optimizer; given flags win; bad combinations are usage errors."""
    parse = cli.build_parser().parse_args
    s, _ = cli.train._train_settings(parse(["train"]))
    assert (s.c3, s.nesterov, s.weight_decay, s.label_smoothing) == ("full", True, 5e-4, 0.1)
    s, _ = cli.train._train_settings(parse(["train", "--optimizer", "adam"]))
    assert (s.nesterov, s.weight_decay, s.lr) == (False, 0.0, None)
    s, _ = cli.train._train_settings(parse(["train", "--no-nesterov", "--weight-decay", "0",
                                      "--label-smoothing", "0", "--c3", "lecun"]))
    assert (s.c3, s.nesterov, s.weight_decay, s.label_smoothing) == ("lecun", False, 0.0, 0.0)
    with pytest.raises(cli.CLIError, match="label-smoothing"):
        cli.train._train_settings(parse(["train", "--variant", "lecun98", "--label-smoothing", "0.1"]))
    with pytest.raises(cli.CLIError, match="nesterov"):
        cli.train._optimizer_options(s.replace(optimizer="adam", nesterov=True))


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("train", "evaluate", "predict", "info"):
        assert command in out
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    for option in ("--variant", "--c3", "--epochs", "--batch-size", "--optimizer", "--lr",
                   "--schedule", "--threads", "--data-dir", "--seed", "--out",
                   "--checkpoint-dir", "--resume", "--metrics-json", "--no-progress",
                   "--train-limit", "--test-limit"):
        assert option in out
    code, out, _ = run(capsys, "predict", "--help")
    assert code == 0 and "Pillow" in out and "inverted" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and lenet_fast.__version__ in out


def test_cli_offers_every_registered_optimizer_and_schedule():
    """`--optimizer` and `--schedule` come from the registries: a new optimizer or
    schedule cannot be missing from the command line."""
    from lenet_fast.optim import OPTIMIZERS
    from lenet_fast.schedules import SCHEDULES

    train = cli.build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: a.choices for a in train._actions if a.choices is not None}
    assert set(choices["optimizer"]) == set(OPTIMIZERS) == {"sgd", "adam", "sdlm"}
    assert set(choices["schedule"]) == set(SCHEDULES) >= {"constant", "cosine", "lecun98"}


def test_help_shows_tuned_defaults(monkeypatch, capsys):
    monkeypatch.setitem(recipes.RECIPES["modern"], "epochs", 7)
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "(default: 7 for modern, 10 for lecun98;" in out


# ------------------------------------------------------------------ usage errors (exit 2)


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "two"], "--epochs"),
    (["train", "--batch-size", "-1"], "--batch-size"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--seed", "-3"], "--seed"),
    (["train", "--variant", "lenet9"], "--variant"),
    (["train", "--train-limit", "0"], "--train-limit"),
    (["evaluate", "m.npz", "--threads", "0"], "--threads"),
    (["predict", "m.npz"], "INPUT"),
    ([], "COMMAND"),
    (["fly"], "COMMAND"),
])
def test_bad_arguments_exit_2(capsys, tmp_path, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert_one_error_line(err, fragment)
    assert not list(tmp_path.iterdir())  # nothing was written


# ------------------------------------------------------------------ train


@needs_data
def test_train_writes_model_and_metrics(trained):
    assert trained["code"] == 0, trained["err"]
    out = trained["out"]
    assert re.search(r"test accuracy \d+\.\d\d%  error \d+\.\d\d%", out)
    assert "images/s" in out
    assert f"model saved to {trained['model']}" in out

    model = lenet_fast.load(trained["model"])
    assert model.config() == {"variant": "modern", "c3": "full", "seed": 0, "init": "he"}

    report = json.loads(trained["metrics"].read_text())
    assert REQUIRED_KEYS <= report.keys()
    assert report["variant"] == "modern" and report["c3"] == "full"
    assert report["epochs"] == 1 and report["batch_size"] == 64 and report["seed"] == 0
    assert report["threads"] == 1
    assert report["optimizer"] == "sgd" and report["lr"] == pytest.approx(0.08)
    assert report["schedule"] == "onecycle" and report["nesterov"] is True
    assert report["weight_decay"] == 5e-4 and report["label_smoothing"] == 0.1
    assert 0.3 < report["test_accuracy"] <= 1.0
    assert report["test_error"] == pytest.approx(1.0 - report["test_accuracy"])
    assert report["test_images"] == 500 and report["train_images"] == 2000
    assert report["train_seconds"] > 0 and report["train_images_per_second"] > 0
    assert report["wall_seconds"] >= report["train_seconds"]
    assert len(report["history"]) == 1 and report["history"][0]["epoch"] == 1
    assert report["version"] == lenet_fast.__version__
    assert report["openmp"] == lenet_fast.built_with_openmp()
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in trained["folder"].iterdir()) == ["metrics.json", "model.npz"]


@needs_data
def test_train_defaults_come_from_train_defaults(monkeypatch, tmp_path, capsys):
    """The out file name follows the variant, and TRAIN_DEFAULTS / RECIPES are
    what is used."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(recipes.TRAIN_DEFAULTS, "variant", "lecun98")
    monkeypatch.setitem(recipes.RECIPES["lecun98"], "epochs", 1)
    code, out, err = run(capsys, *TRAIN, "--c3", "full", "--train-limit", 64,
                         "--test-limit", 50, "--metrics-json", "m.json")
    assert code == 0, err
    model = lenet_fast.load(tmp_path / "lenet5-lecun98.npz")
    assert (model.variant, model.c3) == ("lecun98", "full")
    report = json.loads((tmp_path / "m.json").read_text())
    assert (report["batch_size"], report["epochs"]) == (32, 1)
    assert (report["optimizer"], report["lr"], report["schedule"]) == ("adam", 0.002, "cosine")
    assert report["history"][0]["epoch"] == 1


@needs_data
@pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy's overflow warnings stay quiet
def test_train_diverged_is_one_line(tmp_path, capsys):
    code, out, err = run(capsys, *TRAIN, "--optimizer", "sgd", "--lr", "1e6", "--epochs", 1,
                         "--train-limit", 640, "--test-limit", 10, "--out", tmp_path / "d.npz")
    assert code == 1
    assert_one_error_line(err, "loss became")  # and no numpy RuntimeWarning
    assert not (tmp_path / "d.npz").exists()


def test_train_missing_data_dir(tmp_path, capsys):
    missing = tmp_path / "no-mnist-here"
    code, out, err = run(capsys, "train", "--data-dir", missing, "--no-download",
                         "--no-progress", "--out", tmp_path / "m.npz")
    assert code == 1
    assert_one_error_line(err, "not found", str(missing))


def test_train_missing_data_download_fails(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_datasets, "MIRRORS", [])  # no network: the download fails at once
    code, out, err = run(capsys, "train", "--data-dir", tmp_path / "empty", "--no-progress",
                         "--out", tmp_path / "m.npz")
    assert code == 1
    assert_one_error_line(err, "not found", "Download failed")


@needs_data
def test_train_corrupt_data(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in MNIST_FILES:
        (folder / name).write_bytes(b"\x00\x00\x08\x03garbage")
    code, out, err = run(capsys, "train", "--data-dir", folder, "--no-download",
                         "--no-progress", "--out", tmp_path / "m.npz")
    assert code == 1
    assert_one_error_line(err, "train-images-idx3-ubyte")


def test_train_unwritable_out_fails_before_training(tmp_path, capsys):
    target = tmp_path / "a-directory"
    target.mkdir()
    code, out, err = run(capsys, *TRAIN, "--out", target)
    assert code == 1
    assert_one_error_line(err, "is a directory")


# ------------------------------------------------------------------ resume


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """Reference run: 2 epochs on 1000 images with per-epoch checkpoints."""
    if _MISSING:
        pytest.skip(SKIP_REASON)
    folder = tmp_path_factory.mktemp("two-epochs")
    code, out, err = run_quiet(*TRAIN, "--epochs", 2, "--train-limit", 1000,
                               "--test-limit", 100, "--checkpoint-dir", folder / "ckpt",
                               "--out", folder / "model.npz",
                               "--metrics-json", folder / "metrics.json")
    assert code == 0, err
    return folder


@needs_data
def test_resume_from_epoch_checkpoint_matches_uninterrupted(two_epochs, tmp_path, capsys):
    ckpt = two_epochs / "ckpt" / "epoch-001.npz"
    assert ckpt.exists() and (two_epochs / "ckpt" / "epoch-002.npz").exists()
    # Settings (epochs 2, batch size, seed, optimizer, schedule) come from the checkpoint.
    code, out, err = run(capsys, *TRAIN, "--resume", ckpt, "--test-limit", 100,
                         "--train-limit", 1000, "--out", tmp_path / "resumed.npz",
                         "--metrics-json", tmp_path / "resumed.json")
    assert code == 0, err
    assert_same_params(two_epochs / "model.npz", tmp_path / "resumed.npz")
    full = json.loads((two_epochs / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["epochs"] == 2 and len(resumed["history"]) == 2
    assert resumed["history"][0] == full["history"][0]
    assert resumed["history"][1]["train_loss"] == full["history"][1]["train_loss"]
    assert resumed["test_accuracy"] == full["test_accuracy"]


@needs_data
def test_resume_extending_a_run_matches_longer_run(tmp_path, capsys):
    """1 epoch, then --resume its epoch-001.npz to 2 epochs == 2 epochs straight.

    With the constant schedule: a cosine/onecycle/step schedule is laid out for the
    run's length, so a 1-epoch run's first epoch is not the first half of a 2-epoch run.
    """
    limits = ["--train-limit", 1000, "--test-limit", 50, "--schedule", "constant"]
    code, _, err = run(capsys, *TRAIN, *limits, "--epochs", 2, "--out", tmp_path / "two.npz")
    assert code == 0, err
    code, _, err = run(capsys, *TRAIN, *limits, "--epochs", 1, "--checkpoint-dir",
                       tmp_path / "ckpt", "--out", tmp_path / "one.npz")
    assert code == 0, err
    code, _, err = run(capsys, *TRAIN, *limits, "--epochs", 2, "--resume",
                       tmp_path / "ckpt" / "epoch-001.npz", "--out", tmp_path / "resumed.npz")
    assert code == 0, err
    assert_same_params(tmp_path / "two.npz", tmp_path / "resumed.npz")


def test_resume_cannot_extend_a_scheduled_run(two_epochs, tmp_path, capsys):
    """Past its end the default one-cycle schedule stays at its final rate: a run laid
    out for 2 epochs cannot be stretched to 3 by resuming."""
    code, _, err = run(capsys, *TRAIN, "--train-limit", 1000, "--test-limit", 50,
                       "--epochs", 3, "--resume", two_epochs / "ckpt" / "epoch-001.npz",
                       "--out", tmp_path / "three.npz")
    assert code == 2
    assert_one_error_line(err, "onecycle", "laid out for 2 epoch(s)", "--schedule constant")
    assert not (tmp_path / "three.npz").exists()


@needs_data
def test_ctrl_c_saves_checkpoint_and_prints_resume_command(two_epochs, tmp_path, capsys,
                                                           monkeypatch):
    """Ctrl-C in epoch 2: exit 130, a checkpoint, and a command whose run matches."""
    original = LeNet5.train_step
    calls = {"n": 0}

    def interrupting_step(self, x, y, optimizer, **kw):
        calls["n"] += 1
        if calls["n"] == 20:  # 16 batches per epoch: epoch 2, batch 4
            signal.raise_signal(signal.SIGINT)
        return original(self, x, y, optimizer, **kw)

    monkeypatch.setattr(LeNet5, "train_step", interrupting_step)
    out_path = tmp_path / "model.npz"
    code, out, err = run(capsys, *TRAIN, "--epochs", 2, "--train-limit", 1000,
                         "--test-limit", 100, "--out", out_path)
    assert code == 130
    monkeypatch.setattr(LeNet5, "train_step", original)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    interrupted = tmp_path / "model.interrupted.npz"  # next to --out: no --checkpoint-dir
    assert interrupted.exists() and not out_path.exists()
    assert str(interrupted) in lines[0]
    command = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert command[:2] == ["lenet-fast", "train"] and "--resume" in command

    code, out, err = run(capsys, *command[1:])
    assert code == 0, err
    assert_same_params(two_epochs / "model.npz", out_path)


def test_resume_with_conflicting_settings_exit_2(two_epochs, tmp_path, capsys):
    ckpt = two_epochs / "ckpt" / "epoch-001.npz"
    code, _, err = run(capsys, *TRAIN, "--resume", ckpt, "--batch-size", 32,
                       "--out", tmp_path / "m.npz")
    assert code == 2
    assert_one_error_line(err, "--batch-size 32", "conflicts")
    code, _, err = run(capsys, *TRAIN, "--resume", two_epochs / "ckpt" / "epoch-002.npz",
                       "--out", tmp_path / "m.npz")
    assert code == 2
    assert_one_error_line(err, "already completed 2 epoch(s)", "lenet-fast evaluate")
    # A different training set size would silently stretch the cosine schedule.
    code, _, err = run(capsys, *TRAIN, "--resume", ckpt, "--train-limit", 500,
                       "--out", tmp_path / "m.npz")
    assert code == 2
    assert_one_error_line(err, "another size", "--train-limit")
    assert not (tmp_path / "m.npz").exists()


def test_resume_from_model_file_or_missing_file(untrained_model, tmp_path, capsys):
    code, _, err = run(capsys, *TRAIN, "--resume", untrained_model, "--out", tmp_path / "m.npz")
    assert code == 1
    assert_one_error_line(err, "not a training checkpoint")
    code, _, err = run(capsys, *TRAIN, "--resume", tmp_path / "nope.npz",
                       "--out", tmp_path / "m.npz")
    assert code == 1
    assert_one_error_line(err, "nope.npz")


# ------------------------------------------------------------------ evaluate


@needs_data
def test_evaluate_prints_report_and_json(trained, tmp_path, capsys):
    assert trained["code"] == 0, trained["err"]
    report_path = tmp_path / "eval.json"
    code, out, err = run(capsys, "evaluate", trained["model"], *COMMON, "--test-limit", 500,
                         "--metrics-json", report_path)
    assert code == 0, err
    assert "accuracy" in out and "per-class accuracy" in out
    assert "confusion matrix (rows: true digit, columns: predicted)" in out
    assert "LeCun et al. 1998" not in out
    report = json.loads(report_path.read_text())
    assert {"accuracy", "error", "loss", "per_class_accuracy", "confusion", "n",
            "variant", "c3", "seed"} <= report.keys()
    assert report["n"] == 500 and report["variant"] == "modern"
    # Same 500 test images as the training run's final evaluation.
    trained_report = json.loads(trained["metrics"].read_text())
    assert report["accuracy"] == trained_report["test_accuracy"]


@needs_data
def test_evaluate_lecun98_shows_the_papers_figure(tmp_path, capsys):
    path = tmp_path / "lecun98.npz"
    LeNet5("lecun98").save(path)
    code, out, err = run(capsys, "evaluate", path, *COMMON, "--test-limit", 100)
    assert code == 0, err
    assert cli.evaluate.PAPER_LECUN98 in out
    assert "LeCun et al. 1998 report 0.95% test error for LeNet-5 (0.8% with distortions)" in out


def test_evaluate_missing_data(untrained_model, tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", untrained_model, "--data-dir", tmp_path / "none",
                       "--no-download")
    assert code == 1
    assert_one_error_line(err, "not found")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_corrupt_model_file(tmp_path, capsys, command):
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    extra = [tmp_path / "x.npy"] if command == "predict" else ["--data-dir", tmp_path]
    code, _, err = run(capsys, command, bad, *extra)
    assert code == 1
    assert_one_error_line(err, str(bad))


def test_tampered_model_file(untrained_model, tmp_path, capsys):
    with np.load(untrained_model) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/c1.bias"] = arrays["param/c1.bias"] + 1
    bad = tmp_path / "tampered.npz"
    np.savez(bad, **arrays)
    code, _, err = run(capsys, "predict", bad, tmp_path / "x.npy")
    assert code == 1
    assert_one_error_line(err, "checksum")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_nonexistent_model(tmp_path, capsys, command):
    missing = tmp_path / "nope.npz"
    extra = [tmp_path / "x.npy"] if command == "predict" else []
    code, _, err = run(capsys, command, missing, *extra)
    assert code == 1
    assert_one_error_line(err, "no such model file", str(missing))


# ------------------------------------------------------------------ predict

LINE = re.compile(r"^(?P<file>.+)\[(?P<index>\d+)\]\t(?P<digit>[0-9])(?P<proba>(\t\d\.\d{4}){10})?$")


def parse_predictions(out):
    rows = []
    for line in out.strip().splitlines():
        m = LINE.match(line)
        assert m, line
        rows.append((m["file"], int(m["index"]), int(m["digit"]),
                     [float(p) for p in m["proba"].split("\t")[1:]] if m["proba"] else None))
    return rows


@needs_data
def test_predict_npy(trained, mnist_test_images, tmp_path, capsys):
    images, _ = mnist_test_images
    five = tmp_path / "five.npy"
    np.save(five, images[:5])
    code, out, err = run(capsys, "predict", trained["model"], five, "--threads", 1)
    assert code == 0, err
    rows = parse_predictions(out)
    assert [(f, i) for f, i, _, _ in rows] == [(str(five), i) for i in range(5)]
    expected = lenet_fast.load(trained["model"]).predict(images[:5])
    assert [d for _, _, d, _ in rows] == expected.tolist()

    # A single (28, 28) digit and float32 preprocessed input, with probabilities.
    single, pre = tmp_path / "single.npy", tmp_path / "pre.npy"
    np.save(single, images[3])
    np.save(pre, datasets.preprocess(images[:2]))
    code, out, err = run(capsys, "predict", trained["model"], single, pre, "--proba")
    assert code == 0, err
    rows = parse_predictions(out)
    assert [(f, i) for f, i, _, _ in rows] == [(str(single), 0), (str(pre), 0), (str(pre), 1)]
    assert [d for _, _, d, _ in rows] == [expected[3], expected[0], expected[1]]
    for _, _, digit, proba in rows:
        assert len(proba) == 10 and sum(proba) == pytest.approx(1.0, abs=1e-3)
        assert int(np.argmax(proba)) == digit


@needs_data
def test_predict_idx_raw_and_gzipped(trained, mnist_test_images, tmp_path, capsys):
    images, _ = mnist_test_images
    raw, gz = tmp_path / "digits-idx3-ubyte", tmp_path / "digits-idx3-ubyte.gz"
    raw.write_bytes(idx_bytes(images[:4]))
    gz.write_bytes(gzip.compress(idx_bytes(images[:4])))
    code, out, err = run(capsys, "predict", trained["model"], raw, gz)
    assert code == 0, err
    rows = parse_predictions(out)
    expected = lenet_fast.load(trained["model"]).predict(images[:4]).tolist()
    assert [d for f, _, d, _ in rows if f == str(raw)] == expected
    assert [d for f, _, d, _ in rows if f == str(gz)] == expected
    # The real MNIST test file works too (first and last of 10,000 lines).
    real = next(DATA_DIR / n for n in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz")
                if (DATA_DIR / n).is_file())
    code, out, err = run(capsys, "predict", trained["model"], real)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 10_000 and lines[-1].startswith(f"{real}[9999]\t")


@needs_data
def test_predict_png_with_pillow(trained, mnist_test_images, tmp_path, capsys):
    pytest.importorskip("PIL")
    images, _ = mnist_test_images
    model = lenet_fast.load(trained["model"])
    expected = model.predict(images[:3]).tolist()
    paths = []
    for i in range(3):
        # Dark ink on white paper: the command inverts it back to MNIST's white on black.
        path = tmp_path / f"digit{i}.png"
        path.write_bytes(png_bytes(255 - images[i]))
        paths.append(path)
    big = tmp_path / "big.png"  # 56x56: resized to 28x28
    big.write_bytes(png_bytes(np.kron(images[0], np.ones((2, 2), np.uint8))))
    code, out, err = run(capsys, "predict", trained["model"], *paths, big)
    assert code == 0, err
    rows = parse_predictions(out)
    assert [d for _, _, d, _ in rows[:3]] == expected
    assert rows[3][:2] == (str(big), 0)


def test_predict_png_without_pillow(untrained_model, tmp_path, capsys, monkeypatch):
    path = tmp_path / "digit.png"
    path.write_bytes(png_bytes(np.zeros((28, 28), np.uint8)))
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes 'import PIL' fail
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    code, out, err = run(capsys, "predict", untrained_model, path)
    assert code == 1 and out == ""
    assert_one_error_line(err, "reading PNG/JPEG needs Pillow: pip install Pillow")


@pytest.mark.parametrize("name, content, fragment", [
    ("floats.npy", "npy-float64", "float64"),
    ("labels-idx1-ubyte", "idx-labels", "label file"),
    ("notes.txt", b"hello, digits\n", "not an IDX file"),
    ("broken.gz", b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
    ("short-idx3-ubyte", "idx-truncated", "bytes follow"),
    ("fake.npy", b"not numpy at all", "not a .npy file"),
])
def test_predict_unreadable_inputs(untrained_model, tmp_path, capsys, name, content, fragment):
    path = tmp_path / name
    if content == "npy-float64":
        np.save(path, np.zeros((2, 28, 28)))
    elif content == "idx-labels":
        path.write_bytes(struct.pack(">II", 2049, 3) + bytes([1, 2, 3]))
    elif content == "idx-truncated":
        path.write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-10])
    else:
        path.write_bytes(content)
    code, out, err = run(capsys, "predict", untrained_model, path)
    assert code == 1 and out == ""
    assert_one_error_line(err, str(path), fragment)


def test_predict_missing_input(untrained_model, tmp_path, capsys):
    code, out, err = run(capsys, "predict", untrained_model, tmp_path / "absent.npy")
    assert code == 1 and out == ""
    assert_one_error_line(err, "absent.npy", "No such file")


# ------------------------------------------------------------------ info


def test_info_in_process(tmp_path, capsys):
    code, out, err = run(capsys, "info", "--data-dir", tmp_path)
    assert code == 0, err
    assert f"lenet_fast:      {lenet_fast.__version__}" in out
    assert "openmp:" in out and "compile flags:" in out and "kernel path:" in out
    assert str(tmp_path) in out and "not present" in out


def test_info_subprocess():
    env = dict(os.environ, LENET_FAST_DATA_DIR=str(DATA_DIR))
    proc = subprocess.run([sys.executable, "-m", "lenet_fast", "info"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = lenet_fast.build_info()
    assert lenet_fast.__version__ in proc.stdout
    assert ("on" if info["openmp"] else "off") in proc.stdout
    assert info["compile_flags"] in proc.stdout and f"kernel path: {info['isa']}" in " ".join(proc.stdout.split())
    assert ", ".join(info["isa_built"]) in proc.stdout
    assert str(DATA_DIR) in proc.stdout
    expected = "not present" if len(_MISSING) == 4 else "present (all 4" if not _MISSING else "incomplete"
    assert expected in proc.stdout
