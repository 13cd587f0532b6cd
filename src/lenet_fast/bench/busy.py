"""Training beside a busy neighbour: 2 threads against 1, lenet_fast and PyTorch.

``lenet-fast bench --busy`` starts a child process that keeps one core busy (a Python
loop: a browser tab, an editor's indexer or a second job would do the same), then
times training steps of each library at 1 and at 2 threads in alternating rounds and
reports, per batch size, the 2-thread rate over the 1-thread rate. On a 2-core machine
a second thread can then only share the neighbour's core: a library whose threads
wait for each other at every layer (each OpenMP barrier waits for the descheduled
thread) runs slower with 2 threads than with 1; lenet_fast runs a whole training pass
in one parallel region over blocks of samples taken dynamically, so a descheduled
thread holds up only the block it is on.

The child is a separate program (``python -c "while True: pass"``), started with
`subprocess` (fork + exec, nothing of this process's OpenMP state is shared) and
stopped at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

from ._machine import machine_info
from ._markdown import format_ips
from ._peers import TorchRunner, import_torch
from ._runners import (
    LenetRunner,
    load_images,
    measure_row,
    pool_batches,
    unique_positive,
)

#: The neighbour: one core kept busy.
BUSY_CHILD = [sys.executable, "-c", "while True: pass"]


class BusyNeighbour:
    """A child process spinning on one core while the ``with`` block runs."""

    def __enter__(self):
        self.proc = subprocess.Popen(BUSY_CHILD, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)      # let it start spinning
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        return False


def run(*, batch_sizes: Sequence[int] = (64, 256), threads: int = 2, c3: str = "full",
        rounds: int = 7, round_time: float = 0.5, use_torch: bool = True,
        data_dir=None, busy: bool = True,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Training rate at `threads` threads over 1 thread, beside a busy neighbour.

    Parameters
    ----------
    batch_sizes : sequence of int
        One row each.
    threads : int
        The thread count compared with 1 (default 2).
    c3 : {"lecun", "full"}
        lenet_fast's C3 (PyTorch always runs the dense C3).
    rounds : int
        Alternating timed rounds per library and thread count; medians are reported.
    round_time : float
        Approximate seconds of one round.
    use_torch : bool
        Also time PyTorch when it can be imported.
    data_dir : path, optional
        MNIST folder (random images when absent).
    busy : bool
        Start the busy neighbour (False: the same measurement on a quiet machine).
    progress : callable, optional
        Called with a status line before each row.

    Returns
    -------
    dict
        JSON-ready: ``settings``, ``machine``, ``torch`` (availability) and ``rows``: per
        batch size and library, the images/s at 1 and at `threads` threads (median,
        min, max over the rounds) and ``ratio`` (median of `threads` over median of 1).
    """
    batch_sizes = unique_positive("batch_sizes", batch_sizes)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 2:
        raise ValueError(f"threads must be an integer >= 2, got {threads!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    say = progress or (lambda message: None)
    torch, torch_reason = (None, "disabled (--no-torch)")
    if use_torch:
        torch, torch_reason = import_torch()
    x, y, source = load_images(data_dir)
    result = {"settings": {"batch_sizes": batch_sizes, "threads": threads, "c3": c3,
                           "rounds": rounds, "round_time": round_time, "busy": busy,
                           "neighbour": " ".join(BUSY_CHILD[1:]) if busy else None},
              "machine": machine_info(), "data": source,
              "torch": {"available": torch is not None,
                        "reason": torch_reason, "version": getattr(torch, "__version__", None)},
              "rows": []}
    neighbour = BusyNeighbour() if busy else contextlib.nullcontext()
    with neighbour:
        for bs in batch_sizes:
            say(f"batch {bs}: 1 vs {threads} threads" + (" beside a busy core" if busy else ""))
            batches = pool_batches(x, y, bs)
            runners = {}
            for t in (1, threads):
                runners[("lenet_fast", t)] = LenetRunner("modern", c3, "train", batches, t)
                if torch is not None:
                    runners[("torch", t)] = TorchRunner(torch, "train", batches, t)
            measured = measure_row(runners, bs, rounds, round_time)
            row = {"batch_size": bs}
            for lib in ("lenet_fast", "torch"):
                if (lib, 1) not in measured:
                    continue
                one, many = (measured[(lib, t)]["images_per_s"] for t in (1, threads))
                row[lib] = {"1": one, str(threads): many,
                            "ratio": many["median"] / one["median"]}
            result["rows"].append(row)
    return result


def format_markdown(result: dict[str, Any]) -> str:
    """The result as a markdown table (one row per batch size and library).

    Parameters
    ----------
    result : dict
        The busy-core run's result, as `run` returns it.

    Returns
    -------
    str
        The title line, then the table.
    """
    s = result["settings"]
    t = s["threads"]
    where = "beside a process keeping one core busy" if s["busy"] else "on a quiet machine"
    lines = [f"**Training, {t} threads against 1, {where}** (modern preset; lenet_fast C3 "
             f"{s['c3']}, PyTorch dense; median of {s['rounds']} alternating rounds, min-max):",
             "", f"| batch | library | 1 thread img/s | {t} threads img/s | {t} threads / 1 |",
             "|---:|---|---:|---:|---:|"]
    for row in result["rows"]:
        for lib in ("lenet_fast", "torch"):
            if lib in row:
                r = row[lib]
                lines.append(f"| {row['batch_size']} | {lib} | {format_ips(r['1'])} | "
                             f"{format_ips(r[str(t)])} | {r['ratio']:.2f}x |")
    if not result["torch"]["available"]:
        lines += ["", f"PyTorch not timed: {result['torch']['reason']}"]
    return "\n".join(lines)

