"""A library batch leaves the collector alone; asked (``gc_tuning=True``, as the CLI asks), a
large batch collects the youngest GC generation less often while it runs, then puts the
thresholds back (``batch/collector.py``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reka_async import AsyncClient, BatchRunner
from reka_async.batch.collector import GC_THRESHOLD, GcRelief
from reka_async.testing import MockRekaServer


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)
    assert GcRelief.holders() == 0


async def test_a_library_batch_at_256_leaves_the_thresholds_alone() -> None:
    seen: list[tuple[int, ...]] = []
    async with (
        MockRekaServer() as server,
        AsyncClient(api_key="k", base_url=server.base_url) as client,
    ):
        runner = BatchRunner(
            client, concurrency=256, on_result=lambda r, s: seen.append(gc.get_threshold())
        )
        results = await runner.run(["hi"] * 20)
    assert all(r.ok for r in results)
    assert set(seen) == {(700, 10, 10)}  # during the run
    assert gc.get_threshold() == (700, 10, 10)  # and after it


async def test_an_asked_large_batch_raises_the_first_threshold_while_it_runs() -> None:
    seen: list[tuple[int, ...]] = []
    async with (
        MockRekaServer() as server,
        AsyncClient(api_key="k", base_url=server.base_url) as client,
    ):
        runner = BatchRunner(
            client,
            concurrency=256,
            gc_tuning=True,
            on_result=lambda r, s: seen.append(gc.get_threshold()),
        )
        results = await runner.run(["hi"] * 20)
    assert all(r.ok for r in results)
    assert set(seen) == {(GC_THRESHOLD, 10, 10)}
    assert gc.get_threshold() == (700, 10, 10)


async def test_small_batches_leave_the_collector_alone_even_when_asked() -> None:
    seen: list[tuple[int, ...]] = []
    async with (
        MockRekaServer() as server,
        AsyncClient(api_key="k", base_url=server.base_url) as client,
    ):
        for runner in (
            BatchRunner(
                client,
                concurrency=64,
                gc_tuning=True,
                on_result=lambda r, s: seen.append(gc.get_threshold()),
            ),
            BatchRunner(
                client,
                concurrency=256,
                gc_tuning=False,
                on_result=lambda r, s: seen.append(gc.get_threshold()),
            ),
        ):
            await runner.run(["hi"] * 5)
    assert set(seen) == {(700, 10, 10)}


async def test_overlapping_batches_restore_once_the_last_ends() -> None:
    async with (
        MockRekaServer() as server,
        AsyncClient(api_key="k", base_url=server.base_url) as client,
    ):
        runner = BatchRunner(client, concurrency=256, gc_tuning=True)
        first = runner.stream(["a"] * 3)
        second = runner.stream(["b"] * 3)
        async with first:
            async for _ in first:
                break
            async with second:
                async for _ in second:
                    pass
            assert GcRelief.holders() == 1  # the first is still open
            assert gc.get_threshold()[0] == GC_THRESHOLD
    assert GcRelief.holders() == 0
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_changed_meanwhile_are_left_alone() -> None:
    GcRelief.acquire()
    assert gc.get_threshold() == (GC_THRESHOLD, 10, 10)
    gc.set_threshold(5000, 20, 20)  # the application's own choice, made mid-batch
    GcRelief.release()
    assert gc.get_threshold() == (5000, 20, 20)


def test_a_disabled_or_higher_threshold_is_kept() -> None:
    for found in ((0, 10, 10), (50_000, 10, 10)):
        gc.set_threshold(*found)
        GcRelief.acquire()
        assert gc.get_threshold() == found
        GcRelief.release()
        assert gc.get_threshold() == found
