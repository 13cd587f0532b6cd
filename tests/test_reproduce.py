"""``lenet-fast reproduce`` (lenet_fast.reproduce) and what it stands on: the fixed set of
distorted copies (augment.FixedDistortions), the trainer's per-pass images and
training-set evaluation, the run options of experiment.run, the figures.

The end-to-end tests run the hidden ``tiny`` profile: 2 passes on 1,000 training digits,
500 test digits, a few seconds a run.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from lenet_fast import cli, experiment, optim, recipes, reproduce
from lenet_fast.reproduce import page as reproduce_page
from lenet_fast.reproduce import summary as reproduce_summary
from lenet_fast.augment import Affine, FixedDistortions, MAX_COPIES
from lenet_fast import LeNet5
from lenet_fast.optim import PAPER_ETA, SDLM
from lenet_fast.sweep import ResultsFile, run_key
from lenet_fast import Trainer


def strip(summary):
    """A summary without what differs between two invocations over the same runs."""
    out = {k: v for k, v in summary.items() if k not in reproduce.VOLATILE_KEYS}
    out["runs"] = dict(out["runs"], rows=[{k: v for k, v in r.items() if k != "train_seconds"}
                                          for r in out["runs"]["rows"]])
    out.pop("train_seconds_total", None)
    return out


def outcome(record):
    """A run's result without its timings: what must be the same wherever it ran."""
    result = {k: v for k, v in record["result"].items() if k not in experiment.TIMING_KEYS}
    result["history"] = [{k: v for k, v in h.items() if k not in experiment.TIMING_KEYS}
                         for h in result["history"]]
    return result


# --------------------------------------------------------------------------
# Arguments, plan, statistics
# --------------------------------------------------------------------------


def test_parse_figures():
    assert reproduce.parse_figures("5,6,8,9") == [5, 6, 8, 9]
    assert reproduce.parse_figures(" 9, 5,9 ") == [5, 9]
    assert reproduce.parse_figures("fig8") == [8]
    assert reproduce.parse_figures("all") == [5, 6, 8, 9]
    for bad in ("", "7", "5,,6", "five", "5-9", "10"):
        with pytest.raises(ValueError, match="figures must be some of"):
            reproduce.parse_figures(bad)


def test_plan_has_every_run_once_longest_first():
    plan = reproduce.make_plan(seeds=list(range(10)))
    groups = {}
    for run in plan["runs"]:
        groups.setdefault(run["group"], []).append(run)
    assert {g: len(r) for g, r in groups.items()} == {"plain": 10, "affine": 10, "fixed": 2,
                                                      "size": 2 * 2 * 3}
    keys = [run_key(dict(r["config"], threads=1)) for r in plan["runs"]]
    assert len(set(keys)) == len(keys)
    costs = [reproduce.run_cost(r["config"]) for r in plan["runs"]]
    assert costs == sorted(costs, reverse=True)
    for run in plan["runs"]:
        c = run["config"]
        assert (c["variant"], c["optimizer"], c["epochs"]) == ("lecun98", "sdlm", 20)
        assert c.get("train_eval", False) == (run["augment"] == "none" and run["group"] != "fixed")
        assert c.get("distortion_copies", 0) == (9 if run["group"] == "fixed" else 0)
        assert c["train_limit"] == run["size"]
    assert sorted(r["seed"] for r in groups["fixed"]) == [0, 1]
    assert {r["size"] for r in groups["size"]} == {15_000, 30_000}
    # a figure alone plans only its runs, with the same configs (shared on a rerun)
    only6 = reproduce.make_plan([6], list(range(10)))
    assert sorted({r["group"] for r in only6["runs"]}) == ["affine", "plain", "size"]
    assert {r["seed"] for r in only6["runs"]} == {0, 1, 2}
    all_configs = [r["config"] for r in plan["runs"]]
    assert all(r["config"] in all_configs for r in only6["runs"])
    # the full default fits the hour on 2 cores at the measured speed
    assert reproduce.estimate_seconds(plan["runs"], 2) < 3600
    assert reproduce.estimate_seconds(reproduce.make_plan(profile="quick")["runs"], 2) < 600
    for bad in ({"figures": [7]}, {"profile": "huge"}, {"seeds": []}, {"seeds": [-1]}):
        with pytest.raises(ValueError):
            reproduce.make_plan(**bad)


def test_estimate_packs_runs_on_workers():
    runs = reproduce.make_plan([9], [0, 1, 2])["runs"]
    one = reproduce.estimate_seconds(runs, 1)
    assert one == pytest.approx(sum(reproduce.run_cost(r["config"]) for r in runs))
    assert one / 2 <= reproduce.estimate_seconds(runs, 2) < one


def test_measured_step_seconds():
    def record(seconds, n=1000, augment="none", copies=0, status="ok"):
        return {"status": status, "params": {"augment": augment, "distortion_copies": copies},
                "result": {"train_images": n, "history": [{"seconds": s} for s in seconds]}}

    assert reproduce.measured_step_seconds([]) is None
    records = [record([0.1, 0.2, 0.9]), record([0.4], n=2000), record([5.0], augment="affine"),
               record([5.0], copies=9), record([5.0], status="error"),
               {"status": "ok", "params": None}, dict(record([5.0]), result={"history": 3})]
    assert reproduce.measured_step_seconds(records) == pytest.approx(0.0002)  # median of 4
    runs = reproduce.make_plan([9], [0, 1])["runs"]
    slower = dict(reproduce.COST, step=2 * reproduce.COST["step"])
    assert reproduce.estimate_seconds(runs, 2, slower) > 1.8 * reproduce.estimate_seconds(runs, 2)


def test_intervals():
    t975 = reproduce_summary.t975
    assert t975(1) == 12.706 and t975(9) == 2.262
    assert t975(30) > t975(45) > t975(60) > t975(1000) > 1.96
    errors = [0.0092, 0.0099, 0.0103, 0.0088, 0.0101]
    s = reproduce_summary.stats(errors)
    mean, std = np.mean(errors), np.std(errors, ddof=1)
    assert s["n"] == 5 and s["mean"] == pytest.approx(mean) and s["std"] == pytest.approx(std)
    half = 2.776 * std / math.sqrt(5)
    assert s["ci95"] == pytest.approx([mean - half, mean + half])
    assert s["pi95"][0] < s["ci95"][0] < mean < s["ci95"][1] < s["pi95"][1]
    assert reproduce_summary.stats([0.01])["ci95"] is None
    assert reproduce_summary.stats([])["mean"] is None


def test_departures_match_the_recipe():
    text = {d["what"]: d for d in optim.DEPARTURES}
    assert recipes.SDLM_INIT in text["initial weights"]["here"]
    scale = recipes.SDLM_RECIPE["lr"] / PAPER_ETA
    assert f"times {scale:g}" in text["step sizes (eta by pass)"]["here"]
    assert str(recipes.SDLM_RECIPE["lr"]) in text["step sizes (eta by pass)"]["here"]
    rows = reproduce_summary.departures()
    assert len(rows) == len(optim.DEPARTURES) + 2
    assert all(set(d) >= {"what", "paper", "here", "why"} for d in rows)
    assert f"shift +-{Affine().shift:g} px" in rows[-2]["here"]


# --------------------------------------------------------------------------
# The fixed set of copies, the trainer's hooks, the run options
# --------------------------------------------------------------------------


def test_fixed_distortions_visit_every_version_once_per_cycle(mnist_train):
    images = mnist_train[0][:300]
    fixed = FixedDistortions(images, copies=4, order_seed=3)
    assert fixed.pool.shape == (4, 300, 28, 28) and fixed.pool.dtype == np.uint8
    versions = np.stack([fixed.versions(p) for p in range(5)])
    assert (np.sort(versions, axis=0) == np.arange(5)[:, None]).all()  # each once in 5 passes
    assert (fixed.versions(7) == fixed.versions(2)).all()
    for p in range(5):
        got = fixed.pass_images(p)
        v = versions[p]
        assert (got[v == 0] == images[v == 0]).all()
        k = np.flatnonzero(v)
        assert (got[k] == fixed.pool[v[k] - 1, k]).all()
    assert not (fixed.pool[0] == images).all()       # distorted
    # the copies are made alike by every run (one fixed set); the visiting order is the run's
    again = FixedDistortions(images, copies=4, order_seed=4)
    assert (again.pool == fixed.pool).all() and not (again.offsets == fixed.offsets).all()
    expected = np.empty_like(images)
    Affine(seed=fixed_seed()).__call__(images, out=expected)
    assert (fixed.pool[0] == expected).all()
    for bad in (0, MAX_COPIES + 1, 2.0, True):
        with pytest.raises(ValueError, match="copies"):
            FixedDistortions(images, copies=bad)


def fixed_seed():
    from lenet_fast._training.augment import FIXED_SET_SEED
    return FIXED_SET_SEED


def test_trainer_pass_images_and_training_set_evaluation(mnist_train):
    images, labels = mnist_train[0][:400], mnist_train[1][:400]

    def fit(**kwargs):
        model = LeNet5("lecun98", seed=0, init="fanin-sqrt", n_threads=1)
        evaluate_train = kwargs.pop("evaluate_train", False)
        history = Trainer(model, SDLM(), batch_size=1, epochs=2, schedule="lecun98",
                          progress=False, **kwargs).fit((images, labels),
                                                         evaluate_train=evaluate_train)
        return model, history

    plain, history = fit(evaluate_train=True)
    assert all(0 <= h["train_set_accuracy"] <= 1 and "train_set_loss" in h for h in history)
    from lenet_fast.metrics import evaluate
    assert history[-1]["train_set_accuracy"] == evaluate(plain, images, labels)["accuracy"]
    same, history = fit(pass_images=lambda epoch: images.copy())
    assert "train_set_accuracy" not in history[0]
    assert (same.flat_params == plain.flat_params).all()
    seen = []
    fixed = FixedDistortions(images, copies=2)

    def pass_images(epoch):
        seen.append(epoch)
        return fixed.pass_images(epoch)

    other, _ = fit(pass_images=pass_images)
    assert seen == [0, 1] and not (other.flat_params == plain.flat_params).all()
    with pytest.raises(ValueError, match="gave 10 images for the 400"):
        fit(pass_images=lambda epoch: images[:10])
    with pytest.raises(TypeError, match="pass_images"):
        fit(pass_images=images)


def test_run_options(mnist_dir):
    base = {"variant": "lecun98", "optimizer": "sdlm", "epochs": 1, "train_limit": 500,
            "test_limit": 300, "data_dir": str(mnist_dir), "download": False}
    result = experiment.run(dict(base, record_errors=True, train_eval=True))
    errors = result["test_errors"]
    assert len(errors["index"]) == round(result["test_error"] * 300)
    from lenet_fast.datasets import load_mnist
    labels = load_mnist("test", mnist_dir, download=False)[1][:300]
    assert all(labels[i] != p for i, p in zip(errors["index"], errors["predicted"]))
    assert "train_set_accuracy" in result["history"][0] and result["peak_rss_mb"] > 10
    fixed = experiment.run(dict(base, distortion_copies=3))
    assert fixed["distortion_copies"] == 3 and "test_errors" not in fixed
    assert fixed["weights_sha256"] != result["weights_sha256"]
    # the new options at their defaults leave a run's key as it was
    assert run_key(base) == run_key(dict(base, train_eval=False, record_errors=False,
                                         distortion_copies=0))
    assert "train_eval" not in run_key(base)
    assert "train_eval" in run_key(dict(base, train_eval=True))
    with pytest.raises(ValueError, match="exclude each other"):
        experiment.run(dict(base, distortion_copies=9, augment="affine"))
    with pytest.raises(ValueError, match="distortion_copies"):
        experiment.run(dict(base, distortion_copies=-1))


# --------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------


def test_figures():
    pytest.importorskip("matplotlib", reason='needs matplotlib (pip install "lenet-fast[plot]")')
    from lenet_fast import plot

    curves = {"test": [[0.03, 0.02, 0.011], [0.04, 0.02, 0.009]],
              "training": [[0.02, 0.01, 0.004]] * 2}
    fig = plot.pass_curves(curves, paper=[(3, 0.0095, "paper")])
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    means = [line for line in ax.get_lines() if line.get_linewidth() > 2]
    assert [list(np.round(line.get_ydata(), 3)) for line in means] == [[3.5, 2.0, 1.0],
                                                                       [2.0, 1.0, 0.4]]
    assert any(line.get_label() == "paper" for line in ax.get_lines())
    images = np.zeros((5, 28, 28), np.uint8)
    fig = plot.misclassified(images, [1, 2, 3, 4, 5], [7, 7, 7, 7, 7], cols=3)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == ["1->7", "2->7", "3->7", "4->7", "5->7"] and len(fig.axes) == 6
    assert plot.misclassified(images[:0], [], []).axes[0].texts[0].get_text() == "no errors"
    fig = plot.seed_spread([{"label": "a", "errors": [0.01, 0.012], "interval": (0.009, 0.013),
                             "paper": 0.0095},
                            {"label": "b", "errors": [0.008], "interval": None, "paper": None}])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["b", "a"]
    fig = plot.size_curves([("x", [100, 1000], [[0.1, 0.2], [0.05]])])
    means = list(fig.axes[0].get_lines()[-1].get_ydata())
    assert means == pytest.approx([15, 5])


# --------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------

TINY = ["--profile", "tiny", "--no-download"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_dir):
    """One tiny reproduce run through the command: (folder, exit code, output)."""
    pytest.importorskip("joblib", reason='needs joblib (pip install "lenet-fast[sweep]")')
    pytest.importorskip("matplotlib", reason='needs matplotlib (pip install "lenet-fast[plot]")')
    out = tmp_path_factory.mktemp("reproduce")
    import contextlib
    import io
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli.main(["reproduce", *TINY, "--data-dir", str(mnist_dir), "--jobs", "2",
                         "--out", str(out)])
    return out, code, buffer.getvalue()


def test_reproduce_command_writes_every_figure(tiny_run, mnist_test):
    out, code, text = tiny_run
    assert code == 0, text
    summary = json.loads((out / reproduce.SUMMARY).read_text())
    plan = reproduce.make_plan(profile="tiny")
    assert summary["runs"]["planned"] == summary["runs"]["ok"] == len(plan["runs"]) == 15
    assert summary["ran_now"] == 15 and summary["seeds"] == [0, 1, 2]
    assert summary["figures"] == [5, 6, 8, 9] and summary["passes"] == 2
    assert summary["build"]["openmp"] in (True, False) and summary["machine"]["usable_cpus"] >= 1
    assert summary["wall_seconds"] > 0 and len(summary["departures"]) >= 4
    records = ResultsFile(out / reproduce.RESULTS).read()
    assert len(records) == 15 and all(r["status"] == "ok" for r in records)
    by_key = {r["key"]: r for r in records}
    by_group = {}
    for run in plan["runs"]:
        record = by_key[run_key(dict(run["config"], threads=1))]
        by_group.setdefault(run["group"], {})[run["seed"], run["size"], run["augment"]] = record

    # Fig. 9: the statistics of the recorded errors
    rows = {r["group"]: r for r in summary["fig9"]["rows"]}
    plain = [by_group["plain"][s, None, "none"]["result"]["test_error"] for s in (0, 1, 2)]
    assert rows["plain"]["errors"] == plain and rows["plain"]["n"] == 3
    assert rows["plain"]["mean"] == pytest.approx(np.mean(plain))
    assert rows["plain"]["std"] == pytest.approx(np.std(plain, ddof=1))
    assert rows["fixed"]["n"] == 1 and rows["fixed"]["ci95"] is None
    assert "9,000 distorted copies" in rows["fixed"]["label"]
    for row in rows.values():
        assert all(0 < e < 0.9 for e in row["errors"])  # 2 passes on 1,000 digits: far from 0.95%
        assert row["paper"] in (0.0095, 0.008)
    assert summary["goals"]["setting_is_the_papers"] is False
    assert summary["goals"]["at_least_10_seeds"] is False

    # Fig. 5: per seed, per pass; the training error is the training set after the pass
    fig5 = summary["fig5"]
    assert np.shape(fig5["test_error"]) == np.shape(fig5["train_error"]) == (3, 2)
    history = by_group["plain"][1, None, "none"]["result"]["history"]
    assert fig5["train_error"][1] == [1 - h["train_set_accuracy"] for h in history]
    assert fig5["test_error"][1][-1] == pytest.approx(plain[1])

    # Fig. 6: sizes 250, 500 and the main runs' 1,000
    sizes = {(r["augment"], r["size"]): r for r in summary["fig6"]["rows"]}
    assert sorted(sizes) == sorted((a, s) for a in ("none", "affine") for s in (250, 500, 1000))
    assert sizes["none", 1000]["test_errors"] == plain[:2]

    # Fig. 8: the median seed's misclassified digits, against the real labels
    fig8 = summary["fig8"]["affine"]
    affine = {s: by_group["affine"][s, None, "affine"]["result"]["test_error"] for s in (0, 1, 2)}
    assert fig8["seed"] == sorted(affine, key=lambda s: (affine[s], s))[1]
    assert fig8["count"] == round(affine[fig8["seed"]] * 500) == len(fig8["label"])
    labels = mnist_test[1]
    assert fig8["label"] == [int(labels[i]) for i in fig8["index"]]
    assert all(p != t for p, t in zip(fig8["predicted"], fig8["label"]))

    # the page: self-contained, every figure inline
    page = (out / reproduce.PAGE).read_text()
    assert page.count("data:image/png;base64,") == 5  # Figs. 9, 5, 6 and two of Fig. 8
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for heading in ("Fig. 5", "Fig. 6", "Fig. 8", "Fig. 9", "departs from the paper"):
        assert heading in page
    assert (out / reproduce.MARKDOWN).read_text() == reproduce_page.format_markdown(summary)
    assert "| LeNet-5, no distortions | 0.95% | 3 |" in text and "shortened run" in text


def test_rerun_skips_finished_runs_and_gives_the_same_summary(tiny_run, mnist_dir, capsys):
    out, code, _ = tiny_run
    assert code == 0
    first = json.loads((out / reproduce.SUMMARY).read_text())
    lines = (out / reproduce.RESULTS).read_bytes()
    assert cli.main(["reproduce", *TINY, "--data-dir", str(mnist_dir), "--out", str(out)]) == 0
    assert "15 run(s) in the grid, 15 already finished" in capsys.readouterr().out
    assert (out / reproduce.RESULTS).read_bytes() == lines
    again = json.loads((out / reproduce.SUMMARY).read_text())
    assert again["ran_now"] == 0 and strip(again) == strip(first)

    # a torn line and a record damaged by hand: that run alone runs again, the same result;
    # nothing recorded is removed
    records = [json.loads(line) for line in lines.decode().splitlines()]
    damaged = dict(records[3], result=dict(records[3]["result"]))
    del damaged["result"]["test_errors"]
    with open(out / reproduce.RESULTS, "ab") as f:
        f.write((json.dumps(damaged) + "\n").encode() + b'{"key": "x", "status"')
    assert cli.main(["reproduce", *TINY, "--data-dir", str(mnist_dir), "--jobs", "1",
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 unreadable line(s)" in text and "lack what this needs" in text
    after = ResultsFile(out / reproduce.RESULTS).read()
    assert len(after) == 17 and after[:15] == records
    assert after[-1]["key"] == records[3]["key"] and outcome(after[-1]) == outcome(records[3])
    assert strip(json.loads((out / reproduce.SUMMARY).read_text())) == strip(first)


@pytest.mark.parametrize("argv, code, fragment", [
    (["--figures", "7"], 2, "figures must be some of"),
    (["--figures", ""], 2, "figures must be some of"),
    (["--seeds", "5-1"], 2, "bad seed range"),
    (["--seeds", "x"], 2, "seeds must look like"),
    (["--jobs", "0"], 2, "positive integer"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], 2, "--jobs applies to local runs"),
    (["--test-limit", "100"], 2, "unrecognized arguments"),
])
def test_usage_errors(tmp_path, capsys, argv, code, fragment):
    assert cli.main(["reproduce", "--out", str(tmp_path / "r"), *argv]) == code
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


def test_unusable_output_folders(tmp_path, mnist_dir, capsys):
    pytest.importorskip("joblib")
    pytest.importorskip("matplotlib")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, fragment in ((a_file, "is a file, not a folder"),
                          (a_file / "sub", "cannot write in")):
        assert cli.main(["reproduce", *TINY, "--data-dir", str(mnist_dir),
                         "--out", str(out)]) == 1
        assert fragment in capsys.readouterr().err
    (tmp_path / "d" / reproduce.RESULTS).mkdir(parents=True)
    assert cli.main(["reproduce", *TINY, "--data-dir", str(mnist_dir),
                     "--out", str(tmp_path / "d")]) == 1
    assert "is not a regular file" in capsys.readouterr().err
    assert cli.main(["reproduce", *TINY, "--data-dir", str(tmp_path), "--out",
                     str(tmp_path / "e")]) == 1
    assert "MNIST" in capsys.readouterr().err


def test_dry_run(tmp_path, capsys):
    assert cli.main(["reproduce", "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "34 runs; about" in text and not (tmp_path / "r").exists()


def test_dask_cluster_gives_the_local_results(tiny_run, tmp_path, mnist_dir):
    """The same runs on a Dask LocalCluster of spawned worker processes: bit for bit."""
    distributed = pytest.importorskip(
        "distributed",
        reason='--scheduler needs dask.distributed (pip install "lenet-fast[cluster]")')
    out, code, _ = tiny_run
    assert code == 0
    local = {r["key"]: r for r in ResultsFile(out / reproduce.RESULTS).read()}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        summary = reproduce.run_reproduce(tmp_path, figures=[9], seeds=[0, 1], profile="tiny",
                                          scheduler=cluster.scheduler_address,
                                          data_dir=str(mnist_dir), download=False, page=False)
    assert summary["runs"]["ok"] == 5 and summary["where"].startswith("Dask cluster at")
    remote = ResultsFile(tmp_path / reproduce.RESULTS).read()
    assert len(remote) == 5
    for record in remote:
        assert record["pid"] != os.getpid()                      # ran in worker processes
        assert outcome(record) == outcome(local[record["key"]])  # the same bits
