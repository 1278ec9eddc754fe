"""A batch item waiting out a retry's delay gives its concurrency slot to the next item, over
real sockets to the mock: the server never sees more than ``concurrency`` requests at once,
every item ends exactly once (ordered or not, adaptive or not), and a close during a wait
leaves no slot taken and no task behind. Nothing here times anything: the order of the
server's own request log is read."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from reka_async import AsyncClient, BatchRunner, RetryPolicy
from reka_async.testing import MockRekaServer

API_KEY = "test-key"


@asynccontextmanager
async def serve(**server_kwargs: Any) -> AsyncIterator[tuple[MockRekaServer, AsyncClient]]:
    async with (
        MockRekaServer(api_key=API_KEY, **server_kwargs) as server,
        AsyncClient(
            api_key=API_KEY,
            base_url=server.base_url,
            retry_policy=RetryPolicy(max_retries=3, base=0.001, cap=0.01),
        ) as client,
    ):
        yield server, client


def contents(server: MockRekaServer) -> list[str]:
    return [r.body["messages"][0]["content"] for r in server.requests]


async def test_the_next_item_is_sent_while_a_refused_one_waits() -> None:
    # One slot. The first item is refused (overloaded, retry in 1 s): the other items are
    # sent and answered in the slot it gave up, before its retry goes out.
    items = ["first [[fault:overloaded*1]]", "second", "third"]
    async with serve(retry_after_s=1.0) as (server, client):
        runner = BatchRunner(client, concurrency=1)
        results = await runner.run(items)
        sent = contents(server)
        assert server.max_in_flight == 1
    assert [r.ok for r in results] == [True, True, True]
    assert sent[0] == items[0]
    assert sent.index(items[0], 1) > sent.index("second")
    assert sent.index(items[0], 1) > sent.index("third")
    assert runner.stats.retries == 1


@pytest.mark.parametrize("ordered", [False, True])
@pytest.mark.parametrize("adaptive", [False, True])
async def test_in_flight_stays_within_the_limit_and_every_item_ends_once(
    ordered: bool, adaptive: bool
) -> None:
    # Half the items are refused twice each (retry-after 10 ms): many waits at once, their
    # slots lent and taken back, and the server's own high-water mark stays at 4. (The mock
    # counts a directive by its text: the spaces make each item's its own.)
    items = [
        f"item {i}" + (f" [[fault:overloaded*2{' ' * i}]]" if i % 2 else "") for i in range(24)
    ]
    async with serve(retry_after_s=0.01, latency_s=0.002) as (server, client):
        runner = BatchRunner(client, concurrency=4, adaptive=adaptive)
        async with runner.stream(items, ordered=ordered) as stream:
            results = [r async for r in stream]
            slots = stream._slots
        assert server.max_in_flight <= 4
        assert len(server.requests) == 24 + 2 * 12
    assert slots.in_use == 0
    assert sorted(r.index for r in results) == list(range(24))
    if ordered:
        assert [r.index for r in results] == list(range(24))
    assert all(r.ok for r in results)
    assert Counter(r.attempts for r in results) == {1: 12, 3: 12}


async def test_a_close_while_items_wait_leaves_no_slot_taken_and_no_task() -> None:
    items = [f"wait {i} [[fault:overloaded*1]]" for i in range(3)] + ["plain"] * 5
    async with serve(retry_after_s=30.0) as (server, client):
        runner = BatchRunner(client, concurrency=2)
        async with runner.stream(items) as stream:
            got = []
            async for result in stream:
                got.append(result)
                if len(got) == 5:  # the plain items, sent in the slots the waits gave up
                    break
            slots = stream._slots
        assert server.max_in_flight <= 2
    assert all(r.ok and r.custom_id for r in got)
    assert slots.in_use == 0
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("reka-batch-worker")]
    assert tasks == []


async def test_waits_hold_at_most_twice_the_concurrency_in_items() -> None:
    # Every item is refused with a long wait: two slots are lent twice (to two extra
    # workers, the cap), then every holder waits and nothing more is taken from the input,
    # although the ordered stream's window would admit eight.
    pulled = 0

    def items() -> Iterator[str]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield f"wait {i} [[fault:overloaded*1{' ' * i}]]"

    async with serve(retry_after_s=30.0) as (server, client):
        runner = BatchRunner(client, concurrency=2)
        async with runner.stream(items(), ordered=True) as stream:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10.0
            while not (len(server.requests) == 4 and stream._slots.in_use == 0):
                assert loop.time() < deadline, "the four first attempts never came"
                await asyncio.sleep(0.01)
            assert stream._extras == 2
            assert pulled == 4
        assert server.max_in_flight <= 2
    assert stream._slots.in_use == 0
