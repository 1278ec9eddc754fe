"""Issue 13, library side, against the mock over real sockets: budgets that hold, the two
kinds of 429 and pacing from the headers, the circuit breaker, results that survive, errors
that pickle, retry headers that are not numbers, file descriptors, stale connections.

Where a check involves time it is an upper bound on what the server saw (a slow machine only
makes it easier to pass), never "this was fast".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import pickle
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import reka_async
from reka_async import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    BatchAbortedError,
    BatchResult,
    BatchRunner,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryEvent,
    RetryPolicy,
)
from reka_async._exceptions import APIStatusError, RekaError
from reka_async.batch import RateBudget, TokenBound
from reka_async.batch.fds import fd_exhausted
from reka_async.testing import MockRekaServer

KEY = "test-key"
FAST = RetryPolicy(base=0.001, cap=0.01)


@asynccontextmanager
async def serve(
    *, client_kwargs: dict[str, Any] | None = None, **server_kwargs: Any
) -> AsyncIterator[tuple[MockRekaServer, AsyncClient]]:
    async with (
        MockRekaServer(api_key=KEY, **server_kwargs) as server,
        AsyncClient(
            KEY, server.base_url, **{"retry_policy": FAST, **(client_kwargs or {})}
        ) as client,
    ):
        yield server, client


def most_in_any_window(stamps: list[float], width: float) -> int:
    """The most requests the server received in any window of ``width`` seconds."""
    stamps = sorted(stamps)
    best = j = 0
    for i, start in enumerate(stamps):
        while j < len(stamps) and stamps[j] <= start + width:
            j += 1
        best = max(best, j - i)
    return best


# --- budgets that hold ---------------------------------------------------------------------


async def test_a_client_budget_holds_across_calls_streams_and_batches() -> None:
    rpm = 600.0  # 10 a second, burst 10
    async with serve(client_kwargs={"rpm": rpm}) as (server, client):
        runner_a = BatchRunner(client, concurrency=8)
        runner_b = BatchRunner(client, concurrency=8)

        async def stream_one(i: int) -> str:
            stream = client.chat.create_stream(
                messages=[{"role": "user", "content": f"s{i}"}], model="reka-flash"
            )
            return (await stream.final_response()).text

        await asyncio.gather(
            runner_a.run([f"a{i}" for i in range(12)]),
            runner_b.run([f"b{i}" for i in range(12)]),
            *(
                client.chat.create(
                    messages=[{"role": "user", "content": f"c{i}"}], model="reka-flash"
                )
                for i in range(4)
            ),
            *(stream_one(i) for i in range(4)),
        )
    stamps = [r.received_at for r in server.requests]
    assert len(stamps) == 32
    # The bucket admits its burst of 10 plus 10 a second. The server's arrival times are a
    # little later than the client's admissions, by a loaded loop's delay, and two
    # admitted apart may arrive together: 2 requests of slack for that. Budgets that did
    # not hold across the two runners and the direct calls would send three times the rate.
    for width in (0.0, 0.5, 1.0, 2.0):
        assert most_in_any_window(stamps, width) <= rpm * width / 60 + 10 + 2


async def test_a_runner_budget_is_shared_by_its_runs_even_concurrent_ones() -> None:
    rpm = 300.0  # 5 a second, burst 5: before, each run started with a full minute's worth
    async with serve() as (server, client):
        runner = BatchRunner(client, concurrency=16, rpm=rpm)
        first = await runner.run([f"x{i}" for i in range(6)])
        second, third = await asyncio.gather(
            runner.run([f"y{i}" for i in range(6)]), runner.run([f"z{i}" for i in range(6)])
        )
    assert all(r.ok for r in [*first, *second, *third])
    stamps = [r.received_at for r in server.requests]
    for width in (0.0, 0.5, 1.0, 3.0):
        assert most_in_any_window(stamps, width) <= rpm * width / 60 + 5


async def test_a_token_budget_charges_the_estimate_and_keeps_the_usage() -> None:
    budget = RateBudget(tpm=60_000, token_burst=60_000, clock=lambda: 0.0)
    async with serve(client_kwargs={"rate_budget": budget}) as (_, client):
        response = await client.chat.create(
            messages=[{"role": "user", "content": "hello"}], model="reka-flash", max_tokens=100
        )
        stream = client.chat.create_stream(
            messages=[{"role": "user", "content": "hello"}], model="reka-flash", max_tokens=100
        )
        streamed = await stream.final_response()
    assert client.rate_budget is budget
    assert budget.tokens is not None
    used = sum(r.usage.input_tokens + r.usage.output_tokens for r in (response, streamed))
    assert budget.tokens.level == pytest.approx(60_000 - used)


def test_the_sync_client_holds_the_same_budget() -> None:
    rpm = 600.0
    with MockRekaServer.in_thread(api_key=KEY) as server:
        with reka_async.Client(KEY, server.base_url, rpm=rpm, retry_policy=FAST) as client:
            assert client.rate_budget is not None
            assert client.rate_budget.rpm == pytest.approx(rpm)
            results = client.batch([f"s{i}" for i in range(15)], concurrency=8)
            for i in range(5):
                client.chat.create(
                    messages=[{"role": "user", "content": f"c{i}"}], model="reka-flash"
                )
        stamps = [r.received_at for r in server.requests]
    assert all(r.ok for r in results)
    assert len(stamps) == 20
    for width in (0.0, 0.5, 1.0):
        assert most_in_any_window(stamps, width) <= rpm * width / 60 + 10


def test_budget_options_are_checked() -> None:
    with pytest.raises(ValueError, match="rpm"):
        AsyncClient(KEY, "http://127.0.0.1:1/v1", rpm=-1)
    with pytest.raises(ValueError, match="not both"):
        AsyncClient(KEY, "http://127.0.0.1:1/v1", rpm=10, rate_budget=RateBudget(rpm=5))


# --- two kinds of 429, and pacing from the headers ----------------------------------------


async def test_a_spent_quota_pauses_the_client_an_overload_429_only_its_request() -> None:
    events: list[RetryEvent] = []
    async with serve(retry_after_s=0.02) as (_, client):
        await client.chat.send_body(
            {
                "model": "reka-flash",
                "messages": [{"role": "user", "content": "[[fault:overloaded*1]]"}],
            },
            on_retry=events.append,
        )
        assert client.cooldown_remaining == 0.0  # nobody else waited
        await client.chat.send_body(
            {
                "model": "reka-flash",
                "messages": [{"role": "user", "content": "[[fault:rate_limit*1]]"}],
            },
            on_retry=events.append,
        )
    assert [(e.rate_limited, e.quota_spent) for e in events] == [(True, False), (True, True)]


async def test_a_spent_quota_429_trips_the_shared_cooldown() -> None:
    async with serve(retry_after_s=30.0) as (_, client):
        with pytest.raises(RateLimitError):
            await client.chat.create(
                messages=[{"role": "user", "content": "[[fault:rate_limit]]"}],
                model="reka-flash",
                max_retries=0,
            )
        assert client.cooldown_remaining > 20.0
    async with serve(retry_after_s=30.0) as (_, client):
        with pytest.raises(RateLimitError):
            await client.chat.create(
                messages=[{"role": "user", "content": "[[fault:overloaded]]"}],
                model="reka-flash",
                max_retries=0,
            )
        assert client.cooldown_remaining == 0.0


async def test_pacing_from_the_headers_uses_the_window_without_overrunning_it() -> None:
    # A 10-request window of 0.4 s; 100 items at concurrency 16. Unpaced, every window would
    # see 16 requests at once and refuse 6. Paced, only the first two windows (before the
    # window's length is known) can be overrun.
    async with serve(rate_limit="10/0.4s", retry_after_s=0.05) as (server, client):
        runner = BatchRunner(client, concurrency=16)
        results = await runner.run([f"p{i}" for i in range(100)])
    assert all(r.ok for r in results)
    faults = [r.fault for r in sorted(server.requests, key=lambda r: r.received_at)]
    refused = faults.count("rate_limit")
    assert refused <= 2 * 16, refused
    # Unpaced, the second half (five windows) would hold about 30 refusals; paced, at most a
    # stray one at each window edge, where the edge and a pause's wake-up cross on the real
    # clock (a loaded machine saw 3 of them; the bound of one per edge is what pacing holds).
    assert faults[len(faults) // 2 :].count("rate_limit") <= 5
    assert client.quota.limit == 10
    assert client.quota.window_s == pytest.approx(0.4, abs=0.01)
    # The rate starts at the window's 25 req/s; the pacer then probes above it a step at a
    # time while the queue waits, and a 429 undoes the probe (issue 27): the refusals above
    # are what it may cost, so the rate stays near the window's, never far above it.
    assert 25.0 * 0.95 <= (runner.stats.pacing_rate or 0.0) <= 25.0 * 1.25
    assert runner.stats.quota_pauses == refused  # each refusal paused the client, none failed


def test_the_mock_rate_limit_spec_is_checked() -> None:
    with pytest.raises(ValueError, match="REQUESTS/WINDOW"):
        MockRekaServer(rate_limit="fast")
    with pytest.raises(ValueError, match="not both"):
        MockRekaServer(rate_limit="5/s", rpm_limit=5)


# --- the circuit breaker --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error_type", "words"),
    [
        ("401", AuthenticationError, "API key was refused"),
        ("403", PermissionDeniedError, "may not"),
        ("credits", InsufficientCreditsError, "out of credits"),
    ],
)
async def test_fatal_errors_stop_the_batch_at_once(
    fault: str, error_type: type[Exception], words: str
) -> None:
    items = [f"item {i} [[fault:{fault}]]" for i in range(200)]
    async with serve() as (server, client):
        runner = BatchRunner(client, concurrency=4)
        with pytest.raises(BatchAbortedError, match=words) as info:
            await runner.run(items)
    assert isinstance(info.value.cause, error_type)
    assert info.value.results  # what finished is kept
    assert len(server.requests) <= 4 + 4  # the in-flight ones, not the 200 items


async def test_a_server_wait_above_the_cap_stops_the_batch_with_the_wait() -> None:
    items = [f"item {i} [[fault:rate_limit]]" for i in range(200)]
    async with serve(retry_after_s=99_999) as (server, client):
        runner = BatchRunner(client, concurrency=4)
        with pytest.raises(BatchAbortedError, match="99999 s") as info:
            await runner.run(items)
    assert isinstance(info.value.cause, RateLimitError)
    assert len(server.requests) <= 8


async def test_an_unknown_model_fails_its_items_without_sending_them() -> None:
    items: list[Any] = [{"prompt": f"q{i}", "model": "no-such-model"} for i in range(30)]
    items += [f"fine {i}" for i in range(5)]
    async with serve(models=["reka-flash"]) as (server, client):
        results = await BatchRunner(client, concurrency=1).run(items)
    assert [r.ok for r in results[30:]] == [True] * 5
    assert all(isinstance(r.error, NotFoundError) for r in results[:30])
    assert sum(1 for r in server.requests if r.body.get("model") == "no-such-model") == 1
    assert "not sent" in str(results[5].error)


async def test_the_breaker_can_be_turned_off() -> None:
    items = [f"item {i} [[fault:401]]" for i in range(6)]
    async with serve() as (server, client):
        results = await BatchRunner(client, concurrency=2, circuit_breaker=False).run(items)
    assert all(isinstance(r.error, AuthenticationError) for r in results)
    assert len(server.requests) == 6


# --- results survive ------------------------------------------------------------------------


async def test_a_cancelled_run_still_carries_what_finished() -> None:
    items = ["quick 0", "quick 1", *[f"slow {i} [[latency_ms:5000]]" for i in range(4)]]
    async with serve() as (server, client):
        done: list[BatchResult] = []
        two_done = asyncio.Event()

        def hook(result: BatchResult, stats: object) -> None:
            done.append(result)
            if len(done) == 2:
                two_done.set()

        runner = BatchRunner(client, concurrency=4, on_result=hook)
        task = asyncio.create_task(runner.run(items))
        await asyncio.wait_for(two_done.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
    # The finished results are on the runner; the CancelledError carries them too when the
    # awaiter sees the instance run() raised (Python 3.11+; 3.10's Task makes a new one).
    finished = runner.partial_results
    assert [r.custom_id for r in finished] == ["0", "1"]
    carried = getattr(info.value, "results", finished)
    assert carried == finished
    assert server.in_flight == 0


# --- errors pickle --------------------------------------------------------------------------


def _every_error_class() -> list[type[RekaError]]:
    return [
        obj
        for name in reka_async.__all__
        if isinstance(obj := getattr(reka_async, name), type) and issubclass(obj, RekaError)
    ]


def _instance(cls: type[RekaError]) -> RekaError:
    if issubclass(cls, APIStatusError):
        return cls("HTTP 404: nope", status_code=404, body={"x": 1}, headers={"a": "b"})
    if cls is reka_async.APIResponseValidationError:
        return cls("bad body", status_code=200, body="{")
    if cls is reka_async.StreamError:
        return cls("broke", partial_text="half")
    if cls is reka_async.ResponseTooLargeError:
        return cls("too big", limit=10, request_id="r1")
    if cls is reka_async.UsageAboveBoundError:
        bound = TokenBound(input=10, output=5)
        return cls("billed above", usage_input=11, usage_output=5, bound=bound)
    if cls is BatchAbortedError:
        exc = cls("stopped", cause=ValueError("why"))
        exc.results = [BatchResult(index=0, custom_id="a", request=None, error=exc)]
        return exc
    return cls("message")


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__name__)
def test_every_error_class_round_trips_pickle(cls: type[RekaError]) -> None:
    original = _instance(cls)
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert {k: v for k, v in vars(copy).items() if k != "results"} == {
        k: v for k, v in vars(original).items() if k != "results" and k != "cause"
    } | ({"cause": copy.cause} if "cause" in vars(original) else {})


def _fail_in_a_worker(n: int) -> BatchResult:
    error = NotFoundError(f"HTTP 404: model {n}", status_code=404, body=None, headers={})
    return BatchResult(index=n, custom_id=str(n), request={"model": "x"}, error=error)


def test_a_process_pool_worker_can_return_a_failed_result() -> None:
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        results = list(pool.map(_fail_in_a_worker, range(3)))
    assert [type(r.error) for r in results] == [NotFoundError] * 3
    assert "model 2" in str(results[2].error)


# --- retry headers that are not numbers ----------------------------------------------------


@pytest.mark.parametrize("fault", ["bad_retry_after", "nan_retry_after", "negative_retry_after_ms"])
async def test_an_unusable_retry_header_falls_back_to_the_backoff(fault: str) -> None:
    events: list[RetryEvent] = []
    policy = RetryPolicy(max_retries=2, base=0.02, cap=0.02)
    async with serve(client_kwargs={"retry_policy": policy}) as (_, client):
        await client.chat.send_body(
            {
                "model": "reka-flash",
                "messages": [{"role": "user", "content": f"[[fault:{fault}*2]]"}],
            },
            on_retry=events.append,
        )
    # The computed backoff (0.75-1.0 x 20 ms), not an immediate retry at 0 s.
    assert [0.015 <= e.delay <= 0.02 for e in events] == [True, True]


# --- file descriptors ---------------------------------------------------------------------


def test_running_out_of_descriptors_is_recognised_through_the_chain() -> None:
    error = APIConnectionError("POST /chat: cannot connect")
    error.__cause__ = OSError(errno.EMFILE, "Too many open files")
    assert fd_exhausted(error)
    assert not fd_exhausted(APIConnectionError("POST /chat: refused"))


# --- stale keep-alive connections ----------------------------------------------------------


class _StaleServer:
    """Answers the first request of each connection with keep-alive, then drops the
    connection when a second request arrives on it (a stale keep-alive connection)."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> _StaleServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def _read_request(self, reader: asyncio.StreamReader) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        self.requests += 1
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._read_request(reader)
            body = (
                b'{"id":"x","model":"m","responses":[{"finish_reason":"stop","message":'
                b'{"role":"assistant","content":"hi"}}],"usage":{"input_tokens":1,'
                b'"output_tokens":1}}'
            )
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
            await self._read_request(reader)  # the second request on this connection...
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()  # ...is dropped unanswered


async def test_a_stale_keep_alive_connection_is_retried_once_even_with_no_retries() -> None:
    async with _StaleServer() as server:
        async with AsyncClient(KEY, server.base_url, max_retries=0) as client:
            for _ in range(3):  # each call after the first reuses a connection that drops
                response = await client.chat.create(
                    messages=[{"role": "user", "content": "hi"}], model="reka-flash"
                )
                assert response.text == "hi"
        assert server.requests == 5  # 3 answered, 2 dropped on reused connections


async def test_the_stale_retry_is_off_with_may_bill_twice_false() -> None:
    async with _StaleServer() as server:
        policy = RetryPolicy(max_retries=0, may_bill_twice=False)
        async with AsyncClient(KEY, server.base_url, retry_policy=policy) as client:
            await client.chat.create(
                messages=[{"role": "user", "content": "hi"}], model="reka-flash"
            )
            with pytest.raises(APIConnectionError):
                await client.chat.create(
                    messages=[{"role": "user", "content": "hi"}], model="reka-flash"
                )


async def test_a_drop_on_a_fresh_connection_is_not_retried_with_no_retries() -> None:
    async with serve(client_kwargs={"max_retries": 0}) as (server, client):
        with pytest.raises(APIConnectionError):
            await client.chat.create(
                messages=[{"role": "user", "content": "[[fault:drop]]"}], model="reka-flash"
            )
    assert len(server.requests) == 1
