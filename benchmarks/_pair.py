"""Paired runs: two clients in one process, alternating short slices (the worker's pair modes).

On a shared machine whose speed drifts over seconds, slices this short see the same machine,
so the ratio of the two clients is far steadier than one of medians of separate runs. Each
side is a client *and a dialect* (``reka_async/openai`` against ``reka_async/native`` is a
pair too); a side's slices are summed in a `Tally`: requests, stream chunks, wall and CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Sequence
from typing import Any

from benchmarks._clients import Call, ClientUnavailable, open_client
from benchmarks._common import API_KEY, MODEL, PROMPT
from benchmarks._window import gather_all

__all__ = ["Side", "Tally", "import_sync_client", "run_pair", "run_sync_pair", "side_label"]

#: One side of a pair: (client name, dialect).
Side = tuple[str, str]


def side_label(side: Side) -> str:
    """``client/api``: the key of a side in a pair record."""
    return f"{side[0]}/{side[1]}"


class Tally:
    """Requests, chunks, wall and CPU time summed over one side's slices of a paired run."""

    def __init__(self) -> None:
        self.requests = 0
        self.chunks = 0
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self.slices = 0

    def add(self, requests: int, chunks: int, wall_s: float, cpu_s: float) -> None:
        self.requests += requests
        self.chunks += chunks
        self.wall_s += wall_s
        self.cpu_s += cpu_s
        self.slices += 1

    def as_dict(self) -> dict[str, Any]:
        req = max(self.requests, 1)
        data: dict[str, Any] = {
            "requests": self.requests,
            "chunks": self.chunks,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "slices": self.slices,
            "req_per_s": self.requests / self.wall_s if self.wall_s > 0 else 0.0,
            "cpu_us_per_req": self.cpu_s * 1e6 / req,
            "wall_us_per_req": self.wall_s * 1e6 / req,
        }
        if self.chunks > self.requests:  # a streaming pair
            data["cpu_us_per_chunk"] = self.cpu_s * 1e6 / self.chunks
            data["chunks_per_req"] = self.chunks / req
        return data


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _pair_result(
    labels: Sequence[str], tallies: Sequence[Tally], *, same_stream: bool = True
) -> dict[str, Any]:
    """Both sides' tallies and their ratios (first side over second).

    ``ratio_cpu_per_chunk`` of a streaming pair: when both sides parse the same stream (same
    dialect) it is the ratio of CPU per stream, i.e. per wire event, so that a client yielding
    one event fewer (the OpenAI role-only first delta) is not charged for it; across dialects
    (``same_stream=False``) each side's CPU per chunk it yielded.
    """
    (a, b), (ta, tb) = labels, tallies
    da, db = ta.as_dict(), tb.as_dict()
    result: dict[str, Any] = {
        "sides": [a, b],
        "pair": {a: da, b: db},
        "ratio_req_per_s": _div(da["req_per_s"], db["req_per_s"]),
        "ratio_cpu_per_req": _div(da["cpu_us_per_req"], db["cpu_us_per_req"]),
        "ratio_wall_per_req": _div(da["wall_us_per_req"], db["wall_us_per_req"]),
    }
    if "cpu_us_per_chunk" in da and "cpu_us_per_chunk" in db:
        if same_stream:
            result["ratio_cpu_per_chunk"] = result["ratio_cpu_per_req"]
            result["chunk_basis"] = "per stream (the same wire events on both sides)"
        else:
            result["ratio_cpu_per_chunk"] = _div(da["cpu_us_per_chunk"], db["cpu_us_per_chunk"])
            result["chunk_basis"] = "per chunk each side yielded"
    return result


def _rounds(duration: float, slice_s: float) -> int:
    return max(2, round(duration / slice_s))


async def run_pair(
    sides: Sequence[Side],
    url: str,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    slice_s: float,
    stream: bool = False,
    prompt: str = PROMPT,
) -> dict[str, Any]:
    """Alternate two sides in one event loop, ``slice_s`` seconds at a time.

    Each side gets ``duration`` seconds in all (``round(duration / slice_s)`` slices, the
    order flipping each round) after ``warmup / 2`` unmeasured seconds each. A slice stops
    starting calls at its end and waits for those in flight; its wall time and this
    process's CPU time cover exactly its own calls (the other side is idle meanwhile).
    """
    async with contextlib.AsyncExitStack() as stack:
        calls = [
            await stack.enter_async_context(
                open_client(name, url, concurrency, stream=stream, api=api, prompt=prompt)
            )
            for name, api in sides
        ]
        tallies = [Tally(), Tally()]

        async def run_slice(call: Call, seconds: float) -> tuple[int, int, float, float]:
            done = chunks = 0
            stop = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal done, chunks
                while time.perf_counter() < stop:
                    n = await call()  # not ``chunks += await call()``: that reads chunks first
                    chunks += n
                    done += 1

            t0, c0 = time.perf_counter(), time.process_time()
            await gather_all([worker() for _ in range(concurrency)])
            return done, chunks, time.perf_counter() - t0, time.process_time() - c0

        for call in calls:  # warm-up: connections open, caches warm, for both
            await run_slice(call, warmup / 2)
        gc.collect()
        for r in range(_rounds(duration, slice_s)):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for i in order:
                tallies[i].add(*await run_slice(calls[i], slice_s))
        same = sides[0][1] == sides[1][1]
        return _pair_result([side_label(s) for s in sides], tallies, same_stream=same)


def import_sync_client() -> Any:
    """``reka_async.Client`` (the sync facade), or `ClientUnavailable`."""
    try:
        from reka_async import Client
    except ImportError as exc:  # the facade is newer than the rest of the package
        raise ClientUnavailable(
            f"the sync facade reka_async.Client is not available ({exc})"
        ) from exc
    return Client


def run_sync_pair(url: str, *, duration: float, warmup: float, slice_s: float) -> dict[str, Any]:
    """Alternate the sync facade and the async client, sequential calls, one process."""
    from reka_async import AsyncClient

    client_cls = import_sync_client()
    messages: list[Any] = [{"role": "user", "content": PROMPT}]
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

    def one(i: int, seconds: float) -> tuple[int, int, float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        stop = t0 + seconds
        done = sync_slice(stop) if i == 0 else loop.run_until_complete(async_slice(stop))
        return done, done, time.perf_counter() - t0, time.process_time() - c0

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
