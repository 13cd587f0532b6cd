"""Running ``lenet-fast serve`` in a child process for the tests, and talking to it.

The server is a fresh interpreter (subprocess), never a fork of the test process, which
has run the OpenMP kernels.
"""

import http.client
import io
import json
import os
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib

import numpy as np
import pytest

SERVE_MODULES = ("starlette", "uvicorn", "prometheus_client", "python_multipart", "PIL")


def needs_serve():
    """Skip unless the serve extra is installed."""
    for name in SERVE_MODULES:
        pytest.importorskip(name, reason='the serve extra is not installed: pip install ".[serve]"')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m lenet_fast serve ARGS`` on 127.0.0.1; `port` once it answers.

    `open_files`: the server's limit on open descriptors (``ulimit -n``), if given.
    """

    def __init__(self, *args, workers=1, timeout=60, open_files=None):
        self.port = free_port() if workers > 1 else 0
        cmd = [sys.executable, "-m", "lenet_fast", "serve", "--port", str(self.port),
               "--log-level", "warning", "--workers", str(workers), *args]

        def limit_open_files():     # the server's ulimit -n (in the child, before exec)
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True,
                                     preexec_fn=limit_open_files if open_files else None)
        deadline = time.monotonic() + timeout
        if workers == 1:
            line = ""
            while "listening on port" not in line:
                ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
                if ready:
                    line = self.proc.stdout.readline()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.fail("did not start")
            self.port = int(line.rsplit(" ", 1)[1])
        while True:
            try:
                if get(self.port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.fail("did not answer /healthz")
            time.sleep(0.2)

    def fail(self, what):
        self.proc.kill()
        out, err = self.proc.communicate()
        pytest.fail(f"lenet-fast serve {what}: {out[-2000:]} {err[-2000:]}")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Send `sig`; the exit status (the server is killed if it takes over `timeout` s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the server did not exit within {timeout} s of signal {sig}")
        self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


def request(port, method, path, body=None, headers=None, timeout=60):
    """(status, parsed JSON or text) of one request on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        kind = r.getheader("content-type", "")
        return r.status, json.loads(data) if kind.startswith("application/json") else data.decode()
    finally:
        conn.close()


def get(port, path):
    return request(port, "GET", path)


def post(port, body, content_type, query=""):
    return request(port, "POST", "/v1/predict" + query, body, {"Content-Type": content_type})


def png(grey):
    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(np.asarray(grey, np.uint8)).save(out, "PNG")
    return out.getvalue()


def blank_png(width, height, mode="1"):
    """A PNG of `width` x `height` blank pixels (a 1-bit one of 8,388,608 x 1 is 1,096 bytes)."""
    from PIL import Image
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, "PNG")
    return out.getvalue()


def multipart(files):
    """(body, content type) of a multipart/form-data body holding `files` (bytes each)."""
    boundary = uuid.uuid4().hex
    parts = []
    for i, data in enumerate(files):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="{i}.png"\r\nContent-Type: image/png\r\n\r\n'.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def npy(array):
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def memory(pid):
    """(resident, peak resident) memory of process `pid` in bytes (Linux /proc)."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) * 1024
    return values["VmRSS"], values["VmHWM"]


def raw_answer(sock, timeout=30):
    """(status, headers dict, body bytes) of one HTTP answer read from `sock`, or
    (None, {}, b"") if the server closed the connection without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None, {}, b""
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(":", 1) for line in lines[1:] if ":" in line)}
        length = int(headers.get("content-length", 0))
        body = bytearray(rest)
        while len(body) < length:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            body += chunk
    except (ConnectionResetError, BrokenPipeError):
        return (None, {}, b"") if not data else (int(data.split()[1]), {}, b"")
    return int(lines[0].split()[1]), headers, bytes(body)


def worst_png():
    """The most work `lenet-fast serve`'s limits allow in one picture: 4096 x 4096 pixels
    (16 Mpixel), 16-bit RGBA (8 bytes a pixel to inflate: 128 MB), every row
    Paeth-filtered (the costliest filter to undo), in a body of a few hundred KB."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    side = 4096
    row = b"\4" + bytes(range(256)) * (side * 8 // 256)
    z = zlib.compressobj()
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


class IdleHolder:
    """Holds `n` connections to `port` open and silent (in a thread, as a context
    manager), opening a new one for each the server closes; `opened` counts them."""

    def __init__(self, port, n):
        self.port, self.n, self.stop, self.opened = port, n, threading.Event(), 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        sel = selectors.DefaultSelector()
        try:
            while not self.stop.is_set():
                while len(sel.get_map()) < self.n and not self.stop.is_set():
                    try:
                        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    except OSError:
                        time.sleep(0.05)
                        continue
                    s.setblocking(False)
                    sel.register(s, selectors.EVENT_READ)
                    self.opened += 1
                for key, _ in sel.select(0.05):
                    try:
                        data = key.fileobj.recv(100)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def digit_latencies(port, digits, expected, seconds):
    """Send one-digit PNGs one after another for `seconds`, each on a new connection: the
    latencies in seconds; every answer must be the digit `expected` says."""
    latencies, end, i = [], time.monotonic() + seconds, 0
    while time.monotonic() < end:
        start = time.monotonic()
        status, answer = post(port, png(digits[i % len(digits)]), "image/png")
        latencies.append(time.monotonic() - start)
        assert status == 200 and answer["predictions"] == [expected[i % len(digits)]], answer
        i += 1
    return latencies
