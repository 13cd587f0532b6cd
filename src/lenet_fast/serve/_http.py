"""The HTTP layer of `lenet-fast serve` (`lenet_fast.serve`): uvicorn's protocol, with
the bounds uvicorn leaves out.

uvicorn cuts off a silent connection only after a complete answer (its keep-alive
timeout) and a slow body only if the application does; a new connection that sends
nothing, a request head that arrives one byte a second, a head of any size, a client
that never reads its answer and as many connections as there are descriptors were all
kept. `GuardedProtocol` (uvicorn's httptools protocol, or its h11 one without
httptools) adds, per connection:

- an idle timeout from the moment it opens, not only after an answer
  (`Limits.idle_timeout`; the connection is closed without a word);
- a head timeout: once the first byte of a request head has arrived, the whole head
  must within `Limits.header_timeout` seconds (408, then closed), however slowly the
  bytes come;
- a head size limit, counted as the bytes arrive, before the parser keeps them
  (`Limits.max_header_bytes`: 431, then closed);
- a write timeout: an answer of which the client takes nothing for
  `Limits.idle_timeout` seconds, or not all within `Limits.body_timeout` seconds of
  the first wait, is dropped with its connection; the service's large answers also
  give up after `Limits.body_timeout` seconds of sending, through the scope's `ABORT`
  call (the system's socket buffer, megabytes on loopback, hides a slow client from the
  writer). A connection dropped with bytes unsent is reset (``SO_LINGER`` 0): closed
  gracefully, asyncio would keep it, and the system would keep sending what it holds;
- a drain timeout: the rest of a body the service answered before reading it (413,
  415, 422, 429) is dropped as it comes, and must come within `Limits.body_timeout`;
- a cap on connections (`Limits.max_connections`): at the cap, a new connection
  closes the one that has been quiet the longest (no request in flight), or is
  answered 429 if every one has a request in flight;

and its errors (400, 408, 429, 431) are the service's JSON ``{"error": ...}``.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections import OrderedDict

from ._limits import Limits, default_max_connections

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - uvicorn without httptools
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base

#: The key, in an HTTP request's ASGI scope, of the call that resets its connection at
#: once (the service's large answers use it to give up on a client too slow to take them).
ABORT = "lenet_fast.abort"
_REASONS = {400: "Bad Request", 408: "Request Timeout", 429: "Too Many Requests",
            431: "Request Header Fields Too Large"}
_settings = {"limits": Limits(), "max_connections": None}


def configure(limits):
    """Set the limits of the connections this process serves (`GuardedProtocol` reads
    them when a connection opens): called with the served app's `Limits`.

    Parameters
    ----------
    limits : Limits
        The timeouts, head size and connection cap used.
    """
    _settings["limits"] = limits
    _settings["max_connections"] = limits.max_connections or default_max_connections()


def error_bytes(status, reason, headers=()):
    """A complete HTTP/1.1 answer ``{"error": reason}`` with `status`, closing the
    connection.

    Parameters
    ----------
    status : int
        The status (400, 408, 429 or 431).
    reason : str
        The one-line reason.
    headers : iterable of (str, str)
        More headers (``Retry-After``).

    Returns
    -------
    bytes
        The status line, headers and body.
    """
    body = json.dumps({"error": reason}).encode()
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", "content-type: application/json",
             f"content-length: {len(body)}", "connection: close",
             *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _head_end(buffer, start):
    """Index just past the blank line that ends a request head in `buffer` (searched
    from `start`), or None."""
    ends = [i + n for i, n in ((buffer.find(b"\r\n\r\n", start), 4), (buffer.find(b"\n\n", start), 2))
            if i >= 0]
    return min(ends) if ends else None


def reset(transport):
    """Drop a connection at once, with what the system still holds for the client (a TCP
    reset: ``SO_LINGER`` 0, then abort)."""
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, AttributeError):
        pass
    transport.abort()


def _quiet(server_state):
    """This server's connections with no request in flight, the longest quiet first."""
    quiet = getattr(server_state, "lenet_fast_quiet", None)
    if quiet is None:
        quiet = server_state.lenet_fast_quiet = OrderedDict()
    return quiet


def _mark_quiet(protocol):
    quiet = _quiet(protocol.server_state)
    quiet.pop(protocol, None)
    quiet[protocol] = time.monotonic()


class GuardedProtocol(_Base):
    """uvicorn's HTTP protocol with an idle timeout from the start, a head timeout, a
    head size limit, a write timeout, a cap on connections and JSON errors (see the
    module)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limits = _settings["limits"]
        self.header_timeout = limits.header_timeout
        self.body_timeout = limits.body_timeout
        self.max_header_bytes = limits.max_header_bytes
        self.max_connections = _settings["max_connections"] or default_max_connections()
        self.head_timer = None          # armed by the first byte of a head, until it completes
        self.head_bytes = 0
        self.head_tail = b""            # the last bytes of the head so far (its end may straddle)
        self.drain_timer = None         # the rest of a body answered early must come by then
        self.write_timer = None
        self.write_left = 0             # bytes of an answer still buffered at the last check
        self.write_since = None         # when this request's answer first had to wait
        self.write_cycle = None         # the request whose answer is watched
        self.write_taken = False        # whether the client took some of it since the last check

    # -- connections: opened, quiet, busy, lost
    def connection_made(self, transport):
        super().connection_made(transport)
        quiet = _quiet(self.server_state)
        if len(self.connections) > self.max_connections:
            if quiet:
                oldest, _ = quiet.popitem(last=False)
                oldest.drop()
            else:
                self.refuse(429, f"the server holds {self.max_connections:,} connections, each "
                                 "with a request in flight; retry in a moment",
                            [("retry-after", "1")])
                return
        _mark_quiet(self)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc):
        _quiet(self.server_state).pop(self, None)
        self.stop_head_timer()
        for timer in (self.write_timer, self.drain_timer):
            if timer is not None:
                timer.cancel()
        self.write_timer = self.drain_timer = None
        super().connection_lost(exc)

    def on_response_complete(self):
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is not None \
                and self.cycle.response_complete:
            _mark_quiet(self)
        if self.transport.get_write_buffer_size() and self.write_timer is None:
            self.watch_writing()             # the end of the answer waits for the client

    def drop(self):
        """Close the connection; reset it if bytes are still waiting for the client."""
        if self.transport.get_write_buffer_size():
            reset(self.transport)
        else:
            self.transport.close()

    def timeout_keep_alive_handler(self):
        if not self.transport.is_closing():
            self.drop()

    def busy(self):
        """Whether a request is in flight (its answer not complete)."""
        return self.cycle is not None and not self.cycle.response_complete

    # -- request heads: their time and size
    def data_received(self, data):
        before = self.cycle
        if before is None or not before.more_body:
            # these bytes begin or continue a request head
            if self.head_timer is None:
                self.head_bytes, self.head_tail = 0, b""
                self.head_timer = self.loop.call_later(self.header_timeout, self.head_timed_out)
            buffer = self.head_tail + data
            # blank lines before a request line are no end of a head
            start = len(buffer) - len(buffer.lstrip(b"\r\n")) if not self.head_bytes else 0
            end = _head_end(buffer, start)
            self.head_bytes += len(data) if end is None else max(0, end - len(self.head_tail))
            self.head_tail = buffer[-3:]
            if self.head_bytes > self.max_header_bytes:
                self.refuse(431, f"the request head is larger than the limit "
                                 f"({self.max_header_bytes:,} bytes)")
                return
        elif before.response_complete and self.drain_timer is None:
            # the rest of a body the service answered before reading it: dropped as it
            # comes, within the body timeout
            self.drain_timer = self.loop.call_later(self.body_timeout, self.drop)
        super().data_received(data)
        cycle = self.cycle
        if cycle is not before and cycle is not None:       # a head is complete
            self.stop_head_timer()
            _quiet(self.server_state).pop(self, None)
            self.write_since = None
            cycle.scope[ABORT] = lambda: reset(self.transport)
        if self.drain_timer is not None and (cycle is not before or not cycle.more_body):
            self.drain_timer.cancel()                        # the body has all come
            self.drain_timer = None
            if cycle is before and not self.transport.is_closing():
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def stop_head_timer(self):
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self):
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.busy():                 # a pipelined head behind a request in flight: later
            self.head_timer = self.loop.call_later(self.header_timeout, self.head_timed_out)
            return
        self.refuse(408, f"the request head did not arrive within {self.header_timeout:g} s")

    def refuse(self, status, reason, headers=()):
        """Answer `status` with ``{"error": reason}`` (unless an answer is under way) and
        close the connection."""
        self.stop_head_timer()
        _quiet(self.server_state).pop(self, None)
        if not self.transport.is_closing():
            if not self.busy():
                self.transport.write(error_bytes(status, reason, headers))
            self.drop()

    def send_400_response(self, msg):
        self.refuse(400, "invalid HTTP request: the request line or a header could not be parsed")

    # -- answers a client does not read
    def pause_writing(self):
        super().pause_writing()
        if self.write_timer is None:
            self.watch_writing()

    def resume_writing(self):
        super().resume_writing()
        self.write_taken = True          # the client took part of its answer

    def watch_writing(self):
        """Check in `Limits.idle_timeout` seconds that the client takes its answer."""
        if self.write_since is None:
            self.write_since = self.loop.time()
        self.write_cycle = self.cycle
        self.write_taken = False
        self.write_left = self.transport.get_write_buffer_size()
        self.write_timer = self.loop.call_later(self.timeout_keep_alive, self.check_writing)

    def check_writing(self):
        """Reset the connection if the client took nothing of its answer since the last
        check, or has not taken it all within the body timeout of its first wait; else
        check again until the answer is sent and taken."""
        self.write_timer = None
        left = self.transport.get_write_buffer_size()
        cycle = self.write_cycle
        sending = cycle is not None and cycle is self.cycle and not cycle.response_complete
        if not left and not sending:
            return
        stalled = left and not self.write_taken and left >= self.write_left
        if stalled or self.loop.time() - self.write_since > self.body_timeout:
            reset(self.transport)
        else:
            self.watch_writing()
