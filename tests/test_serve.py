"""``lenet-fast serve`` over real HTTP: formats, the 10,000 test digits, bad input, slow
and truncated clients, metrics, SIGTERM with requests in flight, several workers."""

import io
import json
import signal
import socket
import threading
import time

import numpy as np
import pytest

import lenet_fast
from serve_helpers import (Server, get, multipart, needs_serve, npy, png, post, request)

needs_serve()


@pytest.fixture(scope="module")
def server():
    s = Server("--body-timeout", "2")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def model():
    return lenet_fast.pretrained("modern")


def predict(port, body, kind, query=""):
    status, answer = post(port, body, kind, query)
    assert status == 200, answer
    return answer


def test_every_format_gives_model_predict(server, model, mnist_test):
    images, _ = mnist_test
    digits = images[:20]
    expected = model.predict(digits).tolist()
    assert predict(server.port, png(digits[0]), "image/png")["predictions"] == expected[:1]
    body, kind = multipart([png(d) for d in digits])
    assert predict(server.port, body, kind)["predictions"] == expected
    assert predict(server.port, json.dumps({"images": digits.tolist()}),
                   "application/json")["predictions"] == expected
    answer = predict(server.port, npy(digits), "application/x-npy")
    assert answer["predictions"] == expected
    assert np.array_equal(np.array(answer["probabilities"], np.float32),
                          model.predict_proba(digits))
    assert predict(server.port, npy(digits[3]), "application/x-npy")["predictions"] == expected[3:4]


def test_jpeg_is_read(server, model, mnist_test):
    from PIL import Image
    images, _ = mnist_test
    out = io.BytesIO()
    Image.fromarray(images[0]).save(out, "JPEG", quality=95)
    decoded = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("L"))
    answer = predict(server.port, out.getvalue(), "image/jpeg", "?images=true")
    assert answer["images"][0] == decoded.tolist()
    assert answer["predictions"] == model.predict(decoded).tolist()


def test_the_10000_test_digits_as_pngs_give_model_predict(server, model, mnist_test):
    """All the MNIST test digits through the API as PNG files, 1,000 per multipart
    request: exactly `model.predict`'s digits and `predict_proba`'s probabilities."""
    images, _ = mnist_test
    predictions, probabilities = [], []
    for start in range(0, len(images), 1000):
        body, kind = multipart([png(d) for d in images[start:start + 1000]])
        answer = predict(server.port, body, kind)
        predictions += answer["predictions"]
        probabilities += answer["probabilities"]
    assert len(predictions) == 10_000
    assert np.array_equal(predictions, model.predict(images))
    assert np.array_equal(np.array(probabilities, np.float32), model.predict_proba(images))


def test_pictures_are_normalized_and_dark_ink_inverted(server, model, mnist_test):
    """A test digit drawn small, off-centre, dark on white in a 280x280 picture gives the
    digit the model sees normalized (centred, ink at 255); 28x28 ones only on request."""
    from lenet_fast.pictures import mnist_digit
    images, labels = mnist_test
    page = np.full((280, 280), 255, np.uint8)
    page[20:48, 200:228] = 255 - images[3]               # 28x28 in the top right corner
    answer = predict(server.port, png(page), "image/png", "?images=true")
    seen = np.array(answer["images"][0], np.uint8)
    assert np.array_equal(seen, mnist_digit(page))
    mass = seen.astype(float)
    rows, cols = np.indices(seen.shape)
    assert abs((mass * rows).sum() / mass.sum() - 14) <= 0.5
    assert abs((mass * cols).sum() / mass.sum() - 14) <= 0.5
    assert answer["predictions"] == model.predict(seen).tolist() == [labels[3]]
    # 28x28: as it is, unless ?normalize=true
    small = np.zeros((28, 28), np.uint8)
    small[:14, :14] = np.kron(images[3][::2, ::2], np.ones((1, 1), np.uint8))
    as_is = predict(server.port, png(small), "image/png", "?images=true")["images"][0]
    assert as_is == small.tolist()
    normalized = predict(server.port, png(small), "image/png", "?images=true&normalize=true")
    assert normalized["images"][0] == mnist_digit(small, True).tolist()
    on_request = predict(server.port, npy(small), "application/x-npy", "?normalize=true&images=true")
    assert on_request["images"] == normalized["images"]


def test_hand_drawn_strokes_of_each_digit(server):
    """The page's kind of picture (black strokes on white, 280x280) of each digit."""
    from digit_strokes import rasterize
    body, kind = multipart([png(rasterize(d)) for d in range(10)])
    assert predict(server.port, body, kind)["predictions"] == list(range(10))


def test_c1_feature_maps(server, model, mnist_test):
    images, _ = mnist_test
    answer = predict(server.port, npy(images[:2]), "application/x-npy", "?features=c1")
    c1 = np.array(answer["c1"])
    assert c1.shape == (2, 6, 28, 28)
    np.testing.assert_allclose(c1, model.activations(images[:2])["c1"], atol=1e-3)


def _huge_png_header(side):
    """A PNG whose header announces side x side pixels (with a little data)."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def _bad_requests(digit_png):
    """(what, method, path, body, content type, expected status, words in the reason)."""
    grey = np.zeros((28, 28), np.uint8)
    return [
        ("not an image", "POST", "/v1/predict", b"hello, digits", "image/png", 422, "not a PNG or JPEG"),
        ("truncated png", "POST", "/v1/predict", digit_png[:len(digit_png) // 2], "image/png", 422,
         "truncated"),
        ("large header", "POST", "/v1/predict", _huge_png_header(5000), "image/png", 422,
         "refused before decoding"),
        ("huge header", "POST", "/v1/predict", _huge_png_header(100_000), "image/png", 422,
         "refused before decoding"),
        ("empty body", "POST", "/v1/predict", b"", "image/png", 422, "empty"),
        ("text", "POST", "/v1/predict", b"7", "text/plain", 415, "unsupported Content-Type"),
        ("no type", "POST", "/v1/predict", b"7", "", 415, "unsupported Content-Type"),
        ("bad json", "POST", "/v1/predict", b"{images:", "application/json", 422, "not valid JSON"),
        ("json object", "POST", "/v1/predict", b"[1, 2]", "application/json", 422, '"images"'),
        ("json shape", "POST", "/v1/predict", json.dumps({"images": [[1, 2, 3]]}), "application/json",
         422, "the image has 1 rows, not 28"),
        ("json ragged", "POST", "/v1/predict", json.dumps({"images": [[[1, 2], [3]]]}),
         "application/json", 422, "image 0 has 2 rows, not 28"),
        ("json short row", "POST", "/v1/predict",
         json.dumps({"images": [grey.tolist(), grey.tolist()[:27] + [[0] * 27]]}),
         "application/json", 422, "row 27 of image 1 has 27 values, not 28"),
        ("json flat", "POST", "/v1/predict", json.dumps({"images": [0] * 784}), "application/json",
         422, "image 0 is a number, not a list of 28 rows"),
        ("json strings", "POST", "/v1/predict", json.dumps({"images": [[["a"] * 28] * 28]}),
         "application/json", 422, "arrays of numbers"),
        ("json NaN", "POST", "/v1/predict", '{"images": [[[NaN' + ", 0" * 27 + "]" + (", [" + ", ".join(["0"] * 28) + "]") * 27 + "]]}",
         "application/json", 422, "finite"),
        ("json range", "POST", "/v1/predict", json.dumps({"images": [(grey.astype(int) + 300).tolist()]}),
         "application/json", 422, "0..255"),
        ("json negative", "POST", "/v1/predict", json.dumps({"images": [(grey.astype(int) - 1).tolist()]}),
         "application/json", 422, "0..255"),
        ("json none", "POST", "/v1/predict", json.dumps({"images": []}), "application/json", 422,
         "no images"),
        ("npy dtype", "POST", "/v1/predict", npy(grey.astype(np.float32)), "application/x-npy", 422,
         "uint8"),
        ("npy shape", "POST", "/v1/predict", npy(np.zeros((2, 32, 32), np.uint8)), "application/x-npy",
         422, "shape"),
        ("npy truncated", "POST", "/v1/predict", npy(np.zeros((4, 28, 28), np.uint8))[:-100],
         "application/x-npy", 422, "truncated"),
        ("npy garbage", "POST", "/v1/predict", b"\x93NUMPY garbage", "application/x-npy", 422,
         "not a .npy"),
        ("npy objects", "POST", "/v1/predict", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', "
         b"'fortran_order': False, 'shape': (1, 28, 28), }" + b" " * 40 + b"\n", "application/x-npy",
         422, ""),
        ("multipart no boundary", "POST", "/v1/predict", b"--x\r\n", "multipart/form-data", 422,
         "multipart"),
        ("multipart field", "POST", "/v1/predict",
         b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n7\r\n--b--\r\n',
         "multipart/form-data; boundary=b", 422, "not a file"),
        ("multipart bad file", "POST", "/v1/predict",
         b'--b\r\nContent-Disposition: form-data; name="a"; filename="x.png"\r\n\r\nnope\r\n--b--\r\n',
         "multipart/form-data; boundary=b", 422, "x.png"),
        ("multipart empty", "POST", "/v1/predict", b"--b--\r\n", "multipart/form-data; boundary=b",
         422, "no files"),
        ("bad flag", "POST", "/v1/predict?normalize=maybe", digit_png, "image/png", 422, "normalize"),
        ("bad features", "POST", "/v1/predict?features=c3", digit_png, "image/png", 422, "features"),
        ("get predict", "GET", "/v1/predict", None, "", 405, ""),
        ("unknown path", "GET", "/v2/nothing", None, "", 404, ""),
    ]


def test_bad_requests_get_a_4xx_with_a_one_line_reason_and_the_server_goes_on(server, model, mnist_test):
    images, _ = mnist_test
    good = png(images[0])
    cases = _bad_requests(good)
    for what, method, path, body, kind, status, words in cases:
        headers = {"Content-Type": kind} if kind else {}
        got, answer = request(server.port, method, path, body, headers)
        assert got == status, (what, answer)
        if got in (413, 415, 422, 408, 400):
            reason = answer["error"]
            assert "\n" not in reason and words in reason, (what, reason)
    # 1,000 more of them, then the server still answers correctly
    for i in range(1000):
        what, method, path, body, kind, status, _ = cases[i % len(cases)]
        got, _ = request(server.port, method, path, body, {"Content-Type": kind} if kind else {})
        assert got == status, what
    assert predict(server.port, good, "image/png")["predictions"] == model.predict(images[:1]).tolist()


def test_body_over_the_limit_is_413_before_it_is_read():
    s = Server("--max-body-mb", "0.01", "--max-images", "3")
    try:
        big = b"\0" * 20_000
        status, answer = post(s.port, big, "image/png")
        assert status == 413 and "larger than the limit" in answer["error"]
        # announced small, sent chunked: counted while read
        conn = socket.create_connection(("127.0.0.1", s.port))
        conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(30):
            conn.sendall(b"3e8\r\n" + b"\0" * 1000 + b"\r\n")
        conn.sendall(b"0\r\n\r\n")
        assert b" 413 " in conn.recv(4096).split(b"\r\n")[0] + b" "
        conn.close()
        status, answer = post(s.port, npy(np.zeros((4, 28, 28), np.uint8)), "application/x-npy")
        assert status == 413 and "at most 3" in answer["error"]
    finally:
        assert s.stop() == 0


def test_slow_and_truncated_clients_do_not_hold_the_others(server, model, mnist_test):
    images, _ = mnist_test
    good = png(images[1])
    expected = model.predict(images[1:2]).tolist()
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                 b"Content-Length: 1000\r\n\r\n" + good[:10])
    truncated = socket.create_connection(("127.0.0.1", server.port))
    truncated.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                      b"Content-Length: 5000\r\n\r\n" + good)
    truncated.close()                       # gone before its body is complete
    start = time.monotonic()
    for _ in range(20):
        assert predict(server.port, good, "image/png")["predictions"] == expected
    assert time.monotonic() - start < 1.5   # far less than the slow client's 2 s allowance
    slow.settimeout(10)
    first_line = slow.recv(4096).split(b"\r\n")[0]
    slow.close()
    assert b"408" in first_line             # the body did not arrive within --body-timeout 2
    assert predict(server.port, good, "image/png")["predictions"] == expected


def test_a_large_request_does_not_hold_small_ones(server, model, mnist_test):
    """10,000 digits in one request are decoded and run in a worker thread: a one-digit
    request sent meanwhile is answered first."""
    images, _ = mnist_test
    body, kind = multipart([png(d) for d in images])
    finished = {}

    def large():
        answer = predict(server.port, body, kind)
        finished["large"] = time.monotonic()
        finished["n"] = len(answer["predictions"])

    thread = threading.Thread(target=large)
    thread.start()
    time.sleep(0.1)
    assert predict(server.port, png(images[5]), "image/png")["predictions"] == \
        model.predict(images[5:6]).tolist()
    small = time.monotonic()
    thread.join(60)
    assert finished["n"] == 10_000 and small < finished["large"]


def test_healthz_metrics_and_openapi(server):
    status, health = get(server.port, "/healthz")
    assert status == 200 and health["status"] == "ok" and health["model"] == "pretrained modern"
    status, text = get(server.port, "/metrics")
    assert status == 200
    for name in ("lenet_fast_requests_total", "lenet_fast_request_errors_total",
                 "lenet_fast_request_seconds_bucket", "lenet_fast_digits_per_pass_bucket"):
        assert name in text

    def count(text, line_start):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(line_start))

    ok = count(text, 'lenet_fast_requests_total{path="/v1/predict",status="200"}')
    bad = count(text, 'lenet_fast_request_errors_total{path="/v1/predict",status="415"}')
    post(server.port, b"x", "text/plain")
    post(server.port, npy(np.zeros((5, 28, 28), np.uint8)), "application/x-npy")
    _, text = get(server.port, "/metrics")
    assert count(text, 'lenet_fast_requests_total{path="/v1/predict",status="200"}') == ok + 1
    assert count(text, 'lenet_fast_request_errors_total{path="/v1/predict",status="415"}') == bad + 1
    status, spec = get(server.port, "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    assert set(spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]) >= {
        "image/png", "image/jpeg", "multipart/form-data", "application/json", "application/x-npy"}


def test_the_page_is_self_contained(server):
    status, page = get(server.port, "/")
    assert status == 200 and "<canvas" in page and "/v1/predict" in page
    for external in ("http://", "https://", "<script src", "<link", "@import", "url("):
        assert external not in page, external
    for event in ("pointerdown", "pointermove", "pointerup"):
        assert event in page


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(model, mnist_test):
    images, _ = mnist_test
    s = Server()
    body = npy(images[:500])
    results = []

    def client():
        # sends half the body, waits for the SIGTERM, sends the rest
        conn = socket.create_connection(("127.0.0.1", s.port))
        conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-npy\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
        signalled.wait(10)
        time.sleep(0.5)
        conn.sendall(body[len(body) // 2:])
        data = b""
        conn.settimeout(30)
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            data += chunk
        conn.close()
        results.append(data)

    signalled = threading.Event()
    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)                           # the three requests are in flight
    s.proc.send_signal(signal.SIGTERM)
    signalled.set()
    assert s.stop(timeout=30) == 0
    for t in threads:
        t.join(30)
    expected = model.predict(images[:500]).tolist()
    assert len(results) == 3
    for data in results:
        head, payload = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(payload)["predictions"] == expected


def _length(data):
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def test_workers_are_spawned_processes_that_share_the_work(model, mnist_test):
    """--workers 2: uvicorn's multi-process mode (spawned workers); both answer, the
    metrics add up over them, SIGTERM ends all with status 0."""
    images, _ = mnist_test
    s = Server(workers=2)
    try:
        pids = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.add(get(s.port, "/healthz")[1]["pid"])
        assert len(pids) == 2 and s.proc.pid not in pids
        for _ in range(10):
            assert predict(s.port, png(images[2]), "image/png")["predictions"] == \
                model.predict(images[2:3]).tolist()
        _, text = get(s.port, "/metrics")
        done = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith('lenet_fast_requests_total{path="/v1/predict",status="200"}'))
        assert done == 10
    finally:
        assert s.stop() == 0
