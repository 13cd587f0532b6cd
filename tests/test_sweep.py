"""lenet_fast.sweep and ``lenet-fast sweep``: grids of runs in worker processes (joblib,
loky) or on a Dask cluster, resumable from their JSON Lines results.

Every run is tiny (1,500 training digits, 1 epoch, 300 test digits, one thread).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("joblib", reason='sweeps need joblib (pip install "lenet-fast[sweep]")')

from lenet_fast import cli, experiment, recipes  # noqa: E402
from lenet_fast.sweep import (ResultsFile, SweepError, format_table, make_grid,  # noqa: E402
                              parse_seeds, run_key, run_sweep, summarize)

TINY = {"train_limit": 1500, "test_limit": 300, "epochs": 1, "epoch_eval": False}


def outcome(record):
    """A run's result without its timings and where it ran: what must be reproducible."""
    result = dict(record["result"])
    for key in (*experiment.TIMING_KEYS, "threads"):
        result.pop(key, None)
    result["history"] = [{k: v for k, v in r.items() if k not in experiment.TIMING_KEYS}
                         for r in result["history"]]
    return result


def test_parse_seeds():
    assert parse_seeds("0-5") == [0, 1, 2, 3, 4, 5]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("0-2, 10") == [0, 1, 2, 10]
    assert parse_seeds("2,1-3") == [2, 1, 3]
    for bad in ("", "a", "5-2", "-1", "0-", "1.5", "0-100000"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_make_grid_and_keys():
    grid = make_grid({"lr": [0.02, 0.05], "variant": ["modern", "lecun98"]}, [0, 1],
                     {"epochs": 1})
    assert len(grid) == 8
    assert [c["seed"] for c in grid] == [0] * 4 + [1] * 4
    assert grid[:4] == [{"epochs": 1, "lr": lr, "variant": v, "seed": 0}
                        for lr in (0.02, 0.05) for v in ("modern", "lecun98")]
    assert len({run_key(c) for c in grid}) == 8
    # the key is the resolved run: a default given explicitly is the same run
    lr = recipes.RECIPES["modern"]["lr"]
    assert run_key({"seed": 0}) == run_key({"seed": 0, "lr": lr, "threads": 2, "data_dir": "x"})
    with pytest.raises(ValueError, match="--seeds"):
        make_grid({"seed": [1]}, [0])
    with pytest.raises(ValueError, match="no values"):
        make_grid({"lr": []}, [0])


def test_results_file_appends_whole_lines_and_skips_a_torn_one(tmp_path):
    store = ResultsFile(tmp_path / "sub" / "r.jsonl")
    assert store.read() == []
    store.append({"key": "a", "status": "ok"})
    store.append({"key": "b", "status": "error"})
    with open(store.path, "ab") as f:
        f.write(b'{"key": "c", "sta')  # a write cut short
    assert [r["key"] for r in store.read()] == ["a", "b"] and store.torn_lines == 1
    store.append({"key": "d", "status": "ok"})
    assert [r["key"] for r in store.read()] == ["a", "b", "d"] and store.torn_lines == 1
    assert open(store.path, "rb").read().endswith(b'"status": "ok"}\n')


def test_local_sweep_records_failures_resumes_and_matches_serial(tmp_path):
    out = tmp_path / "results.jsonl"
    # optimizer sdlm with the modern network is refused: those runs fail at once
    grid = make_grid({"optimizer": ["adam", "sdlm"]}, [0, 1], TINY)
    lines = []
    records = run_sweep(grid, out, jobs=2, echo=lines.append)
    assert [r["status"] for r in records] == ["ok", "error", "ok", "error"]
    assert "needs --variant lecun98" in records[1]["error"]
    assert records[1]["params"] == dict(TINY, optimizer="sdlm", seed=0)
    assert all(r["pid"] != os.getpid() for r in records)  # ran in worker processes
    assert lines[0].startswith("4 run(s) in the grid, 0 already finished")
    assert sum(line.startswith("[") for line in lines) == 4
    assert len(ResultsFile(out).read()) == 4

    # a rerun skips the finished runs and retries the failed ones
    lines.clear()
    again = run_sweep(grid, out, jobs=2, echo=lines.append)
    assert lines[0].startswith("4 run(s) in the grid, 2 already finished")
    assert len(ResultsFile(out).read()) == 6
    assert again[0] == records[0] and again[2] == records[2]

    # the same runs one after another in this process give the same results, bit for bit
    serial = run_sweep([grid[0], grid[2]], tmp_path / "serial.jsonl", jobs=1)
    assert [r["pid"] for r in serial] == [os.getpid()] * 2
    assert [outcome(r) for r in serial] == [outcome(records[0]), outcome(records[2])]

    rows = summarize(grid, again, ["optimizer"])
    assert [(r["optimizer"], r["runs"], r["ok"], r["failed"]) for r in rows] == [
        ("adam", 2, 2, 0), ("sdlm", 2, 0, 2)]
    errors = [r["result"]["test_error"] for r in (records[0], records[2])]
    assert rows[0]["mean"] == pytest.approx(sum(errors) / 2)
    assert rows[0]["min"] == min(errors) and rows[0]["max"] == max(errors)
    table = format_table(rows, ["optimizer"])
    assert table.splitlines()[0].startswith("| optimizer | runs | test error % mean")
    assert f"| adam | 2 | {100 * rows[0]['mean']:.2f} |" in table
    assert "| sdlm | 0 (+2 failed) | - |" in table


def test_ctrl_c_keeps_the_finished_runs(tmp_path):
    out = tmp_path / "results.jsonl"
    grid = make_grid({}, [0, 1, 2], TINY)

    def echo(line):
        if line.startswith("[1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, out, jobs=2, echo=echo)
    # the first run, and any other that finished before the workers were stopped
    assert 1 <= len(ResultsFile(out).read()) <= 3
    records = run_sweep(grid, out, jobs=2)
    assert [r["status"] for r in records] == ["ok"] * 3
    assert len(ResultsFile(out).read()) == 3


def test_killed_worker_stops_the_sweep_and_keeps_the_finished_runs(tmp_path):
    out = tmp_path / "results.jsonl"
    grid = make_grid({}, [0, 1, 2, 3, 4, 5], TINY)

    def echo(line):
        if line.startswith("[1/"):  # kill the worker that ran the first finished run
            os.kill(ResultsFile(out).read()[0]["pid"], signal.SIGKILL)

    with pytest.raises(SweepError, match="worker process died"):
        run_sweep(grid, out, jobs=2, echo=echo)
    finished = ResultsFile(out).read()
    assert 1 <= len(finished) < 6 and all(r["status"] == "ok" for r in finished)
    records = run_sweep(grid, out, jobs=2)
    assert [r["status"] for r in records] == ["ok"] * 6
    assert len(ResultsFile(out).read()) == 6


def test_sweep_command(tmp_path, mnist_dir, capsys):
    out = tmp_path / "r.jsonl"
    argv = ["sweep", "--seeds", "0-1", "--set", "batch_size=32,64", "--set", "epochs=1",
            "--jobs", "1", "--train-limit", "1000", "--test-limit", "200", "--no-epoch-eval",
            "--data-dir", str(mnist_dir), "--no-download", "--out", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "4 run(s) in the grid, 0 already finished" in text
    assert "test error over seeds 0-1 (epochs=1):" in text
    table = text[text.index("| batch_size |"):].splitlines()
    assert len(table) == 4 and table[2].startswith("| 32 | 2 |")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["params"]["batch_size"], r["params"]["seed"]) for r in records) == [
        (32, 0), (32, 1), (64, 0), (64, 1)]
    assert all(r["result"]["train_images"] == 1000 for r in records)
    assert cli.main(argv) == 0  # nothing left to run
    assert "4 already finished in" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 4

    # a failing run: recorded, reported, exit code 1
    code = cli.main([*argv[:4], "optimizer=sdlm", *argv[5:]])
    captured = capsys.readouterr()
    assert code == 1 and "FAILED: SettingsError: --optimizer sdlm needs" in captured.out
    assert "run(s) failed" in captured.err


@pytest.mark.parametrize("argv, fragment", [
    (["--set", "learning_rate=0.1"], "KEY one of"),
    (["--set", "lr"], "expected KEY=V1"),
    (["--set", "lr=-1"], "lr: must be a positive"),
    (["--set", "variant=lenet1"], "'lenet1' is not one of"),
    (["--set", "threads=2"], "KEY one of"),
    (["--set", "lr=0.1", "--set", "lr=0.2"], "given twice"),
    (["--seeds", "3-1"], "bad seed range"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "--jobs applies to local runs"),
])
def test_sweep_usage_errors(tmp_path, capsys, argv, fragment):
    code = cli.main(["sweep", "--out", str(tmp_path / "r.jsonl"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err, err
    assert not (tmp_path / "r.jsonl").exists()


def test_dask_cluster_gives_the_local_results(tmp_path, mnist_dir, capsys):
    distributed = pytest.importorskip(
        "distributed", reason='--scheduler needs dask.distributed (pip install "lenet-fast[cluster]")')
    grid = make_grid({"variant": ["modern", "lecun98"]}, [0],
                     dict(TINY, data_dir=str(mnist_dir), download=False))
    local = run_sweep(grid, tmp_path / "local.jsonl", jobs=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        code = cli.main(["sweep", "--seeds", "0", "--set", "variant=modern,lecun98",
                         "--set", "epochs=1", "--train-limit", "1500", "--test-limit", "300",
                         "--no-epoch-eval", "--data-dir", str(mnist_dir), "--no-download",
                         "--scheduler", cluster.scheduler_address,
                         "--out", str(tmp_path / "dask.jsonl")])
    assert code == 0, capsys.readouterr()
    assert "on the Dask cluster at" in capsys.readouterr().out
    remote = {r["key"]: r for r in ResultsFile(tmp_path / "dask.jsonl").read()}
    assert set(remote) == {r["key"] for r in local}
    for record in local:
        twin = remote[record["key"]]
        assert twin["status"] == "ok" and twin["pid"] == os.getpid()  # in-process workers
        assert outcome(twin) == outcome(record)


def test_ctrl_c_of_the_command(tmp_path, mnist_dir):
    """SIGINT to the command's process group (as a terminal's Ctrl-C): exit code 130, the
    finished runs saved, the rest run by the same command. Each run trains on 15,000 digits
    (about 1 s): with 1,500 (0.1 s) the other runs could all end before the signal came."""
    out = tmp_path / "r.jsonl"
    argv = [sys.executable, "-m", "lenet_fast", "sweep", "--seeds", "0-3", "--set", "epochs=1",
            "--train-limit", "15000", "--test-limit", "300", "--no-epoch-eval", "--jobs", "2",
            "--data-dir", str(mnist_dir), "--no-download", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith("[1/"):
                os.killpg(proc.pid, signal.SIGINT)
                break
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted; the finished runs are saved in" in err and "Traceback" not in err
    assert 1 <= len(ResultsFile(out).read()) < 4
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(ResultsFile(out).read()) == 4
