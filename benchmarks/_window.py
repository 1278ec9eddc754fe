"""The measurement window of a worker run: counters and clocks read at its two edges.

The window opens ``warmup`` seconds after the clients start (connections are open by then)
and closes at the deadline; requests, chunks, wall time and this process's CPU time
(``time.process_time()``, every thread of this process, nothing of the server) are read at
both edges. Requests still in flight at the deadline finish outside the window.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Driver", "Measurement", "Snapshot", "Window", "WindowHook", "gather_all", "measure"]


@dataclass(frozen=True)
class Snapshot:
    requests: int
    chunks: int
    wall: float
    cpu: float


@dataclass
class Measurement:
    requests: int
    chunks: int
    wall_s: float
    cpu_s: float
    drained_requests: int  # completed after the window closed (not counted)
    #: "window" normally; "whole run" when no request completed inside the window (a client
    #: so slow, or an event loop so blocked, that the window saw nothing).
    basis: str = "window"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        req = max(self.requests, 1)
        data["req_per_s"] = self.requests / self.wall_s if self.wall_s > 0 else 0.0
        data["cpu_us_per_req"] = self.cpu_s * 1e6 / req
        data["wall_us_per_req"] = self.wall_s * 1e6 / req
        if self.chunks:
            data["chunks_per_s"] = self.chunks / self.wall_s if self.wall_s > 0 else 0.0
            data["cpu_us_per_chunk"] = self.cpu_s * 1e6 / self.chunks
        return data


WindowHook = Callable[[bool], None]


class Window:
    """Counts completions and reads the counters, wall and CPU clocks at the window's edges.

    An edge is read by whichever notices it first: a completion (``done``) or a timer
    (``tick``). Completions matter when the event loop is too busy for timers to fire on time
    (a client that blocks the loop for seconds would otherwise get a window of zero length);
    the timer matters when completions are sparse (a slow server). An edge is never read at
    the same moment as the other one, so the window cannot be empty by construction.
    """

    def __init__(self, *, warmup: float, duration: float, on_window: WindowHook | None) -> None:
        self.requests = 0
        self.chunks = 0
        self.start = self._snap()
        self.warm_end = self.start.wall + warmup
        self.deadline = self.warm_end + duration
        self.first: Snapshot | None = None
        self.last: Snapshot | None = None
        self._on_window = on_window

    def _snap(self) -> Snapshot:
        return Snapshot(self.requests, self.chunks, time.perf_counter(), time.process_time())

    def open(self) -> bool:
        """True until the deadline: whether callers should start another request."""
        return time.perf_counter() < self.deadline

    def done(self, chunks: int = 1) -> None:
        """Record one completed request (with its stream chunks)."""
        self.requests += 1
        self.chunks += chunks
        self.tick()

    def tick(self) -> None:
        """Read an edge when its time has come."""
        if self.last is not None:
            return
        now = time.perf_counter()
        if self.first is None:
            if now >= self.warm_end:
                self.first = self._snap()
                if self._on_window is not None:
                    self._on_window(True)
            return
        if now >= self.deadline:
            if self._on_window is not None:
                self._on_window(False)
            self.last = self._snap()

    def result(self) -> Measurement:
        """The measurement, once the driver has finished (in-flight requests drained)."""
        end = self._snap()
        if self._on_window is not None and self.first is not None and self.last is None:
            self._on_window(False)
        first = self.first or self.start
        last = self.last or end
        if last.requests == first.requests:
            first, last, basis = self.start, end, "whole run"
        else:
            basis = "window"
        return Measurement(
            requests=last.requests - first.requests,
            chunks=last.chunks - first.chunks,
            wall_s=last.wall - first.wall,
            cpu_s=last.cpu - first.cpu,
            drained_requests=end.requests - last.requests,
            basis=basis,
        )


# --------------------------------------------------------------------------- async drivers

Driver = Callable[[Window], Awaitable[None]]


async def measure(
    drive: Driver, *, warmup: float, duration: float, on_window: WindowHook | None = None
) -> Measurement:
    """Run ``drive(window)`` and measure the window [start + warmup, start + warmup + duration].

    ``on_window(True)`` is called as the window opens and ``on_window(False)`` as it closes
    (the profiler uses it to see only the steady state).
    """
    gc.collect()
    window = Window(warmup=warmup, duration=duration, on_window=on_window)

    async def ticker() -> None:
        for edge in (window.warm_end, window.deadline):
            delay = edge - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            window.tick()
            await asyncio.sleep(0)  # two edges noticed at once: the second on a later tick

    timer = asyncio.ensure_future(ticker())
    try:
        await drive(window)
    finally:
        timer.cancel()
    return window.result()


async def gather_all(coros: Sequence[Awaitable[None]]) -> None:
    """Run the coroutines as tasks; on the first error cancel the rest, then re-raise."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
