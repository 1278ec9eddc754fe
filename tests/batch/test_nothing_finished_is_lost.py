"""Nothing finished is lost: a cancelled ``run()`` keeps every answer whose body was read in
full (billed), and a raising client hook never turns an answered item into a failure.

"Finished" is what the client's ``on_response`` hook sees: it is called once the answer's
body was read in full and parsed. Over real sockets to the mock server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from reka_async import (
    AsyncClient,
    BatchAbortedError,
    BatchResult,
    BatchRunner,
    BatchStats,
    ResponseEvent,
    RetryPolicy,
)
from reka_async.testing import MockRekaServer

API_KEY = "test-key"


def item_of(event: ResponseEvent) -> int:
    """The input index an attempt was for (its prompt is ``item N``)."""
    body = json.loads(event.request.body or b"{}")
    return int(body["messages"][-1]["content"].split()[1])


@asynccontextmanager
async def serve(
    **client_options: Any,
) -> AsyncIterator[tuple[MockRekaServer, AsyncClient]]:
    async with (
        MockRekaServer(api_key=API_KEY, retry_after_s=0.01) as server,
        AsyncClient(
            API_KEY,
            server.base_url,
            retry_policy=RetryPolicy(max_retries=2, base=0.001, cap=0.01),
            **client_options,
        ) as client,
    ):
        yield server, client


def cancel_after(task: asyncio.Task[Any], turns: int) -> None:
    """Cancel ``task`` after ``turns`` more turns of the event loop (a point in the run that
    no sleep decides)."""
    loop = asyncio.get_running_loop()

    def step(left: int) -> None:
        if left <= 0:
            task.cancel()
        else:
            loop.call_soon(step, left - 1)

    loop.call_soon(step, turns)


@pytest.mark.parametrize(("cache", "points"), [(False, 100), (True, 30)], ids=["plain", "cache"])
async def test_a_cancelled_run_keeps_every_finished_result_at_random_points(
    cache: bool, points: int, tmp_path: Any
) -> None:
    # Each point: the k-th answer read, then a few more turns of the loop (so the cancel
    # lands anywhere: between reads, inside a worker, while results wait in the queue).
    rng = random.Random(29)
    finished: set[int] = set()
    plan: dict[str, Any] = {}

    def on_response(event: ResponseEvent) -> None:
        if event.status_code == 200 and event.response is not None:
            finished.add(item_of(event))
            if len(finished) == plan["after"]:
                cancel_after(plan["task"], plan["turns"])

    lost: list[tuple[int, int, int]] = []
    cancelled = 0
    async with serve(on_response=on_response) as (_, client):
        for point in range(points):
            finished.clear()
            runner = BatchRunner(
                client,
                concurrency=8,
                cache=str(tmp_path / f"cache-{point}.db") if cache else None,
            )
            task = asyncio.create_task(runner.run([f"item {i}" for i in range(40)]))
            plan.update(task=task, after=rng.randrange(0, 40), turns=rng.randrange(0, 30))
            if plan["after"] == 0:
                cancel_after(task, plan["turns"])
            try:
                results = await task  # the cancel came too late: the run completed
            except asyncio.CancelledError:
                cancelled += 1
                results = runner.partial_results
            kept = {r.index for r in results if r.ok}
            if not finished <= kept:
                lost.append((point, len(finished), len(kept)))
    assert lost == []  # (point, finished, kept) of each run that lost finished results
    # Enough points fell inside a run for the check to mean something (how many depends on
    # the machine's scheduling: 31 of 100 on a loaded 3.13, most on a quiet one).
    assert cancelled >= points // 10


def raising(kind: str, calls: list[str]) -> Callable[[Any], None]:
    def hook(event: Any) -> None:
        calls.append(kind)
        raise ValueError(f"{kind} hook broke")

    return hook


@pytest.mark.parametrize("kind", ["on_request", "on_response", "on_retry"])
async def test_a_raising_client_hook_never_fails_an_answered_item(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    # Every item's first attempt is refused with a 503, so each is retried once (on_retry);
    # a directive counts per exact text, hence the spaces.
    items = [f"item {i} [[fault:{' ' * i}503*1]]" for i in range(3)]
    async with serve(**{kind: raising(kind, calls)}) as (server, client):
        runner = BatchRunner(client, concurrency=2)
        with caplog.at_level(logging.WARNING, logger="reka_async"):
            results = await runner.run(items)
    assert calls.count(kind) >= 3  # the hook ran, and raised, for each item
    assert [r.ok for r in results] == [True, True, True]
    assert [r.response.text for r in results if r.response] == [
        f"Mock reply to: {item}" for item in items
    ]
    assert [r.attempts for r in results] == [2, 2, 2]  # the retries are still counted
    assert len(server.requests) == 6
    assert runner.stats.hook_errors == {kind: calls.count(kind)}
    assert runner.stats.as_dict()["hook_errors"] == {kind: calls.count(kind)}
    logged = [r for r in caplog.records if f"{kind} hook raised ValueError" in r.getMessage()]
    assert len(logged) == 1  # once per kind, however often it raised


async def test_a_raising_on_result_still_stops_the_batch_with_the_finished_results() -> None:
    seen: list[int] = []

    def on_result(result: BatchResult, stats: BatchStats) -> None:
        seen.append(result.index)
        raise RuntimeError("on_result broke")

    async with serve() as (_, client):
        runner = BatchRunner(client, concurrency=4, on_result=on_result)
        with pytest.raises(BatchAbortedError, match="on_result broke") as info:
            await runner.run([f"item {i}" for i in range(40)])
    kept = {r.index for r in info.value.results}
    assert seen == seen[:1]  # called once, never again after it raised
    assert set(seen) <= kept
    assert all(r.ok for r in info.value.results)
    assert kept == {r.index for r in runner.partial_results}
    assert len(kept) >= 1
