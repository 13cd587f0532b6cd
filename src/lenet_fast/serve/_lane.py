"""The lane of `lenet-fast serve`'s large requests (`lenet_fast.serve`): the work too
large for the event loop runs in a few worker threads, with a bounded queue.

A small request (a few digits, a small body, small pictures) is decoded and computed
on the event loop: about a millisecond. Anything larger (a body over
`lenet_fast.serve.INLINE_BYTES`, pictures over `lenet_fast.serve.INLINE_PIXELS`, more
than `lenet_fast.serve.INLINE_DIGITS` digits) takes a place in the lane first: at most
``threads`` large requests are worked on at once, at most ``queue`` more wait, and one
more is refused at once (429, ``Retry-After``). So the memory of large requests is
bounded (their bodies, and the working memory of ``threads`` of them), and the event
loop, which answers the small ones, never waits for them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from ._limits import BadRequest


class Lane:
    """Worker threads for large requests, with a bounded number of places.

    Parameters
    ----------
    threads : int
        Worker threads: large requests worked on at once.
    queue : int
        Large requests that may wait beside them.
    gauge : prometheus_client.Gauge or None
        Set to the places taken whenever that changes.
    """

    def __init__(self, threads, queue, gauge=None):
        self.threads = threads
        self.places = threads + queue
        self.taken = 0
        self.gauge = gauge
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="lenet-fast-large")

    def job(self):
        """A request's handle on the lane: it takes a place only if the request turns
        out large (`Job.need`).

        Returns
        -------
        Job
            Release it with `Job.close` when the request is answered.
        """
        return Job(self)


class Job:
    """One request's use of a `Lane`: holds at most one place, from `need` to `close`.

    Parameters
    ----------
    lane : Lane
        The lane.
    """

    def __init__(self, lane):
        self.lane = lane
        self.held = False
        self.running = 0
        self.closed = False

    def need(self):
        """Take a place in the lane if this request holds none yet.

        Raises
        ------
        BadRequest
            429 with ``Retry-After: 1`` when every place is taken.
        """
        if self.held:
            return
        lane = self.lane
        if lane.taken >= lane.places:
            raise BadRequest(429, f"the server is busy with {lane.places} large requests; "
                                  "retry in a moment", {"Retry-After": "1"})
        lane.taken += 1
        self.held = True
        if lane.gauge is not None:
            lane.gauge.set(lane.taken)

    async def run(self, work, large=True):
        """``work()``: in a worker thread of the lane if `large` (taking a place first),
        else here, on the event loop.

        Parameters
        ----------
        work : callable
            The work, without arguments.
        large : bool
            Whether the work is too large for the event loop.

        Returns
        -------
        object
            What ``work()`` returns.
        """
        if not large:
            return work()
        self.need()
        loop = asyncio.get_running_loop()
        self.running += 1
        done = self.lane.executor.submit(work)       # counted until the thread is done with it

        def finished(_):
            try:
                loop.call_soon_threadsafe(self._finished)
            except RuntimeError:                      # the loop is closed: nothing to give back
                pass
        done.add_done_callback(finished)
        return await asyncio.wrap_future(done)

    def _finished(self):
        self.running -= 1
        if self.closed and not self.running:
            self._release()

    def close(self):
        """Give the place back (once the work started in a thread is done: a thread's
        work cannot be stopped, so it keeps its place until it ends)."""
        self.closed = True
        if not self.running:
            self._release()

    def _release(self):
        if self.held:
            self.held = False
            self.lane.taken -= 1
            if self.lane.gauge is not None:
                self.lane.gauge.set(self.lane.taken)
