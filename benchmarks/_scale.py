"""BatchRunner at scale (the worker's ``scale`` mode): a closed loop of C requests in flight
against a slow server, measured in a window placed by the run itself.

Definitions (the same code measures both clients):

* start: just before the first request is issued (the client is already open).
* ramp-up: the time from the start to the C-th completion, minus the server's latency; what
  it takes to get C requests in flight (connecting C sockets, sending C bodies) beyond the
  one latency the first wave must wait anyway.
* window: opens half a latency after the C-th completion and lasts ``cycles`` latencies. In a
  closed loop against a constant latency the completions come in waves one latency apart;
  edges half-way between waves (and a whole number of cycles long) count every wave in full.
* run: from the start to the last completion (the in-flight requests drained); ramp-up share
  = ramp-up / run. A run whose share is 5 % or more is flagged.
* Little's law %: window req/s / (C / latency), the closed loop's ideal.
* peak RSS: the high-water mark of this (fresh) worker process at the end (``VmHWM``; see
  `maxrss_kb` for why not ``ru_maxrss``, which is recorded beside).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._clients import open_client
from benchmarks._common import API_KEY, MODEL, PROMPT
from benchmarks._window import Window, gather_all

__all__ = ["RAMP_SHARE_LIMIT", "maxrss_kb", "raise_nofile_limit", "ru_maxrss_kb", "run_scale"]

RAMP_SHARE_LIMIT = 0.05
_NEVER = 1e12  # a window edge not placed yet


def ru_maxrss_kb() -> int:
    """``ru_maxrss`` in KB (bytes on macOS, KB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def maxrss_kb() -> int:
    """This process's peak RSS in KB: ``VmHWM`` where /proc has it, else ``ru_maxrss``.

    On Linux ``ru_maxrss`` survives ``execve``: a worker forked from the harness starts with
    the harness's own peak (about 45 MB) as its floor, whatever the worker itself uses.
    ``VmHWM`` is the high-water mark of this process image only.
    """
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return ru_maxrss_kb()


def raise_nofile_limit() -> tuple[int, int] | None:
    """Raise RLIMIT_NOFILE's soft limit to the hard one; return (soft, hard) as now set."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return resource.getrlimit(resource.RLIMIT_NOFILE)
    return None


class _ScaleWindow(Window):
    """A `Window` whose edges are placed at the C-th completion (see the module docstring)."""

    def __init__(self, *, concurrency: int, latency_s: float, cycles: int) -> None:
        super().__init__(warmup=_NEVER, duration=0.0, on_window=None)
        self.concurrency = concurrency
        self.latency_s = latency_s
        self.cycles = cycles
        self.c_th: float | None = None  # perf_counter of the C-th completion

    def done(self, chunks: int = 1) -> None:
        self.requests += 1
        self.chunks += chunks
        if self.c_th is None and self.requests >= self.concurrency:
            self.c_th = now = time.perf_counter()
            self.warm_end = now + self.latency_s / 2
            self.deadline = self.warm_end + self.cycles * self.latency_s
        self.tick()


async def run_scale(
    client: str, url: str, *, concurrency: int, latency_s: float, cycles: int
) -> dict[str, Any]:
    """Run ``client`` (``reka_async_batch`` or ``aiohttp_raw``) as a closed loop of C requests."""
    if client not in ("reka_async_batch", "aiohttp_raw"):
        raise ValueError(f"scale mode runs reka_async_batch or aiohttp_raw, not {client!r}")

    async def ticker(w: _ScaleWindow) -> None:
        while w.last is None:
            await asyncio.sleep(0.02)
            w.tick()

    async def timed(drive_coro: Any, w: _ScaleWindow) -> None:
        timer = asyncio.ensure_future(ticker(w))
        try:
            await drive_coro
        finally:
            timer.cancel()

    if client == "reka_async_batch":
        from reka_async import AsyncClient, BatchRunner

        async with AsyncClient(
            api_key=API_KEY, base_url=url, max_connections=max(concurrency, 1024)
        ) as rclient:
            # As the CLI runs it: the collector tuned at C >= 256 (opt-in since issue 25).
            runner = BatchRunner(rclient, concurrency=concurrency, model=MODEL, gc_tuning=True)
            window = w = _ScaleWindow(concurrency=concurrency, latency_s=latency_s, cycles=cycles)

            def prompts() -> Iterator[str]:
                while w.open():
                    yield PROMPT

            async def drive_batch() -> None:
                async with runner.stream(prompts()) as results:
                    async for result in results:
                        if result.error is not None:
                            raise result.error
                        w.done()

            await timed(drive_batch(), w)
            end = time.perf_counter()
    else:
        async with open_client(client, url, concurrency, stream=False) as call:
            window = w = _ScaleWindow(concurrency=concurrency, latency_s=latency_s, cycles=cycles)

            async def worker() -> None:
                while w.open():
                    w.done(await call())

            async def drive_raw() -> None:
                await gather_all([worker() for _ in range(concurrency)])

            await timed(drive_raw(), w)
            end = time.perf_counter()

    m = window.result()
    ideal = concurrency / latency_s
    run_s = end - window.start.wall
    ramp = None if window.c_th is None else window.c_th - window.start.wall - latency_s
    share = ramp / run_s if ramp is not None and run_s > 0 else None
    data = m.as_dict()
    data.update(
        {
            "latency_ms": latency_s * 1000.0,
            "cycles": cycles,
            "ideal_req_per_s": ideal,
            "pct_of_little": 100.0 * data["req_per_s"] / ideal if m.basis == "window" else None,
            "ramp_up_s": ramp,
            "run_s": run_s,
            "ramp_up_share": share,
            "ramp_up_flag": share is None or share >= RAMP_SHARE_LIMIT,
            "peak_rss_kb": maxrss_kb(),
            "ru_maxrss_kb": ru_maxrss_kb(),
            "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        }
    )
    return data
