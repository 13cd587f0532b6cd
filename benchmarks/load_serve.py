"""Load test of ``lenet-fast serve`` on loopback: requests/s and latency by client count.

    python benchmarks/load_serve.py [--seconds 30] [--clients 1,16,64] [--workers 1] [--threads 1]

Starts ``lenet-fast serve`` (the pretrained modern model) in a child process on
127.0.0.1 and drives it with wrk (Debian: ``apt-get install wrk``), one connection per
client, each sending one request after another for --seconds:

- ``POST /v1/predict`` with one MNIST test digit as a PNG (a different digit per
  connection, from a seeded draw);
- ``GET /healthz``, the same server's trivial endpoint (a small constant JSON answer):
  the framework's own ceiling on this machine.

Then the throughput of large requests: 1,000 test digits per request, as multipart PNGs
and as one .npy array, sent one after another by one client (--batches requests each),
beside ``model.predict`` on the same digits in this process.

Then hostile clients (issue 26): the latency of one client's one-digit requests (one
after another, each on a new connection, for --seconds) alone, then while another client
sends the worst picture the limits allow again and again (4096 x 4096 16-bit RGBA, Paeth
filtered: the most decoding work in one picture), then also while a third holds 200 idle
connections (reopening each the server closes after --idle-timeout). Every run is
bounded in time (wrk's and the mix's --seconds) or count (--batches); the server is
stopped with SIGTERM at the end. Prints Markdown tables (the README's figures).

    python benchmarks/load_serve.py --hostile-only [--seconds 30]   # the last table only

Each attack of issue 26's tester, one at a time beside a prober client:
``benchmarks/attack_serve.py``.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_helpers import (IdleHolder, Server, digit_latencies, multipart, npy, png,  # noqa: E402
                           worst_png)

import lenet_fast  # noqa: E402
from lenet_fast.datasets import load_mnist  # noqa: E402

_LUA = """
local bodies = {}
local n = 0
local i = 0
init = function(args)
  local f = io.open(args[1], "rb")
  local data = f:read("*all")
  f:close()
  for chunk in string.gmatch(data, "([^\\n]+)") do
    n = n + 1
    bodies[n] = chunk:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  i = math.random(n)
end
request = function()
  i = i % n + 1
  return wrk.format("POST", "/v1/predict", {["Content-Type"] = "image/png"}, bodies[i])
end
"""


def _seconds(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(port, path, clients, seconds, script=None, bodies=None):
    """requests/s, p50 and p99 seconds, failed requests of one wrk run."""
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    if bodies:
        cmd += ["--", bodies]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _seconds(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _seconds(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = sum(int(g) for g in errors.groups()) if errors else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed += int(non2xx.group(1)) if non2xx else 0
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return rate, p50, p99, failed, total


def post(port, body, kind, check=True):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/v1/predict", body=body, headers={"Content-Type": kind})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if not check:
        return r.status
    assert r.status == 200, data[:200]
    return json.loads(data)


def hostile(port, digits, expected, seconds):
    """Rows (what, digit requests, p50, p99, max seconds, worst pictures answered and their
    mean seconds): the one-digit client alone, beside the worst pictures, beside them and
    200 idle connections."""
    worst = worst_png()
    rows = []
    for name, bomb, idle in [("alone", False, 0), ("+ worst pictures, one after another", True, 0),
                             ("+ worst pictures + 200 idle connections", True, 200)]:
        stop, times = threading.Event(), []

        def bomber():
            while not stop.is_set():
                t0 = time.perf_counter()
                status = post(port, worst, "image/png", check=False)
                times.append((status, time.perf_counter() - t0))

        threads = [threading.Thread(target=bomber)] if bomb else []
        with IdleHolder(port, idle) as holder:
            for t in threads:
                t.start()
            while idle and holder.opened < idle:
                time.sleep(0.1)
            if bomb:
                time.sleep(1.0)                   # the first worst picture under way
            lat = np.array(digit_latencies(port, digits, expected, seconds))
            stop.set()
            for t in threads:
                t.join(120)
        assert all(status == 200 for status, _ in times), times
        rows.append((name, len(lat), np.percentile(lat, 50), np.percentile(lat, 99), lat.max(),
                     len(times), np.mean([t for _, t in times]) if times else float("nan")))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="OpenMP threads per worker (default 1: wrk needs the other core)")
    parser.add_argument("--batches", type=int, default=10, help="1,000-digit requests per format")
    parser.add_argument("--hostile-only", action="store_true",
                        help="only the hostile clients' table (no wrk needed)")
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.hostile_only:
        sys.exit("needs wrk: apt-get install wrk")
    images, _ = load_mnist("test")
    rng = np.random.default_rng(0)
    model = lenet_fast.pretrained("modern")
    model.n_threads = args.threads
    server = Server("--threads", str(args.threads), workers=args.workers)
    rows, large, local = [], {}, None
    try:
        if not args.hostile_only:
            rows, large, local = throughput(server.port, images, model, rng, args)
        mix = hostile(server.port, images[:50], model.predict(images[:50]).tolist(), args.seconds)
    finally:
        code = server.stop()
    if not args.hostile_only:
        print(f"lenet-fast serve, {args.workers} worker(s), --threads {args.threads}; wrk -t1, "
              f"{args.seconds} s per row, loopback; SIGTERM exit status {code}\n")
        print("| clients | predict req/s | p50 ms | p99 ms | failed / requests | /healthz req/s | "
              "/healthz p50 ms | /healthz p99 ms | predict / healthz |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for clients, (rate, p50, p99, failed, total), (t_rate, t50, t99, _, _) in rows:
            print(f"| {clients} | {rate:,.0f} | {p50 * 1e3:.2f} | {p99 * 1e3:.2f} | {failed} / "
                  f"{total:,} | {t_rate:,.0f} | {t50 * 1e3:.2f} | {t99 * 1e3:.2f} | "
                  f"{rate / t_rate:.0%} |")
        print("\n| 1,000-digit requests (one client) | digits/s |")
        print("|---|---:|")
        for name, rate in large.items():
            print(f"| {name} | {rate:,.0f} |")
        print(f"| model.predict on the same uint8 digits, in process ({args.threads} thread(s)) | "
              f"{local:,.0f} |\n")
    print_hostile(mix, args, code)


def throughput(port, images, model, rng, args):
    """The wrk rows, the 1,000-digit requests' digits/s and model.predict's."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "post.lua")
        Path(script).write_text(_LUA)
        bodies = os.path.join(tmp, "bodies.txt")
        chosen = rng.choice(len(images), 256, replace=False)
        Path(bodies).write_text("\n".join(
            "".join(f"%{b:02x}" for b in png(images[i])) for i in chosen) + "\n")
        for clients in [int(c) for c in args.clients.split(",")]:
            trivial = wrk(port, "/healthz", clients, args.seconds)
            digit = wrk(port, "/v1/predict", clients, args.seconds, script, bodies)
            rows.append((clients, digit, trivial))
    digits = images[:1000]
    expected = model.predict(digits).tolist()
    large = {}
    for name, (body, kind) in {"multipart, 1,000 PNGs": multipart([png(d) for d in digits]),
                               ".npy, uint8 (1000, 28, 28)": (npy(digits), "application/x-npy")}.items():
        assert post(port, body, kind)["predictions"] == expected
        t0 = time.perf_counter()
        for _ in range(args.batches):
            post(port, body, kind)
        large[name] = args.batches * 1000 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(args.batches):
        model.predict(digits)
    return rows, large, args.batches * 1000 / (time.perf_counter() - t0)


def print_hostile(mix, args, code):
    print(f"Hostile clients: one-digit PNG requests, one after another on new connections, "
          f"{args.seconds} s per row; SIGTERM exit status {code}\n")
    print("| one-digit client | requests | p50 ms | p99 ms | max ms | worst pictures answered | "
          "worst picture s (mean) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, n, p50, p99, worst, pictures, seconds in mix:
        mean = f"{seconds:.2f}" if pictures else ""
        print(f"| {name} | {n:,} | {p50 * 1e3:.1f} | {p99 * 1e3:.1f} | {worst * 1e3:.0f} | "
              f"{pictures} | {mean} |")


if __name__ == "__main__":
    main()
