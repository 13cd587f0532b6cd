"""Tests of `lenet_fast.bench` and ``lenet-fast bench`` (fast: tiny rounds, 1 thread,
no PyTorch; PyTorch is never required)."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from lenet_fast import bench, cli
from lenet_fast.bench import _throughput as throughput

# Forward multiply-accumulates per image, by hand:
C1 = 28 * 28 * 6 * 25          # 117,600
C3_LECUN = 10 * 10 * 25 * 60   # 150,000
C3_FULL = 10 * 10 * 25 * 96    # 240,000
C5 = 120 * 400                 # 48,000
F6 = 120 * 84                  # 10,080
OUT = 84 * 10                  # 840


@pytest.mark.parametrize("variant,c3,forward,train", [
    # forward = 2 * MACs; train = 3 x forward for every conv/linear layer but C1 (2x: no dx)
    ("modern", "full", 833_040, 2_263_920),      # 2 * 416,520; 470,400 + 6 * 298,920
    ("modern", "lecun", 653_040, 1_723_920),     # 2 * 326,520; 470,400 + 6 * 208,920
    ("lecun98", "lecun", 653_880, 1_723_920),    # 2 * 325,680 + 3 * 840; 470,400 + 6 * 208,080 + 2 * 2,520
    ("lecun98", "full", 833_880, 2_263_920),     # 2 * 415,680 + 2,520; 470,400 + 6 * 298,080 + 5,040
])
def test_flops_per_image_by_hand(variant, c3, forward, train):
    c3_macs = C3_FULL if c3 == "full" else C3_LECUN
    if variant == "modern":
        assert forward == 2 * (C1 + c3_macs + C5 + F6 + OUT)
        assert train == 2 * 2 * C1 + 3 * 2 * (c3_macs + C5 + F6 + OUT)
    else:
        assert forward == 2 * (C1 + c3_macs + C5 + F6) + 3 * OUT
        assert train == 2 * 2 * C1 + 3 * 2 * (c3_macs + C5 + F6) + 2 * 3 * OUT
    f = bench.flops_per_image(variant, c3)
    assert (f["forward"], f["train"]) == (forward, train)
    assert sum(v["forward"] for v in f["layers"].values()) == forward
    assert f["layers"]["c1"] == {"forward": 2 * C1, "train": 4 * C1}


def test_flops_rejects_unknown_settings():
    with pytest.raises(ValueError, match="variant"):
        bench.flops_per_image("resnet", "full")
    with pytest.raises(ValueError, match="c3"):
        bench.flops_per_image("modern", "half")


def test_nominal_peak():
    machine = {"cpu_mhz": 2600.0, "physical_cores": 2}
    assert bench.nominal_peak_gflops(1, machine, 32) == pytest.approx(2.6 * 32)
    assert bench.nominal_peak_gflops(4, machine, 64) == pytest.approx(2 * 2.6 * 64)  # capped at the cores
    assert bench.nominal_peak_gflops(1, {"cpu_mhz": None, "physical_cores": 2}) is None


def test_nominal_peak_uses_the_cpus_widest_vectors():
    from lenet_fast import _isa
    widest = _isa.SUPPORTED[-1]
    assert bench.flops_per_cycle() == 4 * {"portable": 4, "avx2": 8, "avx512": 16}[widest]
    machine = {"cpu_mhz": 1000.0, "physical_cores": 1}
    assert bench.nominal_peak_gflops(1, machine) == pytest.approx(bench.flops_per_cycle())


def test_practical_peak_is_numpys_matmul_at_the_thread_count():
    one = bench.measure_matmul_peak(1, budget=0.05, n=256)
    assert one["gflops"] > 0.1 and one["calls"] >= 3 and one["n"] == 256


def test_contention_rule():
    # 2 usable CPUs: another process holding a core spoils a 2-thread row, not a 1-thread one.
    assert throughput._contended(1.0, 2, 2) and not throughput._contended(1.0, 1, 2)
    assert not throughput._contended(0.1, 2, 2) and throughput._contended(1.25, 1, 2)
    assert not throughput._contended(None, 2, 2)


def _run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    """JSON and stdout of a tiny real run: batch 2, 1 thread, 1 round, no torch."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    capture = pytest.MonkeyPatch()
    out = io.StringIO()
    capture.setattr(sys, "stdout", out)
    try:
        code = cli.main(["bench", "--batch-sizes", "2", "--threads", "1", "--repeats", "1",
                         "--round-time", "0.02", "--retries", "0", "--no-torch",
                         "--json", str(path)])
    finally:
        capture.undo()
    assert code == 0
    return json.loads(path.read_text()), out.getvalue()


def test_cli_bench_json(quick_result):
    result, stdout = quick_result
    for key in ("settings", "machine", "versions", "build", "data", "flops_per_image", "torch",
                "peak", "rows", "speedups", "wall_seconds"):
        assert key in result, key
    assert result["settings"]["batch_sizes"] == [2] and result["settings"]["threads"] == [1]
    assert result["settings"]["retries"] == 0
    assert result["torch"]["available"] is False
    assert result["versions"]["lenet_fast"]
    assert isinstance(result["build"]["openmp"], bool)
    assert result["machine"]["usable_cpus"] >= 1
    assert result["peak"]["practical_gflops"]["1"] > 0
    assert result["build"]["isa"] in result["build"]["isa_built"]
    assert result["speedups"] == []  # one thread count only

    flops = bench.flops_per_image("modern", "full")
    assert result["flops_per_image"]["forward"] == flops["forward"]
    assert [(r["mode"], r["batch_size"], r["threads"]) for r in result["rows"]] == [
        ("train", 2, 1), ("infer", 2, 1)]
    for row in result["rows"]:
        lf = row["lenet_fast"]
        ips = lf["images_per_s"]
        assert ips["median"] > 0 and ips["min"] <= ips["median"] <= ips["max"]
        assert len(ips["rounds"]) == 1 and lf["steps_per_round"] >= 1
        per_image = flops["train" if row["mode"] == "train" else "forward"]
        assert lf["gflops"] == pytest.approx(ips["median"] * per_image / 1e9, rel=1e-9)
        assert lf["share_of_practical_peak"] == pytest.approx(
            lf["gflops"] / result["peak"]["practical_gflops"]["1"], rel=1e-9)
        assert row["torch"] is None and row["ratio_lenet_fast_over_torch"] is None
    assert result["rows"][0]["lenet_fast"]["last_loss"] > 0

    assert "### Training" in stdout and "### Inference" in stdout
    assert "| batch | threads | lenet_fast img/s |" in stdout
    assert "practical peak (best of numpy's float32 matmul" in stdout
    assert "torch: disabled" in stdout


def test_markdown_with_torch_and_speedups(quick_result):
    """Render a result as if torch and 2 threads had been measured (synthetic numbers)."""
    result = copy.deepcopy(quick_result[0])
    result["torch"].update(available=True, same_network=True, network=bench.TORCH_NETWORK,
                           flops_per_image=bench.flops_per_image("modern", "full"))
    result["versions"]["torch"] = "0.0-test"
    result["settings"]["threads"] = [1, 2]
    for key in ("practical_gflops", "nominal_gflops"):
        result["peak"][key]["2"] = 2 * (result["peak"][key]["1"] or 1.0)
    rows = []
    for row in result["rows"]:
        for t in (1, 2):
            r = copy.deepcopy(row)
            r["threads"] = t
            r["lenet_fast"]["images_per_s"]["median"] *= t
            r["torch"] = copy.deepcopy(r["lenet_fast"])
            r["torch"]["images_per_s"]["median"] /= 2.0
            r["ratio_lenet_fast_over_torch"] = 2.0
            rows.append(r)
    result["rows"] = rows
    result["speedups"] = throughput._speedups(rows, [1, 2])
    assert [(s["mode"], s["threads"]) for s in result["speedups"]] == [("train", 2), ("infer", 2)]
    for s in result["speedups"]:
        assert s["lenet_fast"] == pytest.approx(2.0) and s["torch"] == pytest.approx(2.0)
    text = bench.format_markdown(result)
    assert "lenet_fast / torch" in text and "| 2.00x |" in text
    assert "### Thread scaling" in text


@pytest.mark.parametrize("argv,needle", [
    (["--threads", "0"], "--threads"),
    (["--threads", "1,x"], "--threads"),
    (["--batch-sizes", ""], "--batch-sizes"),
    (["--repeats", "0"], "--repeats"),
    (["--round-time", "-1"], "--round-time"),
    (["--retries", "-1"], "--retries"),
    (["--c3", "half"], "--c3"),
])
def test_cli_bench_usage_errors(capsys, argv, needle):
    code, out, err = _run_cli(capsys, "bench", *argv)
    assert code == 2
    assert err.startswith("lenet-fast: error:") and needle in err
    assert err.count("\n") == 1 and out == ""


def test_cli_bench_unwritable_json(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = _run_cli(capsys, "bench", "--no-torch", "--json", str(blocker / "out.json"))
    assert code == 1
    assert err.startswith("lenet-fast: error: cannot write benchmark JSON") and err.count("\n") == 1


def test_importing_lenet_fast_does_not_import_torch():
    code = ("import sys, lenet_fast, lenet_fast.bench, lenet_fast.cli; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_inference_rows_beside_the_runtimes(runtime, tmp_path):
    """ONNX Runtime and OpenVINO run lenet_fast's own export on the same digits, and give
    its probabilities."""
    pytest.importorskip("onnx")
    pytest.importorskip(runtime)
    runners, missing = bench.import_runtimes()
    assert runtime in runners, missing
    from lenet_fast import LeNet5
    from lenet_fast.onnx_export import build_onnx
    model = LeNet5(seed=0)
    digits = bench.load_digits(n=64)
    batches = bench.pool_batches(digits, np.zeros(len(digits), np.int64), 32)
    runner = runners[runtime](build_onnx(model), batches, 1)
    runner.run(3)
    assert runner.loss() is None
    if runtime == "onnxruntime":
        got = runner.session.run(["probabilities"], {runner.input: batches[0][0]})[0]
    else:
        got = runner.request.infer([batches[0][0]])[runner.output]
    np.testing.assert_allclose(got, model.predict_proba(batches[0][0]), atol=1e-5)
    result = bench.run(batch_sizes=[4], threads=[1], repeats=1, round_time=0.02, retries=0,
                       use_torch=False, modes=["infer"])
    row = result["rows"][0]
    assert row[runtime]["images_per_s"]["median"] > 0
    assert row[f"ratio_lenet_fast_over_{runtime}"] == pytest.approx(
        row["lenet_fast"]["images_per_s"]["median"] / row[runtime]["images_per_s"]["median"])
    assert row["ratio_lenet_fast_over_best_runtime"] is not None
    assert f"lenet_fast / {runtime}" in bench.format_markdown(result)


def test_isa_paths_are_checked():
    from lenet_fast import _isa
    usable = [p for p in _isa.BUILT if p in _isa.SUPPORTED]
    assert bench.isa_paths("all") == usable
    with pytest.raises(ValueError, match="unknown path"):
        bench.isa_paths("sse9")
    missing = [p for p in _isa.PATHS if p not in usable]
    if missing:
        with pytest.raises(ValueError, match="not built here or not run"):
            bench.isa_paths(missing[0])


def test_cli_bench_isa_runs_each_path(capsys, tmp_path):
    from lenet_fast import _isa
    paths = [p for p in _isa.BUILT if p in _isa.SUPPORTED][:2]
    code, out, err = _run_cli(capsys, "bench", "--isa", ",".join(paths), "--batch-sizes", "2",
                              "--threads", "1", "--repeats", "1", "--round-time", "0.02",
                              "--retries", "0", "--json", str(tmp_path / "isa.json"))
    assert code == 0, err
    result = json.loads((tmp_path / "isa.json").read_text())
    assert result["paths"] == paths
    for p in paths:
        assert result["results"][p]["build"]["isa"] == p
        assert result["results"][p]["rows"][0]["lenet_fast"]["images_per_s"]["median"] > 0
    assert "lenet-fast bench --isa" in out and all(f"| {p}" in out or p in out for p in paths)


def test_cli_bench_isa_holds_the_peers_to_each_path(capsys, tmp_path, monkeypatch):
    """Each path's child process runs PyTorch (where installed) and numpy's BLAS held to
    that path's instruction set, set before they are imported; a variable set by the
    caller does not leak into a path that does not hold it."""
    from lenet_fast import _isa
    usable = [p for p in _isa.BUILT if p in _isa.SUPPORTED]
    paths = [p for p in ("portable", "avx2") if p in usable]
    if not paths:
        pytest.skip("no path below this CPU's widest is built and run here")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    code, out, err = _run_cli(capsys, "bench", "--isa", ",".join(paths), "--batch-sizes", "2",
                              "--threads", "1", "--repeats", "1", "--round-time", "0.02",
                              "--retries", "0", "--json", str(tmp_path / "isa.json"))
    assert code == 0, err
    result = json.loads((tmp_path / "isa.json").read_text())
    for p in paths:
        held = result["results"][p]["peer_isa"]
        want = bench.PEER_ISA_ENV[p]
        assert held["env"] == {k: want.get(k) for k in held["env"]}, p
        openblas = [b for b in held["blas"] or [] if b["library"] == "openblas"]
        if openblas:
            assert openblas[0]["architecture"].lower() == want["OPENBLAS_CORETYPE"].lower(), p
        if result["results"][p]["torch"]["available"]:
            cap = {"avx2": "AVX2", "portable": "DEFAULT"}[p]
            assert held["torch_cpu_capability"] == cap, p
            assert result["results"][p]["rows"][0]["torch"]["images_per_s"]["median"] > 0
        assert f"| {p} |" in out
