"""BatchRunner against the embedded mock server over real sockets.

Timing is only ever used to *wait for a condition* (bounded polls) or read from the server's
own request log; nothing asserts that something was fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from reka_async import (
    APITimeoutError,
    AsyncClient,
    BatchAbortedError,
    BatchResult,
    BatchRunner,
    BatchStats,
    InsufficientCreditsError,
    InvalidRequestError,
    Message,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    UnprocessableEntityError,
)
from reka_async._models import ChatRequest
from reka_async.batch import RateBudget
from reka_async.testing import MockRekaServer

API_KEY = "test-key"
WORKER_PREFIX = "reka-batch-worker"


@asynccontextmanager
async def serve(**server_kwargs: Any) -> AsyncIterator[tuple[MockRekaServer, AsyncClient]]:
    """A mock server and a client of it whose backoff takes milliseconds."""
    async with (
        MockRekaServer(api_key=API_KEY, **server_kwargs) as server,
        AsyncClient(
            api_key=API_KEY,
            base_url=server.base_url,
            retry_policy=RetryPolicy(max_retries=2, base=0.001, cap=0.01),
        ) as client,
    ):
        yield server, client


async def wait_until(predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
    """Poll a condition (waiting for it, not timing it) until it holds or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached before the deadline")
        await asyncio.sleep(0.01)


def worker_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(WORKER_PREFIX)]


def acquired_connections(client: AsyncClient) -> int:
    return client.connections_in_use


async def assert_everything_released(server: MockRekaServer, client: AsyncClient) -> None:
    assert worker_tasks() == []
    assert acquired_connections(client) == 0
    # The server notices the closed sockets on its own schedule: wait for it, bounded.
    await wait_until(lambda: server.in_flight == 0)


class Counted:
    """A plain iterator of prompts that counts how many were pulled."""

    def __init__(self, n: int, make: Callable[[int], Any] = lambda i: f"prompt {i}") -> None:
        self.n = n
        self.make = make
        self.pulled = 0

    def __iter__(self) -> Iterator[Any]:
        for i in range(self.n):
            self.pulled += 1
            yield self.make(i)


def reply_to(prompt: str) -> str:
    return "Mock reply to: " + prompt


# --- results and inputs -----------------------------------------------------------------------


async def test_run_keeps_input_order_and_each_result_matches_its_input() -> None:
    # Varied latencies make the completion order differ from the input order.
    prompts = [f"question {i} [[latency_ms:{(i * 7) % 40}]]" for i in range(40)]
    completed: list[int] = []
    async with serve() as (server, client):
        runner = BatchRunner(
            client, concurrency=8, on_result=lambda r, s: completed.append(r.index)
        )
        results = await runner.run(prompts)
    assert completed != sorted(completed)  # they really finished out of order
    assert [r.index for r in results] == list(range(40))
    for i, (prompt, result) in enumerate(zip(prompts, results, strict=True)):
        assert result.ok
        assert result.error is None
        assert result.text == reply_to(prompt)
        assert result.custom_id == str(i)
        assert result.request is not None
        assert result.request["messages"] == [{"role": "user", "content": prompt}]
        assert result.attempts == 1
        assert result.latency_s > 0
    assert len(server.requests) == 40


async def test_every_item_form_is_accepted() -> None:
    items: list[Any] = [
        "a plain prompt",
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "a list of messages"},
        ],
        {
            "messages": [{"role": "user", "content": "a dict with params and its own id"}],
            "custom_id": "doc-42",
            "model": "reka-core",
            "max_tokens": 2,
            "temperature": 0.9,
        },
        {"prompt": "a dict with a prompt"},
        ChatRequest(
            model="reka-edge",
            messages=[Message(role="user", content="a ChatRequest")],
            stream=True,  # ignored: a batch reads whole responses
        ),
    ]
    async with serve() as (server, client):
        runner = BatchRunner(client, concurrency=2, model="reka-flash", temperature=0.1)
        results = await runner.run(items)
    assert all(r.ok for r in results), [r.error for r in results]
    texts = [r.text for r in results]
    assert texts[0] == reply_to("a plain prompt")
    assert texts[1] == reply_to("a list of messages")
    assert texts[2] == "Mock reply"  # max_tokens=2 cut it
    assert results[2].response is not None
    assert results[2].response.finish_reason == "length"
    assert texts[3] == reply_to("a dict with a prompt")
    assert texts[4] == reply_to("a ChatRequest")
    assert [r.custom_id for r in results] == ["0", "1", "doc-42", "3", "4"]
    bodies = {r.body["messages"][-1]["content"]: r.body for r in server.requests}
    assert bodies["a plain prompt"]["model"] == "reka-flash"
    assert bodies["a plain prompt"]["temperature"] == 0.1  # the runner's default
    assert bodies["a list of messages"]["messages"][0]["role"] == "system"
    dict_body = bodies["a dict with params and its own id"]
    assert dict_body["model"] == "reka-core"
    assert dict_body["temperature"] == 0.9  # the item's value wins
    assert dict_body["max_tokens"] == 2
    assert "custom_id" not in dict_body
    assert bodies["a ChatRequest"]["model"] == "reka-edge"
    assert "stream" not in bodies["a ChatRequest"]


async def test_plain_generator_is_consumed_lazily() -> None:
    concurrency = 4
    lookahead = concurrency  # results that may wait for a slow caller, besides those in flight
    limit = 1 + concurrency + lookahead  # what may be read while the caller holds one result
    source = Counted(200)
    pulled_at: list[int] = []
    async with serve() as (server, client):
        runner = BatchRunner(client, concurrency=concurrency)
        async with runner.stream(iter(source)) as stream:
            async for _ in stream:
                pulled_at.append(source.pulled)
                if len(pulled_at) == 1:
                    assert source.pulled <= concurrency + lookahead
                    # A slow caller: hold on to the first result until the workers have
                    # filled the whole look-ahead and gone idle; they must not read on.
                    await wait_until(
                        lambda: len(server.requests) >= limit and server.in_flight == 0
                    )
                    assert source.pulled == len(server.requests) == limit
    assert len(pulled_at) == 200
    for consumed, pulled in enumerate(pulled_at, start=1):
        assert pulled <= consumed + concurrency + lookahead
    assert source.pulled == 200


async def test_async_generator_is_consumed_lazily() -> None:
    concurrency = 4
    pulled = 0
    pulled_at_first: list[int] = []

    async def prompts() -> AsyncIterator[str]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield f"async prompt {i}"

    def hook(result: BatchResult, stats: BatchStats) -> None:
        if not pulled_at_first:
            pulled_at_first.append(pulled)

    async with serve(latency_s=0.002) as (_, client):
        runner = BatchRunner(client, concurrency=concurrency, on_result=hook)
        results = await runner.run(prompts())
    assert pulled_at_first[0] <= 2 * concurrency
    assert pulled == 100
    assert [r.text for r in results] == [reply_to(f"async prompt {i}") for i in range(100)]


async def test_any_iterable_works() -> None:
    async with serve() as (_, client):
        runner = BatchRunner(client, concurrency=3)
        results = await runner.run(f"p{i}" for i in range(7))
        from_tuple = await runner.run(("x", "y"))
    assert [r.text for r in results] == [reply_to(f"p{i}") for i in range(7)]
    assert [r.text for r in from_tuple] == [reply_to("x"), reply_to("y")]


async def test_a_failing_input_iterator_surfaces_its_error() -> None:
    def broken() -> Iterator[str]:
        yield "fine"
        raise LookupError("the source broke")

    async with serve() as (_server, client):
        runner = BatchRunner(client, concurrency=2)
        with pytest.raises(BatchAbortedError, match="the source broke") as info:
            await runner.run(broken())
        assert isinstance(info.value.__cause__, LookupError)
        # The item finished before the input broke is not lost.
        assert [r.text != "" for r in info.value.results] == [True]
        assert runner.partial_results == info.value.results
        assert worker_tasks() == []
        assert acquired_connections(client) == 0


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.parametrize("adaptive", [True, False])
async def test_concurrency_is_used_and_never_exceeded(adaptive: bool) -> None:
    async with serve(latency_s=0.02) as (server, client):
        runner = BatchRunner(client, concurrency=8, adaptive=adaptive)
        results = await runner.run(f"item {i}" for i in range(200))
    assert all(r.ok for r in results)
    assert server.max_in_flight == 8
    assert len(server.requests) == 200


def test_concurrency_above_the_connection_pool_is_rejected() -> None:
    client = AsyncClient(api_key=API_KEY, base_url="http://127.0.0.1:9/v1", max_connections=4)
    with pytest.raises(InvalidRequestError, match="max_connections=4"):
        BatchRunner(client, concurrency=5)
    assert BatchRunner(client, concurrency=4).concurrency == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"concurrency": 2.5}, "concurrency"),
        ({"rpm": 0}, "rpm"),
        ({"tpm": -1}, "tpm"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": -1}, "timeout"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"no_such_param": 1}, "no_such_param"),
    ],
)
def test_invalid_settings_are_rejected_up_front(kwargs: dict[str, Any], match: str) -> None:
    client = AsyncClient(api_key=API_KEY, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(InvalidRequestError, match=match):
        BatchRunner(client, **kwargs)


# --- per-item errors ----------------------------------------------------------------------------


async def test_item_errors_are_results_and_the_others_succeed() -> None:
    items: list[Any] = [
        "ok 0",
        "missing [[fault:404]]",
        "ok 2",
        "invalid [[fault:422]]",
        42,
        {"custom_id": "no-messages"},
        [],
        {"messages": [{"role": "robot", "content": "hi"}], "custom_id": "bad-role"},
        "ok 8",
    ]
    async with serve() as (server, client):
        results = await BatchRunner(client, concurrency=4).run(items)
    assert [r.index for r in results] == list(range(len(items)))
    assert [r.ok for r in results] == [True, False, True, False, False, False, False, False, True]
    assert isinstance(results[1].error, NotFoundError)
    assert results[1].attempts == 1  # a 404 is not retried
    assert isinstance(results[3].error, UnprocessableEntityError)
    for i in (4, 5, 6, 7):
        result = results[i]
        assert isinstance(result.error, InvalidRequestError)
        assert result.request is None
        assert result.attempts == 0
        assert result.response is None
        assert result.text == ""
    assert results[5].custom_id == "no-messages"
    assert results[7].custom_id == "bad-role"
    assert results[4].custom_id == "4"
    # Invalid items never reach the server.
    assert len(server.requests) == 5


async def test_an_item_that_cannot_be_serialised_is_a_failed_result() -> None:
    items: list[Any] = [
        "before",
        {"prompt": "odd", "custom_id": "odd", "extra_body": {"x": object()}},
        "after",
    ]
    async with serve() as (_, client):
        results = await BatchRunner(client, concurrency=2).run(items)
    assert [r.custom_id for r in results] == ["0", "odd", "2"]
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, TypeError)


async def test_retried_items_report_their_attempts() -> None:
    items = ["a", "b", "flaky [[fault:503*1]]", "c"]
    async with serve() as (server, client):
        runner = BatchRunner(client, concurrency=2)
        results = await runner.run(items)
    assert all(r.ok for r in results)
    assert [r.attempts for r in results] == [1, 1, 2, 1]
    assert runner.stats.retried == 1
    assert runner.stats.retries == 1
    assert len(server.requests) == 5


# --- rate limits, credits, cooldown -------------------------------------------------------------


async def test_a_rate_limit_429_pauses_every_worker_until_retry_after() -> None:
    retry_after = 0.5
    items = [f"item {i}" for i in range(60)]
    items[10] = "item 10 [[fault:rate_limit*1]]"
    async with serve(latency_s=0.03, retry_after_s=retry_after) as (server, client):
        runner = BatchRunner(client, concurrency=8)
        results = await runner.run(items)
    assert all(r.ok for r in results)
    assert results[10].attempts == 2
    assert runner.stats.rate_limited == 1
    limited = [r for r in server.requests if r.fault == "rate_limit"]
    assert len(limited) == 1
    t429 = limited[0].received_at
    quiet = (t429 + 0.1, t429 + retry_after - 0.05)
    during = [r.received_at - t429 for r in server.requests if quiet[0] < r.received_at < quiet[1]]
    assert during == [], f"requests arrived during the cooldown at +{during} s"
    # The batch went on afterwards (so the quiet window was a pause, not the end).
    assert sum(r.received_at >= quiet[1] for r in server.requests) >= 10


async def test_out_of_credits_stops_the_batch() -> None:
    items = [f"item {i}" for i in range(200)]
    items[5] = "item 5 [[fault:credits]]"
    async with serve(latency_s=0.01) as (server, client):
        runner = BatchRunner(client, concurrency=4)
        with pytest.raises(BatchAbortedError, match="out of credits") as caught:
            await runner.run(items)
        await assert_everything_released(server, client)
    assert isinstance(caught.value.cause, InsufficientCreditsError)
    assert len(server.requests) < 20  # far from burning all 200
    assert sum(r.fault == "credits" for r in server.requests) == 1  # never retried
    finished = caught.value.results
    indices = [r.index for r in finished]
    assert indices == sorted(indices)
    assert set(range(6)) <= set(indices)
    by_index = {r.index: r for r in finished}
    assert isinstance(by_index[5].error, InsufficientCreditsError)
    assert all(r.ok for r in finished if r.index != 5)
    assert len(finished) < 20


async def test_fail_fast_raises_the_first_error_and_cancels_the_rest() -> None:
    items = [f"item {i}" for i in range(100)]
    items[3] = "item 3 [[fault:404]]"
    async with serve(latency_s=0.02) as (server, client):
        runner = BatchRunner(client, concurrency=4, fail_fast=True)
        with pytest.raises(NotFoundError):
            await runner.run(items)
        await assert_everything_released(server, client)
    assert len(server.requests) < 20


async def test_fail_fast_also_stops_on_an_invalid_item() -> None:
    async with serve() as (server, client):
        runner = BatchRunner(client, concurrency=2, fail_fast=True)
        with pytest.raises(InvalidRequestError):
            await runner.run(["fine", 123, *[f"more {i}" for i in range(50)]])
        assert worker_tasks() == []
    assert len(server.requests) < 10


async def test_overload_429s_shrink_the_adaptive_limit() -> None:
    items = [f"item {i}" for i in range(40)]
    for i in range(12):  # the first 12 requests of these items are refused as overloaded
        items[i] = f"item {i} [[fault:overloaded*12]]"
    async with serve(latency_s=0.01, retry_after_s=0.01) as (_, client):
        # Retries carry the directive too: enough of them that every item gets through.
        runner = BatchRunner(client, concurrency=8, max_retries=12)
        async with runner.stream(items) as stream:
            results = [r async for r in stream]
            gate = stream.concurrency_limit
    assert gate is not None
    assert len(results) == 40
    assert all(r.ok for r in results)
    assert runner.stats.rate_limited == 12
    assert runner.stats.quota_pauses == 0
    assert gate.min_seen < 8
    assert 1 <= gate.limit <= 8
    assert runner.stats.concurrency_limit == gate.limit  # kept current as it grows back


async def test_a_stray_overload_429_or_a_spent_quota_does_not_shrink_the_limit() -> None:
    # One overload 429 among many successes is noise; a 429 saying the quota is spent is
    # answered by pausing the client (the cooldown), not by cutting concurrency.
    items = [f"item {i}" for i in range(30)]
    items[3] = "item 3 [[fault:overloaded*1]]"
    items[20] = "item 20 [[fault:rate_limit*1]]"
    async with serve(retry_after_s=0.01) as (_, client):
        runner = BatchRunner(client, concurrency=4)
        async with runner.stream(items) as stream:
            results = [r async for r in stream]
            gate = stream.concurrency_limit
    assert all(r.ok for r in results)
    assert runner.stats.rate_limited == 2
    assert runner.stats.quota_pauses == 1
    assert gate is not None
    assert gate.min_seen == 4


async def test_a_final_overload_429_also_counts_as_overload() -> None:
    items = [f"busy {i} [[fault:overloaded]]" for i in range(10)]
    async with serve(retry_after_s=0.05) as (_, client):
        runner = BatchRunner(client, concurrency=4, max_retries=0)
        async with runner.stream(items) as stream:
            results = sorted([r async for r in stream], key=lambda r: r.index)
            gate = stream.concurrency_limit
    assert all(isinstance(r.error, RateLimitError) for r in results)
    assert runner.stats.rate_limited == 10
    assert gate is not None
    assert gate.min_seen < 4


async def test_without_adaptive_there_is_no_gate() -> None:
    async with serve() as (_server, client):
        runner = BatchRunner(client, concurrency=4, adaptive=False)
        async with runner.stream(["a", "b"]) as stream:
            assert stream.concurrency_limit is None
            assert [r.ok async for r in stream] == [True, True]


# --- TPM budget -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tpm", "item"),
    [
        # estimate (53) > usage (7): the unused part comes back
        (1200, {"prompt": "hello world", "max_tokens": 50}),
        # estimate (1027) > the whole burst: it waits for a full bucket, goes into debt, and
        # the correction leaves exactly the usage taken
        (1000, {"prompt": "hello world"}),
        # usage (101 input words) > estimate (52): the difference is taken on top
        (1200, {"prompt": "a " * 100, "max_tokens": 1}),
    ],
    ids=["refund", "estimate-above-burst", "usage-above-estimate"],
)
async def test_tpm_bucket_ends_at_capacity_minus_actual_usage(
    tpm: int, item: dict[str, Any]
) -> None:
    # A frozen clock: the bucket never refills, so its level is exact arithmetic.
    budget = RateBudget(tpm=tpm, token_burst=tpm, clock=lambda: 0.0)
    async with serve() as (_, client):
        runner = BatchRunner(client, concurrency=1, rate_budget=budget)
        async with runner.stream([item]) as stream:
            results = [r async for r in stream]
            bucket = stream.tpm_bucket
    assert bucket is budget.tokens
    assert bucket is not None
    (result,) = results
    assert result.response is not None
    usage = result.response.usage
    used = usage.input_tokens + usage.output_tokens
    assert used > 0
    assert bucket.level == pytest.approx(tpm - used)


async def test_rpm_and_tpm_budgets_let_a_small_batch_through() -> None:
    async with serve() as (server, client):
        runner = BatchRunner(client, concurrency=2, rpm=600, tpm=100_000)
        results = await runner.run([f"r{i}" for i in range(5)])
    assert all(r.ok for r in results)
    assert len(server.requests) == 5


# --- timeouts -------------------------------------------------------------------------------------


async def test_timeout_starts_when_the_request_gets_its_slot() -> None:
    # One slot, three 150 ms requests: the last waits ~300 ms before it is sent. A timeout
    # of 0.3 s counted from the queue would expire; counted from the slot it never does.
    async with serve(latency_s=0.15) as (server, client):
        runner = BatchRunner(client, concurrency=1, timeout=0.3, max_retries=0)
        results = await runner.run(["one", "two", "three", "too slow [[latency_ms:600]]"])
    assert [r.ok for r in results[:3]] == [True, True, True]
    assert [r.attempts for r in results[:3]] == [1, 1, 1]
    # ...and the timeout is really applied per request.
    assert isinstance(results[3].error, APITimeoutError)
    assert len(server.requests) == 4


# --- cancellation -------------------------------------------------------------------------------


async def test_cancelling_run_cancels_in_flight_requests() -> None:
    async with serve(latency_s=2.0) as (server, client):
        runner = BatchRunner(client, concurrency=4)
        task = asyncio.create_task(runner.run(f"slow {i}" for i in range(20)))
        await wait_until(lambda: server.in_flight == 4)
        assert len(worker_tasks()) == 4
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_everything_released(server, client)
        assert len(server.requests) == 4  # nothing was sent after the cancel


async def test_leaving_a_stream_block_early_cancels_in_flight_requests() -> None:
    items = ["fast [[latency_ms:0]]", *[f"slow {i}" for i in range(20)]]
    async with serve(latency_s=2.0) as (server, client):
        runner = BatchRunner(client, concurrency=4)
        async with runner.stream(items) as stream:
            async for result in stream:
                assert result.index == 0
                assert result.ok
                await wait_until(lambda: server.in_flight == 4)
                break
        await assert_everything_released(server, client)
        assert len(server.requests) == 5
        assert runner.stats.done == 1


async def test_cancelling_a_task_iterating_a_stream_cleans_up() -> None:
    async with serve(latency_s=2.0) as (server, client):
        runner = BatchRunner(client, concurrency=3)

        async def consume() -> list[BatchResult]:
            async with runner.stream([f"slow {i}" for i in range(10)], ordered=True) as s:
                return [r async for r in s]

        task = asyncio.create_task(consume())
        await wait_until(lambda: server.in_flight == 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_everything_released(server, client)


# --- stats and hooks ------------------------------------------------------------------------------


async def test_stats_and_on_result_hook() -> None:
    calls: list[tuple[int, int, bool]] = []

    def hook(result: BatchResult, stats: BatchStats) -> None:
        assert stats is runner.stats
        calls.append((result.index, stats.done, result.ok))

    items: list[Any] = [f"prompt number {i} " + "word " * i for i in range(10)]
    items += ["gone [[fault:404]]", "also gone [[fault:404]]", {"nothing": True}]
    async with serve(latency_s=0.005) as (_, client):
        runner = BatchRunner(client, concurrency=4, on_result=hook)
        results = await runner.run(items)
    stats = runner.stats
    assert (stats.ok, stats.failed, stats.done) == (10, 3, 13)
    assert sorted(i for i, _, _ in calls) == list(range(13))  # once per item
    assert [done for _, done, _ in calls] == list(range(1, 14))
    ok = [r for r in results if r.ok]
    assert stats.input_tokens == sum(r.response.usage.input_tokens for r in ok if r.response)
    assert stats.output_tokens == sum(r.response.usage.output_tokens for r in ok if r.response)
    assert stats.input_tokens > 0
    assert stats.output_tokens > 0
    assert 0 < stats.p50 <= stats.p95 <= stats.p99
    assert stats.p99 <= max(r.latency_s for r in results)
    assert stats.finished_at is not None
    assert stats.wall_s > 0
    assert stats.requests_per_s > 0
    data = stats.as_dict()
    assert (data["ok"], data["failed"], data["done"]) == (10, 3, 13)
    assert data["input_tokens"] == stats.input_tokens
    assert "13 done: 10 ok, 3 failed" in stats.summary()


async def test_a_failing_hook_stops_the_batch_instead_of_losing_items() -> None:
    calls: list[int] = []

    def hook(result: BatchResult, stats: BatchStats) -> None:
        calls.append(result.index)
        if len(calls) == 3:
            raise RuntimeError("progress bar broke")

    async with serve(latency_s=0.01) as (server, client):
        runner = BatchRunner(client, concurrency=4, on_result=hook)
        with pytest.raises(BatchAbortedError, match="progress bar broke") as info:
            await runner.run([f"item {i}" for i in range(50)])
        await assert_everything_released(server, client)
    assert isinstance(info.value.__cause__, RuntimeError)
    # Called three times, never again after it raised, though other workers finished items.
    assert len(calls) == 3
    # Every item that finished is in the error, the one the hook failed on included.
    finished = {r.index for r in info.value.results}
    assert set(calls) <= finished
    assert all(r.ok for r in info.value.results)


def test_percentiles_use_nearest_rank() -> None:
    stats = BatchStats()
    assert stats.p50 == 0.0
    for i in range(1, 101):
        stats.record(BatchResult(index=i, custom_id=str(i), request={}, attempts=1, latency_s=i))
    assert (stats.p50, stats.p95, stats.p99) == (50, 95, 99)
    assert stats.failed == 100  # no response: a failure


# --- ordered streams -----------------------------------------------------------------------------


async def test_ordered_stream_yields_in_input_order_with_a_bounded_buffer() -> None:
    concurrency = 4
    source = Counted(40, lambda i: "slow first [[latency_ms:200]]" if i == 0 else f"item {i}")
    completed: list[int] = []
    seen: list[int] = []
    pulled_at: list[int] = []
    async with serve() as (_, client):
        runner = BatchRunner(
            client, concurrency=concurrency, on_result=lambda r, s: completed.append(r.index)
        )
        async with runner.stream(iter(source), ordered=True) as stream:
            async for result in stream:
                seen.append(result.index)
                pulled_at.append(source.pulled)
    assert seen == list(range(40))
    assert completed[0] != 0  # item 0 really finished later than others
    # While item 0 was slow, the reorder buffer stopped growing at its bound.
    assert pulled_at[0] <= 4 * concurrency
    for consumed, pulled in enumerate(pulled_at, start=1):
        assert pulled <= consumed + 4 * concurrency
