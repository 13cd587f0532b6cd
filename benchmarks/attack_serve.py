"""Attack ``lenet-fast serve`` on loopback, as issue 26's tester did (Linux).

    python benchmarks/attack_serve.py [--ulimit N] [--list] [ATTACK ...]

Starts the service (default options; ``--ulimit N``: its ``ulimit -n``) in a child
process, then runs each attack (all, or those named; its body made beforehand) while a
prober client in a process of its own sends one-digit PNGs one after another, each answer
checked against the model. For each attack
one row: what the attacker got, how long it took, the prober's slowest request and how
many it sent, the prober's failures, the server's peak resident memory over its idle size
(its peak is reset before each attack through ``/proc/PID/clear_refs``, which needs root
or the server's owner) and its open descriptors afterwards. Prints a Markdown table; the
server is stopped with SIGTERM at the end (its exit status is printed). About 90 s.
"""

import argparse
import io
import json
import multiprocessing
import os
import socket
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_helpers import (Server, blank_png, memory, multipart, npy, png, post,  # noqa: E402
                           raw_answer, worst_png)

import lenet_fast  # noqa: E402
from lenet_fast.datasets import load_mnist  # noqa: E402

MB = 2**20


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


class Prober:
    """Sends one-digit PNGs one after another until stopped, in a process of its own (so the
    attacker's own work in this process cannot hold it up): the latencies and the failures
    (an error, or a digit other than the model's)."""

    def __init__(self, port, digits, expected):
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop, self.results = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(target=_probe, daemon=True,
                                   args=(port, digits, expected, self.ready, self.stop, self.results))
        self.latencies, self.failures = [], []

    def start(self):
        self.process.start()
        if not self.ready.wait(60):
            raise RuntimeError("the prober did not start")

    def finish(self):
        self.stop.set()
        self.latencies, self.failures = self.results.get(timeout=60)
        self.process.join(60)


def _probe(port, digits, expected, ready, stop, results):
    bodies = [png(d) for d in digits]
    latencies, failures = [], []
    i = 0
    while not stop.is_set():
        k = i % len(digits)
        start = time.monotonic()
        try:
            status, answer = post(port, bodies[k], "image/png")
            ok = status == 200 and answer["predictions"] == [expected[k]]
        except (OSError, ValueError) as exc:
            ok, answer = False, repr(exc)
        latencies.append(time.monotonic() - start)
        if not ok:
            failures.append(str(answer)[:80])
        i += 1
        ready.set()
        time.sleep(0.02)
    results.put((latencies, failures))


def _count(counts, key):
    counts[key] = counts.get(key, 0) + 1


# ----------------------------------------------------------------------------- connections
def slowloris(port, n=300, seconds=14):
    """`n` connections each sending one header byte a second."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    for s in socks:
        s.setblocking(False)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    start, got, cut = time.monotonic(), {}, {}
    for i in range(len(head)):
        if time.monotonic() - start > seconds or len(cut) == n:
            break
        for k, s in enumerate(socks):
            if k in cut:
                continue
            try:
                s.send(head[i:i + 1])
                answer = s.recv(4096)
                _count(got, answer.split(b" ")[1].decode() if answer else "closed")
                cut[k] = time.monotonic() - start
            except BlockingIOError:
                pass
            except OSError:
                _count(got, "reset")
                cut[k] = time.monotonic() - start
        time.sleep(1.0)
    for s in socks:
        s.close()
    t = sorted(cut.values())
    return (f"{n} connections, a byte a second: {got}, cut after {t[0]:.1f}-{t[-1]:.1f} s"
            if t else f"none cut in {seconds} s")


def idle_flood(port, n, seconds=8):
    """`n` connections opened at once, then silent."""
    socks, refused = [], 0
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            refused += 1
    time.sleep(seconds)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            closed += s.recv(10) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    return f"{n} idle sockets ({refused} refused): {closed} closed by the server within {seconds} s"


def _head_answer(port, head):
    """The status answered to `head`, sent while the answer is read."""
    s = socket.create_connection(("127.0.0.1", port))
    out = []
    reader = threading.Thread(target=lambda: out.append(raw_answer(s)))
    reader.start()
    try:
        s.sendall(head)
    except OSError:
        pass
    reader.join(60)
    s.close()
    return out[0][0] if out else None


def big_header(port):
    start = time.monotonic()
    status = _head_answer(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (16 * MB)
                          + b"\r\n\r\n")
    return f"16 MB header: {status} after {time.monotonic() - start:.2f} s"


def many_headers(port, n=100_000):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(n))
    status = _head_answer(port, head + b"\r\n")
    return f"{n:,} headers: {status}"


def slow_readers(port, digits, n=10, seconds=25):
    """`n` clients asking for 10,000 digits with ?images=true (21 MB answers), reading none."""
    body = npy(digits)
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /v1/predict?images=true HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/x-npy\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                  + body)
        socks.append(s)
    time.sleep(seconds)
    states = {}
    for s in socks:
        s.setblocking(False)
        try:
            while s.recv(1 << 20):
                pass
            _count(states, "closed")
        except BlockingIOError:
            _count(states, "open")
        except OSError:
            _count(states, "reset")
        s.close()
    return f"{n} clients not reading 21 MB answers: after {seconds} s {states}"


def pipelined(port, digit, label, n=200):
    """`n` one-digit requests written at once on one connection."""
    p = png(digit)
    request = (b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
               b"Content-Length: " + str(len(p)).encode() + b"\r\n\r\n" + p)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request * n)
    reader, right = s.makefile("rb"), 0
    for _ in range(n):
        status, length = int(reader.readline().split()[1]), 0
        for line in iter(reader.readline, b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        right += status == 200 and json.loads(reader.read(length))["predictions"] == [label]
    s.close()
    return f"{n} pipelined one-digit requests: {right} right"


def lane_full(port, k=12):
    """`k` 10,000-digit .npy requests at once."""
    body = npy(np.zeros((10_000, 28, 28), np.uint8))
    statuses = {}
    threads = [threading.Thread(target=lambda: _count(statuses, post(port, body, "application/x-npy")[0]))
               for _ in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return f"{k} 10,000-digit .npy requests at once: {statuses}"


def expect_continue(port):
    status = _head_answer(port, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                b"Content-Length: 999999999\r\nExpect: 100-continue\r\n\r\n")
    return f"Expect: 100-continue, 1 GB announced: {status}"


# ----------------------------------------------------------------------------- bodies
def png_idat_bomb():
    """A 28x28 PNG whose data would inflate to 1 GB."""
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(b"\0" * MB) for _ in range(1024)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def png_many_chunks(digit):
    """A one-digit PNG with 16 MB of empty text chunks (1.1 million) before its data."""
    small = png(digit)
    return small[:33] + _chunk(b"tEXt", b"a\0b") * ((16 * MB - 4096) // 15) + small[33:]


def jpeg_big(progressive):
    """A 4096x4096 colour JPEG (a smooth gradient)."""
    a = np.tile(np.linspace(0, 255, 4096, dtype=np.uint8), (4096, 1))
    out = io.BytesIO()
    Image.fromarray(np.stack([a, a.T, a], 2)).save(out, "JPEG", quality=90, progressive=progressive)
    return out.getvalue()


def jpeg_scans(digit, scans=5000):
    """A progressive JPEG whose last scan is repeated `scans` times."""
    out = io.BytesIO()
    Image.fromarray(digit).resize((280, 280)).save(out, "JPEG", progressive=True)
    data = out.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * scans + b"\xff\xd9"


def png_16_bit(digit):
    out = io.BytesIO()
    Image.fromarray(digit.astype(np.uint16) * 257).save(out, "PNG")
    return out.getvalue()


def json_bombs(images):
    """Name -> a call making the JSON body."""
    zeros = "," + ",".join(["0"] * 27)
    rest = ("[" + ",".join(["0"] * 28) + "],") * 26 + "[" + ",".join(["0"] * 28) + "]"
    return {
        "JSON: 5 million empty arrays": lambda: '{"images": [' + ",".join(["[]"] * 5_000_000) + "]}",
        "JSON: 4 million floats": lambda: '{"images": [[[' + ",".join(["1.5"] * 4_000_000) + "]]]}",
        "JSON: 1 million levels of nesting": lambda: "[" * 1_000_000 + "]" * 1_000_000,
        "JSON: a 16 MB string": lambda: '{"images": [], "x": "' + "a" * (16 * MB - 40) + '"}',
        "JSON: 1e999999999": lambda: '{"images": [[[1e999999999' + zeros + "]," + rest + "]]}",
        "JSON: a 4,000-digit float": lambda: ('{"images": [[[0.' + "1" * 4000 + zeros + "]," + rest
                                              + "]]}"),
        "JSON: 10,000 test digits (18 MiB: over the limit)": lambda: ('{"images": '
                                                     + json.dumps(images.tolist()).replace(" ", "")
                                                     + "}"),
    }


def _send(port, body, kind):
    """The call that sends the body made beforehand (not while the prober runs)."""
    return lambda: _timed(port, body, kind)


def _timed(port, body, kind):
    start = time.monotonic()
    try:
        status, answer = post(port, body, kind)
    except OSError as exc:
        return f"{exc!r} ({time.monotonic() - start:.2f} s)"
    reason = answer.get("error", "") if isinstance(answer, dict) else ""
    return f"{status} {reason[:70]} ({time.monotonic() - start:.2f} s)"


def attacks(port, images, labels, ulimit):
    """Name -> a call that prepares the attack (makes its body: some take seconds, and the
    prober is not running yet) and returns the call running it, which returns what the
    attacker got."""
    def ready(run):
        return lambda: run

    def body(make):
        return lambda: _send(port, *make())

    return {
        "slowloris": ready(lambda: slowloris(port)),
        "idle flood": ready(lambda: idle_flood(port, 1100 if ulimit else 3000)),
        "16 MB header": ready(lambda: big_header(port)),
        "100,000 headers": ready(lambda: many_headers(port)),
        "the issue's 8,388,608 x 1 PNG": body(lambda: (blank_png(8_388_608, 1), "image/png")),
        "worst PNG: 4096x4096 16-bit RGBA, Paeth": body(lambda: (worst_png(), "image/png")),
        "4096x4096 colour JPEG": body(lambda: (jpeg_big(False), "image/jpeg")),
        "4096x4096 progressive JPEG": body(lambda: (jpeg_big(True), "image/jpeg")),
        "JPEG of 5,000 scans": body(lambda: (jpeg_scans(images[0]), "image/jpeg")),
        "PNG inflating to 1 GB": body(lambda: (png_idat_bomb(), "image/png")),
        "PNG of 1.1 million empty chunks": body(lambda: (png_many_chunks(images[0]), "image/png")),
        "16-bit grey PNG of test digit 18": body(lambda: (png_16_bit(images[18]), "image/png")),
        "multipart: 400 pictures of 16 Mpixel": body(lambda: multipart([blank_png(4096, 4096)] * 400)),
        "multipart: 10,000 digits": body(lambda: multipart([png(images[0])] * 10_000)),
        **{name: body(lambda make=make: (make(), "application/json"))
           for name, make in json_bombs(images).items()},
        "slow readers": ready(lambda: slow_readers(port, images)),
        "pipelined": ready(lambda: pipelined(port, images[3], int(labels[3]))),
        "lane full": ready(lambda: lane_full(port)),
        "expect 100-continue": ready(lambda: expect_continue(port)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ulimit", type=int, help="the server's ulimit -n")
    parser.add_argument("--list", action="store_true", help="list the attacks")
    parser.add_argument("names", nargs="*", metavar="ATTACK")
    args = parser.parse_args()
    images, labels = load_mnist("test")
    expected = lenet_fast.pretrained("modern").predict(images[:50]).tolist()
    server = Server(open_files=args.ulimit)
    pid, port = server.proc.pid, server.port
    try:
        table = attacks(port, images, labels, args.ulimit)
        if args.list:
            print("\n".join(table))
            return
        post(port, png(images[0]), "image/png")
        time.sleep(1)
        idle, _ = memory(pid)
        print(f"server: idle {idle / MB:.0f} MB, {len(os.listdir(f'/proc/{pid}/fd'))} descriptors, "
              f"ulimit -n {args.ulimit or 'unchanged'}\n")
        print("| attack | what the attacker got | s | prober's slowest s (requests) | prober failures "
              "| peak over idle MB | descriptors after |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name in args.names or table:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")                           # reset the peak resident size
            run = table[name]()                        # its body made before the prober starts
            prober = Prober(port, images[:50], expected)
            prober.start()
            time.sleep(0.3)
            start = time.monotonic()
            result = run()
            seconds = time.monotonic() - start
            time.sleep(0.5)
            prober.finish()
            _, peak = memory(pid)
            print(f"| {name} | {result} | {seconds:.1f} | {max(prober.latencies):.3f} "
                  f"({len(prober.latencies)}) | {len(prober.failures)} {prober.failures[:1] or ''} | "
                  f"{(peak - idle) / MB:.0f} | {len(os.listdir(f'/proc/{pid}/fd'))} |", flush=True)
        resident, _ = memory(pid)
        print(f"\nafter all: resident {resident / MB:.0f} MB (idle {idle / MB:.0f} MB)")
    finally:
        print(f"SIGTERM: exit status {server.stop()}")


if __name__ == "__main__":
    main()
