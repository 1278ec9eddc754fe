"""Fault soak: thousands of requests against a mock injecting ~10 % faults of every kind.

Every input must end exactly once, as a success or as a typed error; retryable faults must end
as successes; no connection may stay acquired; no warning may be emitted (filterwarnings=error).

The default suite runs 10,000 batch requests and 500 streams; ``nox -s soak`` runs more
(``REKA_SOAK_N``, ``REKA_SOAK_STREAMS``).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os

from reka_async import (
    APIResponseValidationError,
    AsyncClient,
    BatchRunner,
    InsufficientCreditsError,
    RekaError,
    RetryPolicy,
    StreamError,
    Timeout,
)
from reka_async.testing import MockRekaServer
from reka_async.types import ClientState

N_BATCH = int(os.environ.get("REKA_SOAK_N", "10000"))
N_STREAMS = int(os.environ.get("REKA_SOAK_STREAMS", "500"))

# Faults a retry can get past; the ones left out below are answers that look final.
RETRYABLE = ("500", "502", "503", "rate_limit", "drop", "cut", "slow_first_byte", "html")
FINAL = ("truncated_json", "wrong_shape")

# Only these error types may end an item: a bad 200 body, or (on purpose) no credits.
ALLOWED_BATCH_ERRORS = (APIResponseValidationError, InsufficientCreditsError)


def _server(kinds: tuple[str, ...] = RETRYABLE + FINAL) -> MockRekaServer:
    return MockRekaServer(
        api_key="soak-key",
        fault_rate=0.10,
        fault_kinds=kinds,
        seed=20261125,
        retry_after_s=0.02,
        slow_first_byte_s=2.0,
        record_requests=True,
    )


def _client(server: MockRekaServer) -> AsyncClient:
    return AsyncClient(
        "soak-key",
        server.base_url,
        max_retries=8,
        timeout=Timeout(connect=2.0, read=0.3, total=10.0),
        retry_policy=RetryPolicy(base=0.001, cap=0.01),
    )


def _assert_pool_released(client: AsyncClient) -> None:
    gc.collect()
    assert client.state is ClientState.OPEN
    assert client.connections_in_use == 0


async def test_batch_soak_every_input_ends_exactly_once() -> None:
    credits_every = 997  # a few items deliberately hit the out-of-credits 429
    items = [
        {
            "custom_id": f"soak-{i}",
            "prompt": f"question {i}" + (" [[fault:credits]]" if i % credits_every == 5 else ""),
        }
        for i in range(N_BATCH)
    ]
    async with _server() as server, _client(server) as client:
        runner = BatchRunner(client, concurrency=64, max_tokens=32, circuit_breaker=False)
        results = await runner.run(items)

        assert len(results) == N_BATCH
        ids = collections.Counter(r.custom_id for r in results)
        assert set(ids) == {f"soak-{i}" for i in range(N_BATCH)}
        assert max(ids.values()) == 1

        faults = collections.Counter(r.fault for r in server.requests if r.fault)
        assert set(RETRYABLE) <= set(faults), faults  # the soak really exercised every kind

        for result in results:
            i = int(result.custom_id.split("-")[1])
            if result.ok:
                assert result.text == f"Mock reply to: question {i}"
            else:
                # Nothing retryable may end an item: only final answers do.
                assert isinstance(result.error, ALLOWED_BATCH_ERRORS), result.error
        credit_failures = [r for r in results if isinstance(r.error, InsufficientCreditsError)]
        assert len(credit_failures) == len(range(5, N_BATCH, credits_every))
        assert runner.stats.ok + runner.stats.failed == N_BATCH
        assert runner.stats.retried > 0
        _assert_pool_released(client)
        # The figures quoted in docs/reliability.md (visible with ``-s``).
        print(
            f"\nsoak batch: {N_BATCH} items, {len(server.requests)} requests, "
            f"{sum(faults.values())} faults {dict(sorted(faults.items()))}; "
            f"{runner.stats.ok} ok, {runner.stats.failed} failed "
            f"({len(credit_failures)} out-of-credits on purpose, "
            f"{runner.stats.failed - len(credit_failures)} bad 200 bodies); "
            f"{runner.stats.retried} items retried; {runner.stats.wall_s:.1f} s"
        )


async def _one_stream(client: AsyncClient, i: int) -> tuple[str, str | BaseException]:
    prompt = f"stream {i}"
    try:
        stream = client.chat.create_stream(
            messages=[{"role": "user", "content": prompt}], model="reka-flash"
        )
        async with stream:
            final = await stream.final_response()
        return prompt, final.text
    except RekaError as exc:
        return prompt, exc


async def test_stream_soak_ends_in_text_or_typed_error() -> None:
    # Streams also get error events in the middle.
    async with _server((*RETRYABLE, "error_event")) as server, _client(server) as client:
        semaphore = asyncio.Semaphore(32)

        async def bounded(i: int) -> tuple[str, str | BaseException]:
            async with semaphore:
                return await _one_stream(client, i)

        outcomes = await asyncio.gather(*(bounded(i) for i in range(N_STREAMS)))
        assert len(outcomes) == N_STREAMS
        for prompt, outcome in outcomes:
            if isinstance(outcome, BaseException):
                # Only a failure after text was yielded, or an error event, may end a stream.
                assert isinstance(outcome, (StreamError, APIResponseValidationError)), outcome
            else:
                assert outcome == f"Mock reply to: {prompt}"
        completed = sum(isinstance(o, str) for _, o in outcomes)
        assert completed > N_STREAMS * 0.8
        _assert_pool_released(client)
        print(
            f"\nsoak streams: {N_STREAMS} streams, {len(server.requests)} requests, "
            f"{sum(1 for r in server.requests if r.fault)} faults; {completed} completed, "
            f"{N_STREAMS - completed} typed errors"
        )
