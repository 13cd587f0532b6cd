"""What `lenet-fast serve` (`lenet_fast.serve`) lets a request and a connection hold and
take (`Limits`), and the refusal of a request (`BadRequest`): shared by the service's
modules, documented with `lenet_fast.serve`."""

from __future__ import annotations

import resource
from dataclasses import dataclass

from .._io.pictures import MAX_ASPECT, MAX_PIXELS, MAX_SIDE

#: Descriptors kept free of connections (the listening socket, logs, the metrics' files of
#: --workers, Pillow and numpy files): `Limits.max_connections` defaults to the open-file
#: limit less these.
SPARE_DESCRIPTORS = 64
#: The default `Limits.max_connections` is at most this (about 10 KB of memory each).
MAX_CONNECTIONS = 4096


def default_max_connections():
    """The default `Limits.max_connections`: the process's open-file limit (``ulimit -n``)
    less `SPARE_DESCRIPTORS`, at most `MAX_CONNECTIONS`, at least 16.

    Returns
    -------
    int
        The number of connections the service keeps open at most.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - SPARE_DESCRIPTORS))


@dataclass(frozen=True)
class Limits:
    """What one request may hold, and what a connection may take, in time, memory and
    descriptors (the docs' safety page says what each bounds).

    Parameters
    ----------
    max_body_bytes : int, default 16 MiB (16,777,216)
        Largest body in bytes, as its Content-Length announces it and as it arrives
        (413).
    max_images : int, default 10,000
        Most digits in one JSON or .npy body (413) and most files in one multipart body
        (422).
    max_pixels : int, default 1 << 24
        Most pixels (width x height) of one PNG or JPEG picture, refused from its header
        before it is decoded (422; `lenet_fast.pictures.decode_picture`).
    max_side : int, default 8192
        Longest side of a picture, in pixels (422, from its header).
    max_aspect : float, default 20
        Largest ratio of a picture's longer side to its shorter one (422, from its header).
    max_request_pixels : int, default 1 << 26
        Most pixels of all the pictures of one request together (422, from their headers):
        with `max_pixels`, what bounds the time one request may take.
    body_timeout : float, default 10.0
        Seconds within which the whole body must arrive once its head has (408).
    header_timeout : float, default 10.0
        Seconds within which a request's head (request line and headers) must arrive once
        its first byte has (408, then the connection is closed).
    idle_timeout : float, default 5.0
        Seconds a connection may stay silent with no request in flight (a new one, or
        between requests) before it is closed; also the time a client may take no byte
        of an answer before it is cut off.
    max_header_bytes : int, default 16 KiB (16,384)
        Largest request head (request line and headers) in bytes (431, then the
        connection is closed).
    max_connections : int or None, default None
        Most connections open at once; at the limit, a new connection closes the one
        that has been quiet the longest (no request in flight), or is itself answered
        429 if every one has a request in flight. None: `default_max_connections` (the
        open-file limit less 64, at most 4,096).
    large_threads : int, default 1
        Worker threads for the requests too large for the event loop (their decoding,
        their pass and their answer): at most this many run at once.
    large_queue : int, default 2
        Large requests that may wait for a worker thread (their body is read meanwhile);
        one more is answered 429 with ``Retry-After``.
    """
    max_body_bytes: int = 16 * 2**20
    max_images: int = 10_000
    max_pixels: int = MAX_PIXELS
    max_side: int = MAX_SIDE
    max_aspect: float = MAX_ASPECT
    max_request_pixels: int = 1 << 26
    body_timeout: float = 10.0
    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    max_header_bytes: int = 16 * 2**10
    max_connections: int | None = None
    large_threads: int = 1
    large_queue: int = 2


class BadRequest(Exception):
    """A request refused with `status` and a one-line `reason`.

    Parameters
    ----------
    status : int
        The HTTP status of the answer (400, 404, 405, 408, 413, 415, 422, 429 or 431).
    reason : str
        One line saying what is wrong; the answer's body is ``{"error": reason}``.
    headers : dict or None
        Headers added to the answer (``Retry-After`` of a 429, ``Allow`` of a 405).
    """

    def __init__(self, status, reason, headers=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})
