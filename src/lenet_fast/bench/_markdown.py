"""The benchmark's results as markdown tables, and its progress messages.
"""

from __future__ import annotations

import sys
from typing import Any

from ._machine import MATMUL_SIZE
from ._peers import PEERS, RUNTIMES


def format_ips(s: dict[str, Any]) -> str:
    """A cell: the median images/s and the min-max, e.g. ``19,679 (15,122-21,967)``.

    Parameters
    ----------
    s : dict
        A summary of rounds (median, min, max).

    Returns
    -------
    str
    """
    return f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def format_isa_markdown(result: dict[str, Any]) -> str:
    """`run_isa_paths`'s result as markdown: per path, lenet_fast's images/s beside
    PyTorch held to the same instruction set, and the share of that path's practical peak.

    Parameters
    ----------
    result : dict
        What `run_isa_paths` returns.

    Returns
    -------
    str
    """
    paths = result["paths"]
    first = result["results"][paths[0]]
    lines = [f"## lenet-fast bench --isa: {first['settings']['variant']}, C3 "
             f"{first['settings']['c3']}", "",
             "- machine: " + (first["machine"]["cpu_model"] or "unknown CPU"),
             "- each path ran in its own process, its peers held to the same instruction "
             "set before they were imported:"]
    for p in paths:
        r = result["results"][p]
        held = r.get("peer_isa") or {}
        env = ", ".join(f"{k}={v}" for k, v in (held.get("env") or {}).items() if v) or "none"
        blas = ", ".join(f"{b['library']} {b['architecture']}" for b in held.get("blas") or [])
        peaks = ", ".join(f"{t} thread(s) {g:.0f}" for t, g in
                          r["peak"]["practical_gflops"].items())
        lines.append(f"  - {p}: {env}; PyTorch's CPU capability "
                     f"{held.get('torch_cpu_capability') or '-'}; numpy's BLAS "
                     f"{blas or '-'}; practical peak (numpy matmul) GFLOP/s: {peaks}")
    lines += ["- each cell: median images/s; '% peak': lenet_fast's GFLOP/s over that "
              "path's practical peak at the row's threads; ratio: lenet_fast / PyTorch", "",
              "| mode | batch | threads | path | lenet_fast img/s | % peak | torch img/s | "
              "lenet_fast / torch |", "|---|---:|---:|---|---:|---:|---:|---:|"]
    for i, row in enumerate(first["rows"]):
        for p in paths:
            r = result["results"][p]["rows"][i]
            lf, tr = r["lenet_fast"], r.get("torch")
            ratio = tr and lf["images_per_s"]["median"] / tr["images_per_s"]["median"]
            lines.append(f"| {row['mode']} | {row['batch_size']} | {row['threads']} | {p} | "
                         f"{lf['images_per_s']['median']:,.0f} | "
                         f"{_pct(lf['share_of_practical_peak'])} | "
                         + (f"{tr['images_per_s']['median']:,.0f} | {ratio:.2f}x |"
                            if tr is not None else "- | - |"))
    lines += ["", f"wall time {result['wall_seconds']:.0f} s"]
    return "\n".join(lines)


def format_markdown(result: dict[str, Any]) -> str:
    """The result of `run` as markdown: a header, one table per mode, thread speedups
    (or `format_isa_markdown` for `run_isa_paths`'s result).

    Parameters
    ----------
    result : dict
        What `run` or `run_isa_paths` returns.

    Returns
    -------
    str
    """
    if result.get("command") == "bench-isa":
        return format_isa_markdown(result)
    s = result["settings"]
    lines = [f"## lenet-fast bench: {s['variant']}, C3 {s['c3']}", ""] + _markdown_header(result)
    for mode in s["modes"]:
        lines += _markdown_mode(result, mode)
    if result["speedups"]:
        lines += _markdown_speedups(result)
    lines += ["", f"wall time {result['wall_seconds']:.0f} s"]
    return "\n".join(lines)


def _markdown_header(result: dict[str, Any]) -> list[str]:
    """The bullet list of `format_markdown`: machine, versions, FLOPs, peaks, method."""
    s, m, peak = result["settings"], result["machine"], result["peak"]
    tor = result["torch"]
    f = result["flops_per_image"]
    lines = []
    cpu = m["cpu_model"] or "unknown CPU"
    clock = f" @ {m['cpu_mhz'] / 1000:.2f} GHz" if m["cpu_mhz"] else ""
    load = lambda v: "n/a" if v is None else f"{v[0]:.2f}"  # noqa: E731
    lines.append(f"- machine: {cpu}, {m['physical_cores']} core(s), {m['usable_cpus']} usable "
                 f"CPU(s){clock}; load average {load(m['loadavg'])} at start, "
                 f"{load(m.get('loadavg_end'))} at end")
    v = result["versions"]
    rt = result.get("runtimes", {})
    rt_versions = "".join(f", {name} {rt[name]['version'] or '-'}" for name in RUNTIMES
                          if rt.get(name, {}).get("available"))
    b = result["build"]
    lines.append(f"- versions: lenet_fast {v['lenet_fast']}, numpy {v['numpy']}, "
                 f"torch {v['torch'] or '-'}{rt_versions}, Python {v['python']}; OpenMP "
                 f"{'on' if b['openmp'] else 'off'}; kernel path {b.get('isa', '?')} "
                 f"(built: {', '.join(b.get('isa_built', []))}); build flags "
                 f"`{b.get('compile_flags', '')}`")
    lines.append(f"- data: {result['data']}")
    lines.append(f"- FLOPs per image (2 per multiply-accumulate; see lenet_fast.bench): "
                 f"inference {f['forward']:,}, training step {f['train']:,}")
    threads = s["threads"]
    practical = ", ".join(f"{t} thread(s) {peak['practical_gflops'][str(t)]:.1f}"
                          for t in threads)
    lines.append(f"- practical peak (best of numpy's float32 matmul, {MATMUL_SIZE} x "
                 f"{MATMUL_SIZE}, its BLAS on the row's threads), GFLOP/s: {practical}; "
                 "'% practical' is relative to it at the row's thread count")
    if all(peak["nominal_gflops"][str(t)] for t in threads):
        nominal = ", ".join(f"{t} thread(s) {peak['nominal_gflops'][str(t)]:.1f}" for t in threads)
        lines.append(f"- nominal peak (min(threads, cores) x GHz x {peak['flops_per_cycle']} "
                     f"FLOP/cycle), GFLOP/s: {nominal}; '% nominal' is relative to it")
    else:
        lines.append("- nominal peak: not available (no 'cpu MHz' in /proc/cpuinfo)")
    if tor["available"]:
        lines.append(f"- torch {v['torch']}: {tor['network']}; SGD(lr=0.01, momentum=0.9); "
                     f"inference under torch.inference_mode(); FLOPs per image: inference "
                     f"{tor['flops_per_image']['forward']:,}, training {tor['flops_per_image']['train']:,}")
        if not tor["same_network"]:
            lines.append(f"- NOTE: torch runs the modern network with a dense C3; lenet_fast runs "
                         f"{s['variant']} with C3 {s['c3']}, so the ratio compares different networks")
    else:
        lines.append(f"- torch: {tor['reason']}")
    for name in RUNTIMES:
        info = rt.get(name, {})
        if info.get("available"):
            lines.append(f"- {name} {info['version']}: lenet_fast's own ONNX export "
                         "(LeNet5.to_onnx: uint8 digits in, probabilities out), the row's "
                         "thread count, float32" + (" (INFERENCE_PRECISION_HINT f32)"
                                                   if name == "openvino" else "")
                         + "; inference rows only")
        elif info:
            lines.append(f"- {name}: {info['reason']}")
    lines.append("- inference: lenet_fast runs LeNet5.predict_proba on uint8 digits "
                 "(probabilities out), as the runtimes do; torch runs softmax(net(x)) on "
                 "preprocessed float32 images")
    lines.append(f"- each cell: median images/s over {s['repeats']} round(s) of ~{s['round_time']:g} s "
                 f"(min-max in parentheses)" + ("; lenet_fast and torch rounds interleaved, "
                                                "ratio = lenet_fast median / torch median"
                                                if tor["available"] else ""))
    other = m.get("other_cpus_at_start")
    lines.append("- 'other CPUs': CPUs used on average by other processes during the row "
                 "(/proc/stat busy time minus this process's CPU time)"
                 + ("" if other is None else f"; {other:.2f} just before the start"))
    contended = [r for r in result["rows"] if r.get("contended")]
    if contended:
        lines.append(f"- WARNING: * marks {len(contended)} row(s) during which other processes "
                     f"left fewer free cores than the row has threads (still so after "
                     f"{s['retries']} retries): not representative; re-run on a quiet machine")
    return lines


_MODE_TITLES = {"train": "Training (forward + backward + SGD-momentum update)",
                "infer": "Inference (forward only)"}


def _markdown_mode(result: dict[str, Any], mode: str) -> list[str]:
    """The table of one mode's rows (`format_markdown`)."""
    rows = [r for r in result["rows"] if r["mode"] == mode]
    peers = [name for name in PEERS if any(r.get(name) for r in rows)]
    head = ["batch", "threads", "lenet_fast img/s", "GFLOP/s", "% practical", "% nominal"]
    for name in peers:
        head += [f"{name} img/s", f"lenet_fast / {name}"]
    if any(r.get("ratio_lenet_fast_over_best_runtime") for r in rows):
        head.append("lenet_fast / best runtime")
    head.append("other CPUs")
    lines = ["", f"### {_MODE_TITLES[mode]}", "", "| " + " | ".join(head) + " |",
             "|" + "---:|" * len(head)]
    for r in rows:
        lf = r["lenet_fast"]
        cells = [str(r["batch_size"]), str(r["threads"]), format_ips(lf["images_per_s"]),
                 f"{lf['gflops']:.2f}", _pct(lf["share_of_practical_peak"]),
                 _pct(lf["share_of_nominal_peak"])]
        for name in peers:
            peer = r.get(name)
            ratio = r.get(f"ratio_lenet_fast_over_{name}")
            cells += [format_ips(peer["images_per_s"]) if peer else "-",
                      f"{ratio:.2f}x" if ratio else "-"]
        if "lenet_fast / best runtime" in head:
            best = r.get("ratio_lenet_fast_over_best_runtime")
            cells.append(f"{best:.2f}x" if best else "-")
        cells.append("-" if r.get("other_cpus") is None else
                     f"{r['other_cpus']:.2f}" + (" *" if r.get("contended") else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown_speedups(result: dict[str, Any]) -> list[str]:
    """The thread-scaling table (`format_markdown`)."""
    torch = result["torch"]["available"]
    head = ["mode", "batch", "T", "lenet_fast"] + (["torch"] if torch else [])
    lines = ["", "### Thread scaling (median images/s at T threads / at 1 thread)", "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for e in result["speedups"]:
        cells = [e["mode"], str(e["batch_size"]), str(e["threads"]), f"{e['lenet_fast']:.2f}x"]
        if torch:
            cells.append(f"{e['torch']:.2f}x")
        if e.get("contended"):
            cells[-1] += " *"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def stderr_progress(message: str) -> None:
    """Print a progress message to stderr (the default `progress` on a terminal).

    Parameters
    ----------
    message : str
        The message.
    """
    print(f"bench: {message}", file=sys.stderr, flush=True)
