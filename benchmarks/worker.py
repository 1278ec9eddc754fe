"""Measure one client in this process and print one JSON line: the benchmark's unit of work.

    python -m benchmarks.worker --client reka_async --url http://127.0.0.1:PORT/v1 \\
        --mode chat --concurrency 64 --duration 10 --warmup 1 [--cpu 1]

Modes:

* ``chat``: ``concurrency`` worker coroutines each send non-streaming requests in a loop until
  the deadline (``reka_async_batch`` instead feeds ``BatchRunner.stream()`` a generator that
  stops at the deadline). Counted: requests completed inside the measurement window.
* ``stream``: the same loop, each call one whole stream; chunks are counted too.
* ``sync``: ``reka_async_sync`` calls ``reka_async.Client.chat.create`` sequentially from
  plain synchronous code (``reka_async`` with ``--concurrency 1`` is its async twin).
* ``rss``: ``BatchRunner.stream()`` over ``--items`` lazily generated prompts, results
  discarded; reports ``ru_maxrss`` at the end.
* ``pair``: ``--client`` and ``--baseline`` in this one process, alternating every ``--slice``
  seconds (the order flipping each round) until each has had ``--duration`` seconds; reports
  both and their ratio. On a shared machine whose speed drifts over seconds, slices this short
  see the same machine, so the ratio is far steadier than one of medians of separate runs.
* ``sync_pair``: the same for ``reka_async.Client`` (sync facade) against the async client,
  both making sequential calls (C=1).

The measurement window opens ``warmup`` seconds after the clients start (connections are
open by then) and closes at the deadline; requests, chunks, wall time and this process's CPU
time (``time.process_time()``, every thread of this process, nothing of the server) are
read at both edges (see `Window`). Requests still in flight at the deadline finish outside
the window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._clients import Call, ClientUnavailable, open_client
from benchmarks._common import API_KEY, MODEL, PROMPT, pin_self

MODES = ("chat", "stream", "sync", "rss", "pair", "sync_pair")


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


async def _measure(
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


async def _gather_all(coros: Sequence[Awaitable[None]]) -> None:
    """Run the coroutines as tasks; on the first error cancel the rest, then re-raise."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def run_loop_client(
    name: str,
    url: str,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    stream: bool,
    on_window: WindowHook | None = None,
) -> Measurement:
    """``concurrency`` coroutines calling the client in a loop until the deadline."""
    async with open_client(name, url, concurrency, stream=stream) as call:

        async def drive(window: Window) -> None:
            async def worker() -> None:
                while window.open():
                    window.done(await call())

            await _gather_all([worker() for _ in range(concurrency)])

        return await _measure(drive, warmup=warmup, duration=duration, on_window=on_window)


async def run_batch_client(
    url: str, *, concurrency: int, duration: float, warmup: float
) -> Measurement:
    """``BatchRunner.stream()`` over a generator that stops yielding at the deadline."""
    from reka_async import AsyncClient, BatchRunner

    async with AsyncClient(
        api_key=API_KEY, base_url=url, max_connections=max(concurrency, 1024)
    ) as client:
        runner = BatchRunner(client, concurrency=concurrency, model=MODEL)

        async def drive(window: Window) -> None:
            def prompts() -> Iterator[str]:
                while window.open():
                    yield PROMPT

            async with runner.stream(prompts()) as results:
                async for result in results:
                    if result.error is not None:
                        raise result.error
                    window.done()

        return await _measure(drive, warmup=warmup, duration=duration)


# --------------------------------------------------------------------------- sync facade


def _import_sync_client() -> Any:
    try:
        from reka_async import Client
    except ImportError as exc:  # the facade is newer than the rest of the package
        raise ClientUnavailable(
            f"the sync facade reka_async.Client is not available ({exc})"
        ) from exc
    return Client


def run_sync_client(url: str, *, duration: float, warmup: float) -> Measurement:
    """Sequential ``reka_async.Client.chat.create`` calls from synchronous code."""
    client_cls = _import_sync_client()
    client = client_cls(api_key=API_KEY, base_url=url)
    messages = [{"role": "user", "content": PROMPT}]
    try:
        gc.collect()
        window = Window(warmup=warmup, duration=duration, on_window=None)
        window.tick()
        while window.open():
            client.chat.create(messages=messages, model=MODEL)
            window.done()
        return window.result()
    finally:
        client.close()


# --------------------------------------------------------------------------- paired runs


class Tally:
    """Requests, wall and CPU time summed over one client's slices of a paired run."""

    def __init__(self) -> None:
        self.requests = 0
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self.slices = 0

    def add(self, requests: int, wall_s: float, cpu_s: float) -> None:
        self.requests += requests
        self.wall_s += wall_s
        self.cpu_s += cpu_s
        self.slices += 1

    def as_dict(self) -> dict[str, Any]:
        req = max(self.requests, 1)
        return {
            "requests": self.requests,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "slices": self.slices,
            "req_per_s": self.requests / self.wall_s if self.wall_s > 0 else 0.0,
            "cpu_us_per_req": self.cpu_s * 1e6 / req,
            "wall_us_per_req": self.wall_s * 1e6 / req,
        }


def _pair_result(names: Sequence[str], tallies: Sequence[Tally]) -> dict[str, Any]:
    (a, b), (ta, tb) = names, tallies
    da, db = ta.as_dict(), tb.as_dict()
    return {
        "pair": {a: da, b: db},
        "ratio_req_per_s": da["req_per_s"] / db["req_per_s"] if db["req_per_s"] else None,
        "ratio_cpu_per_req": da["cpu_us_per_req"] / db["cpu_us_per_req"]
        if db["cpu_us_per_req"]
        else None,
        "ratio_wall_per_req": da["wall_us_per_req"] / db["wall_us_per_req"]
        if db["wall_us_per_req"]
        else None,
    }


def _rounds(duration: float, slice_s: float) -> int:
    return max(2, round(duration / slice_s))


async def run_pair(
    names: Sequence[str],
    url: str,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    slice_s: float,
) -> dict[str, Any]:
    """Alternate two clients in one event loop, ``slice_s`` seconds at a time."""
    async with contextlib.AsyncExitStack() as stack:
        calls = [
            await stack.enter_async_context(open_client(n, url, concurrency, stream=False))
            for n in names
        ]
        tallies = [Tally(), Tally()]

        async def run_slice(call: Call, seconds: float) -> tuple[int, float, float]:
            done = 0
            stop = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    await call()
                    done += 1

            t0, c0 = time.perf_counter(), time.process_time()
            await _gather_all([worker() for _ in range(concurrency)])
            return done, time.perf_counter() - t0, time.process_time() - c0

        for call in calls:  # warm-up: connections open, caches warm, for both
            await run_slice(call, warmup / 2)
        gc.collect()
        for r in range(_rounds(duration, slice_s)):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for i in order:
                tallies[i].add(*await run_slice(calls[i], slice_s))
        return _pair_result(names, tallies)


def run_sync_pair(url: str, *, duration: float, warmup: float, slice_s: float) -> dict[str, Any]:
    """Alternate the sync facade and the async client, sequential calls, one process."""
    from reka_async import AsyncClient

    client_cls = _import_sync_client()
    messages = [{"role": "user", "content": PROMPT}]
    loop = asyncio.new_event_loop()
    aclient = AsyncClient(api_key=API_KEY, base_url=url)
    sclient = client_cls(api_key=API_KEY, base_url=url)

    async def async_slice(stop: float) -> int:
        done = 0
        while time.perf_counter() < stop:
            await aclient.chat.create(messages=messages, model=MODEL)
            done += 1
        return done

    def sync_slice(stop: float) -> int:
        done = 0
        while time.perf_counter() < stop:
            sclient.chat.create(messages=messages, model=MODEL)
            done += 1
        return done

    def one(i: int, seconds: float) -> tuple[int, float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        stop = t0 + seconds
        done = sync_slice(stop) if i == 0 else loop.run_until_complete(async_slice(stop))
        return done, time.perf_counter() - t0, time.process_time() - c0

    try:
        tallies = [Tally(), Tally()]
        one(0, warmup / 2)
        one(1, warmup / 2)
        gc.collect()
        for r in range(_rounds(duration, slice_s)):
            for i in (0, 1) if r % 2 == 0 else (1, 0):
                tallies[i].add(*one(i, slice_s))
        return _pair_result(("reka_async_sync", "reka_async"), tallies)
    finally:
        sclient.close()
        loop.run_until_complete(aclient.aclose())
        loop.close()


# --------------------------------------------------------------------------- peak RSS


def _maxrss_kb() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KB on Linux


def _current_rss_kb() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


async def run_rss(url: str, *, items: int, concurrency: int) -> dict[str, Any]:
    """Drive ``BatchRunner.stream()`` over ``items`` generated prompts; report the peak RSS."""
    from reka_async import AsyncClient, BatchRunner

    samples: list[int] = []
    step = max(items // 10, 1)

    def prompts() -> Iterator[str]:
        for i in range(items):
            yield f"Prompt number {i}: write one short sentence."

    ok = failed = 0
    start_wall = time.perf_counter()
    start_cpu = time.process_time()
    async with AsyncClient(
        api_key=API_KEY, base_url=url, max_connections=max(concurrency, 1024)
    ) as client:
        runner = BatchRunner(client, concurrency=concurrency, model=MODEL)
        baseline_kb = _maxrss_kb()
        async with runner.stream(prompts()) as results:
            async for result in results:
                if result.ok:
                    ok += 1
                else:
                    failed += 1
                if (ok + failed) % step == 0:
                    rss = _current_rss_kb()
                    if rss is not None:
                        samples.append(rss)
    wall = time.perf_counter() - start_wall
    return {
        "items": items,
        "ok": ok,
        "failed": failed,
        "wall_s": wall,
        "cpu_s": time.process_time() - start_cpu,
        "req_per_s": (ok + failed) / wall if wall > 0 else 0.0,
        "baseline_maxrss_kb": baseline_kb,
        "peak_rss_kb": _maxrss_kb(),
        "rss_samples_kb": samples,
    }


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.worker", description="Measure one client; print one JSON line."
    )
    parser.add_argument("--client", required=True)
    parser.add_argument("--url", required=True, help="the mock server's base URL (…/v1)")
    parser.add_argument("--mode", choices=MODES, default="chat")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--items", type=int, default=100_000, help="prompts (rss mode)")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--baseline", default="aiohttp_raw", help="the other client (pair mode)")
    parser.add_argument("--slice", type=float, default=0.5, help="seconds per slice (pair modes)")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the requested measurement and return its JSON-able result."""
    if args.mode == "rss":
        return asyncio.run(run_rss(args.url, items=args.items, concurrency=args.concurrency))
    if args.mode == "pair":
        return asyncio.run(
            run_pair(
                (args.client, args.baseline),
                args.url,
                concurrency=args.concurrency,
                duration=args.duration,
                warmup=args.warmup,
                slice_s=args.slice,
            )
        )
    if args.mode == "sync_pair":
        return run_sync_pair(
            args.url, duration=args.duration, warmup=args.warmup, slice_s=args.slice
        )
    if args.mode == "sync" and args.client == "reka_async_sync":
        m = run_sync_client(args.url, duration=args.duration, warmup=args.warmup)
    elif args.client == "reka_async_batch":
        if args.mode != "chat":
            raise ValueError("reka_async_batch only runs in chat mode")
        m = asyncio.run(
            run_batch_client(
                args.url, concurrency=args.concurrency, duration=args.duration, warmup=args.warmup
            )
        )
    else:
        m = asyncio.run(
            run_loop_client(
                args.client,
                args.url,
                concurrency=args.concurrency,
                duration=args.duration,
                warmup=args.warmup,
                stream=args.mode == "stream",
            )
        )
    return m.as_dict()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pinned = pin_self(args.cpu)
    header = {"client": args.client, "mode": args.mode, "concurrency": args.concurrency}
    try:
        result = measure(args)
    except ClientUnavailable as exc:
        print(json.dumps({**header, "skipped": str(exc)}), flush=True)
        return 0
    except Exception as exc:
        traceback.print_exc()
        print(json.dumps({**header, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({**header, "pinned_cpu": args.cpu if pinned else None, **result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
