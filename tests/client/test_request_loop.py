"""The attempt-level seam: ``AsyncClient(transport=MockTransport(handler))``, and the one request
loop above it (retries, hooks, pacing, the accounting of every budget per attempt)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest
from _ray_fakes import LocalLimiter
from _seam import answers, client_over

from reka_async import (
    APIConnectionError,
    AsyncClient,
    InternalServerError,
    RateLimitError,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    RetryPolicy,
    StreamError,
    Usage,
)
from reka_async.batch import CostBudget, PriceTable, RateBudget
from reka_async.testing import MockResponse, MockTransport, sse
from reka_async.types import AsyncTransport, Budget

HI = [{"role": "user", "content": "Hi"}]


def native(text: str = "Hello", *, input_tokens: int = 3, output_tokens: int = 5) -> dict[str, Any]:
    return {
        "id": "chat-1",
        "model": "reka-flash",
        "responses": [{"finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def chunk(text: str, finish: str | None = None, usage: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "chat-1",
        "model": "reka-flash",
        "responses": [{"finish_reason": finish, "chunk": {"role": "assistant", "content": text}}],
    }
    if usage:
        event["usage"] = {"input_tokens": 3, "output_tokens": 7}
    return event


class RecordingBudget:
    """A ``Budget`` that reserves a fixed amount and records every call of the protocol."""

    def __init__(self, amount: float = 100.0) -> None:
        self.amount = amount
        self.reserved: list[float] = []
        self.settled: list[tuple[float, float | None]] = []

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        self.reserved.append(self.amount)
        return self.amount

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        return float(usage.input_tokens + usage.output_tokens)

    def settle(self, reserved: float, used: float | None) -> None:
        self.settled.append((reserved, used))

    @property
    def held(self) -> float:
        """What is charged now: every reservation, less refunds, corrected by usage."""
        return sum(self.reserved) - sum(r - (r if u is None else u) for r, u in self.settled)


async def send(client: AsyncClient, messages: Any, *, stream: bool) -> None:
    """One call, plain or streamed to its end."""
    if stream:
        async for _ in client.chat.create_stream(model="reka-flash", messages=messages):
            pass
    else:
        await client.chat.create(model="reka-flash", messages=messages)


# --- the seam -----------------------------------------------------------------------------


def test_mock_transport_has_the_shape_of_the_seam() -> None:
    assert isinstance(MockTransport(lambda request: MockResponse()), AsyncTransport)
    assert isinstance(RecordingBudget(), Budget)


async def test_the_handler_sees_the_whole_request() -> None:
    transport = answers(MockResponse(json=native()))
    async with client_over(transport, default_headers={"X-Trace": "t1"}) as client:
        response = await client.chat.create(model="reka-flash", messages=HI, max_tokens=9)
    assert response.text == "Hello"
    (request,) = transport.requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.reka.ai/v1/chat"
    assert request.headers["X-Api-Key"] == "sk-test"
    assert request.headers["X-Trace"] == "t1"
    assert request.json() == {"model": "reka-flash", "messages": HI, "max_tokens": 9}
    assert request.stream is False
    assert "sk-test" not in repr(request)


async def test_the_openai_dialect_sends_bearer_and_its_path() -> None:
    reply = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "reka-flash",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Yo"}}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    transport = answers(MockResponse(json=reply))
    async with client_over(transport, api="openai") as client:
        response = await client.chat.create(model="reka-flash", messages=HI)
    assert response.text == "Yo"
    (request,) = transport.requests
    assert request.url.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"


async def test_the_client_closes_the_transport_and_releases_each_answer() -> None:
    transport = answers(MockResponse(json=native()))
    async with client_over(transport) as client:
        await client.chat.create(model="reka-flash", messages=HI)
    assert transport.closed
    assert transport.answers[0].released


def test_network_options_cannot_be_given_with_a_transport() -> None:
    with pytest.raises(ValueError, match="configure the transport you pass"):
        AsyncClient("sk", transport=answers(), proxy="http://127.0.0.1:3128")
    with pytest.raises(TypeError, match="expected an AsyncTransport"):
        AsyncClient("sk", transport=object())  # type: ignore[arg-type]


# --- the loop runs above the seam ----------------------------------------------------------


async def test_a_429_then_200_is_one_retry_with_hooks_per_attempt_and_one_net_charge() -> None:
    transport = answers(
        MockResponse(
            429, json={"error": {"type": "rate_limit_error"}}, headers={"retry-after": "0"}
        ),
        MockResponse(json=native(input_tokens=4, output_tokens=6)),
    )
    started: list[RequestEvent] = []
    ended: list[ResponseEvent] = []
    retries: list[RetryEvent] = []
    budget = RecordingBudget(amount=100.0)
    async with client_over(
        transport,
        on_request=started.append,
        on_response=ended.append,
        on_retry=retries.append,
        rate_budget=budget,
    ) as client:
        response = await client.chat.create(model="reka-flash", messages=HI)
    assert response.text == "Hello"
    assert len(transport.requests) == 2
    assert [e.attempt for e in started] == [0, 1]
    assert [e.status_code for e in ended] == [429, 200]
    assert len(retries) == 1
    assert retries[0].rate_limited
    # One reservation per attempt: the refused one refunded, the answered one settled to usage.
    assert budget.reserved == [100.0, 100.0]
    assert budget.settled == [(100.0, 0.0), (100.0, 10.0)]
    assert budget.held == 10.0


async def test_a_status_that_is_not_retried_is_raised_and_refunded() -> None:
    transport = answers(MockResponse(500, content="<html>oops</html>"))
    budget = RecordingBudget()
    async with client_over(transport, rate_budget=budget, max_retries=0) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.chat.create(model="reka-flash", messages=HI)
    assert "oops" in (caught.value.body or "")
    assert budget.settled == [(100.0, 0.0)]


async def test_a_dropped_connection_is_retried_and_its_reservation_kept() -> None:
    transport = answers(ConnectionResetError("reset by peer"), MockResponse(json=native()))
    budget = RecordingBudget()
    retries: list[RetryEvent] = []
    async with client_over(transport, rate_budget=budget, on_retry=retries.append) as client:
        await client.chat.create(model="reka-flash", messages=HI)
    assert retries[0].may_bill_twice
    assert budget.settled == [(100.0, None), (100.0, 8.0)]  # the first may have been billed


async def test_a_refused_connection_is_refunded() -> None:
    transport = answers(ConnectionRefusedError("refused"))
    budget = RecordingBudget()
    async with client_over(transport, rate_budget=budget, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.chat.create(model="reka-flash", messages=HI)
    assert not caught.value.may_have_reached_server
    assert budget.settled == [(100.0, 0.0)]


async def test_a_body_of_the_wrong_shape_keeps_its_reservation() -> None:
    transport = answers(MockResponse(json={"unexpected": True}))
    budget = RecordingBudget()
    async with client_over(transport, rate_budget=budget) as client:
        with pytest.raises(Exception, match="expected shape"):
            await client.chat.create(model="reka-flash", messages=HI)
    assert budget.settled == [(100.0, None)]


async def test_a_cancelled_attempt_keeps_its_reservation() -> None:
    started = asyncio.Event()

    async def handler(request: Any) -> MockResponse:
        started.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    budget = RecordingBudget()
    async with client_over(MockTransport(handler), rate_budget=budget) as client:
        task = asyncio.create_task(client.chat.create(model="reka-flash", messages=HI))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert budget.settled == [(100.0, None)]


async def test_a_quota_429_trips_the_shared_cooldown() -> None:
    spent = {"retry-after": "0.01", "x-ratelimit-remaining": "0", "x-ratelimit-limit": "5"}
    transport = answers(
        MockResponse(429, json={"error": {"type": "rate_limit_error"}}, headers=spent),
        MockResponse(json=native()),
    )
    retries: list[RetryEvent] = []
    async with client_over(transport, on_retry=retries.append) as client:
        await client.chat.create(model="reka-flash", messages=HI)
    assert retries[0].quota_spent


async def test_a_429_whose_tokens_are_spent_pauses_the_client_until_the_tokens_reset() -> None:
    # Requests remain, tokens do not (OpenAI's token headers, no retry-after): a quota 429.
    # Its wait is the token window's reset, and it is the whole client's (the cooldown).
    spent = {
        "x-ratelimit-limit": "100",
        "x-ratelimit-remaining": "40",
        "x-ratelimit-reset": "0.9",
        "x-ratelimit-limit-tokens": "2000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "50ms",
    }
    transport = answers(
        MockResponse(429, json={"error": {"type": "rate_limit_error"}}, headers=spent),
        MockResponse(json=native()),
    )
    seen: list[tuple[RetryEvent, float]] = []
    async with client_over(transport, max_retries=1) as client:

        def on_retry(event: RetryEvent) -> None:
            seen.append((event, client.cooldown_remaining))

        await client.with_options(on_retry=on_retry).chat.create(model="reka-flash", messages=HI)
    [(event, paused)] = seen
    assert (event.rate_limit_kind, event.quota_spent, event.counted) == ("quota", True, False)
    assert event.delay >= 0.05  # the token window's reset, jitter on top
    assert paused >= 0.045  # the client's pause, not only this request's wait


async def test_an_overload_429_out_of_retries_is_raised() -> None:
    # Headers that say quota remains: an overload answer about this request, which spends a
    # retry as any retryable error does.
    overload = {"retry-after": "0", "x-ratelimit-remaining": "5"}
    transport = answers(
        *[MockResponse(429, json={"error": {"type": "rate_limit_error"}}, headers=overload)] * 2
    )
    async with client_over(transport, max_retries=1) as client:
        with pytest.raises(RateLimitError):
            await client.chat.create(model="reka-flash", messages=HI)
    assert len(transport.requests) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "0.001"},  # unlabelled: no rate-limit header at all
        {"retry-after": "0.001", "x-ratelimit-remaining": "0"},  # quota
        {"retry-after-ms": "1", "x-ratelimit-remaining-requests": "0"},  # OpenAI's quota
        {"anthropic-ratelimit-requests-remaining": "0", "retry-after": "0.001"},
    ],
    ids=["unlabelled", "quota", "openai-quota", "anthropic-quota"],
)
async def test_rate_limit_429s_spend_no_retries(headers: dict[str, str]) -> None:
    refused = MockResponse(429, json={"error": {"type": "rate_limit_error"}}, headers=headers)
    transport = answers(*[refused] * 5, MockResponse(json=native()))
    events: list[RetryEvent] = []
    async with client_over(transport, max_retries=1, on_retry=events.append) as client:
        await client.chat.create(model="reka-flash", messages=HI)
    assert len(transport.requests) == 6
    assert [e.counted for e in events] == [False] * 5


async def test_rate_limit_429s_are_raised_past_the_total_wait_per_request() -> None:
    refused = MockResponse(
        429, json={"error": {"type": "rate_limit_error"}}, headers={"retry-after": "0.02"}
    )
    transport = answers(*[refused] * 10)
    policy = RetryPolicy(base=0.001, max_rate_limit_wait=0.1)
    async with client_over(transport, retry_policy=policy) as client:
        with pytest.raises(RateLimitError):
            await client.chat.create(model="reka-flash", messages=HI)
    # Each wait is 0.02 s plus up to 0.052 s of jitter: 2 to 5 of them fit in 0.1 s.
    assert 2 <= len(transport.requests) <= 6


async def test_max_retries_zero_still_means_no_retry_on_a_rate_limit_429() -> None:
    refused = MockResponse(
        429, json={"error": {"type": "rate_limit_error"}}, headers={"retry-after": "0"}
    )
    transport = answers(refused)
    async with client_over(transport, max_retries=0) as client:
        with pytest.raises(RateLimitError):
            await client.chat.create(model="reka-flash", messages=HI)
    assert len(transport.requests) == 1


# --- streams through the same loop ---------------------------------------------------------


async def test_a_stream_through_the_seam_settles_to_its_usage() -> None:
    transport = answers(
        MockResponse(chunks=sse(chunk("Hel"), chunk("Hello"), chunk("Hello", "stop", usage=True)))
    )
    budget = RecordingBudget()
    client = client_over(transport, rate_budget=budget)
    async with client, client.chat.create_stream(model="reka-flash", messages=HI) as stream:
        deltas = [c.delta async for c in stream]
    assert "".join(deltas) == "Hello"
    assert transport.requests[0].stream
    assert transport.requests[0].headers["Accept"] == "text/event-stream"
    assert budget.settled == [(100.0, 10.0)]
    assert transport.answers[0].released


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_refused_request_refunds_its_tokens_at_once(stream: bool) -> None:
    """The regression of the issue: a stream answered 500 kept its token charge (with
    ``tpm=1200``, the next stream of the same size waited about 45 s); a plain call refunded.
    Both refund now, the same way."""
    clock = [1000.0]
    budget = RateBudget(tpm=1200, token_burst=5000, clock=lambda: clock[0])
    transport = answers(MockResponse(500, json={"error": {"type": "server_error"}}))
    words = " ".join(["word"] * 400)
    messages = [{"role": "user", "content": words}]
    async with client_over(transport, rate_budget=budget, max_retries=0) as client:
        with pytest.raises(InternalServerError):
            await send(client, messages, stream=stream)
    assert budget.tokens is not None
    assert budget.tokens.level == pytest.approx(5000)  # the whole estimate back, at once


async def test_a_stream_broken_before_its_first_event_goes_back_to_the_loop() -> None:
    transport = answers(
        MockResponse(chunks=[b": keep-alive\n\n", ConnectionResetError("dropped")]),
        MockResponse(chunks=sse(chunk("Hi", "stop", usage=True))),
    )
    budget = RecordingBudget()
    retries: list[RetryEvent] = []
    async with client_over(transport, rate_budget=budget, on_retry=retries.append) as client:
        stream = client.chat.create_stream(model="reka-flash", messages=HI)
        assert (await stream.final_response()).text == "Hi"
    assert len(transport.requests) == 2
    assert len(retries) == 1
    assert retries[0].may_bill_twice
    assert budget.settled == [(100.0, None), (100.0, 10.0)]


async def test_a_stream_broken_after_its_first_event_is_a_stream_error_and_kept() -> None:
    transport = answers(
        MockResponse(chunks=[*sse(chunk("Hel"), done=False), ConnectionResetError("dropped")])
    )
    budget = RecordingBudget()
    async with client_over(transport, rate_budget=budget) as client:
        with pytest.raises(StreamError) as caught:
            async for _ in client.chat.create_stream(model="reka-flash", messages=HI):
                pass
    assert caught.value.partial_text == "Hel"
    assert len(transport.requests) == 1  # never retried once it had started
    assert budget.settled == [(100.0, None)]
    assert not transport.answers[0].released


async def test_a_stream_left_early_keeps_its_reservation_and_drops_the_connection() -> None:
    transport = answers(MockResponse(chunks=sse(chunk("a"), chunk("ab"), chunk("abc", "stop"))))
    budget = RecordingBudget()
    client = client_over(transport, rate_budget=budget)
    async with client, client.chat.create_stream(model="reka-flash", messages=HI) as stream:
        async for _ in stream:
            break
    assert budget.settled == [(100.0, None)]
    assert transport.answers[0].closed
    assert not transport.answers[0].released


# --- a cost budget per attempt ------------------------------------------------------------


async def test_a_retry_that_may_have_been_billed_is_charged_again() -> None:
    prices = PriceTable({"reka-flash": {"input": 1_000_000.0, "output": 1_000_000.0}})
    budget = CostBudget(1e9, prices)
    transport = answers(TimeoutError("read timed out"), MockResponse(json=native()))
    body = {"model": "reka-flash", "messages": HI, "max_tokens": 10}
    worst = prices.worst_case(body)
    assert worst is not None
    async with client_over(transport) as client:
        await client.chat.send_body(body, budgets=(budget,))
    # The timed-out attempt keeps its worst case; the answered one costs its usage (8 tokens).
    assert budget.spent == pytest.approx(worst + 8.0)
    assert budget.reserved == pytest.approx(0.0)


async def test_the_request_body_sent_is_the_budgets_payload() -> None:
    seen: list[Any] = []

    class Seeing(RecordingBudget):
        async def reserve(self, body: Mapping[str, Any] | None) -> float:
            seen.append(body)
            return await super().reserve(body)

    transport = answers(MockResponse(json=native()))
    async with client_over(transport, rate_budget=Seeing()) as client:
        await client.chat.create(model="reka-flash", messages=HI)
    assert seen == [json.loads(transport.requests[0].body)]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_refused_request_refunds_its_tokens_over_a_real_socket(stream: bool) -> None:
    """The same regression against the mock server over a socket (this fails on the code
    before the one request loop: the refused stream kept its whole estimate)."""
    from reka_async.testing import MockRekaServer

    clock = [1000.0]
    budget = RateBudget(tpm=1200, token_burst=5000, clock=lambda: clock[0])
    messages = [{"role": "user", "content": " ".join(["word"] * 400)}]
    async with MockRekaServer() as server:
        server.inject("500")
        async with AsyncClient(
            "sk-test", base_url=server.base_url, rate_budget=budget, max_retries=0
        ) as client:
            with pytest.raises(InternalServerError):
                await send(client, messages, stream=stream)
    assert budget.tokens is not None
    assert budget.tokens.level == pytest.approx(5000)


async def test_a_reused_connection_that_drops_is_retried_once_as_a_new_attempt() -> None:
    """A transport that sent over an idle pooled connection says so (``request.reused``); a
    drop before any answer is then retried once, at once, outside ``max_retries``."""

    def handler(request: Any) -> MockResponse:
        if len(transport.requests) == 1:
            request.reused = True
            raise ConnectionResetError("the server had closed it")
        return MockResponse(json=native())

    transport = MockTransport(handler)
    started: list[RequestEvent] = []
    retries: list[RetryEvent] = []
    budget = RecordingBudget()
    async with client_over(
        transport,
        max_retries=0,
        on_request=started.append,
        on_retry=retries.append,
        rate_budget=budget,
    ) as client:
        assert (await client.chat.create(model="reka-flash", messages=HI)).text == "Hello"
    assert [e.attempt for e in started] == [0, 1]
    assert [(r.attempt, r.delay, r.may_bill_twice) for r in retries] == [(0, 0.0, True)]
    assert budget.settled == [(100.0, None), (100.0, 8.0)]


async def test_a_drop_on_a_fresh_connection_counts_against_max_retries() -> None:
    transport = answers(ConnectionResetError("dropped"), MockResponse(json=native()))
    async with client_over(transport, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.chat.create(model="reka-flash", messages=HI)
    assert len(transport.requests) == 1


async def test_rays_shared_budget_follows_the_same_protocol() -> None:
    """Ray's job-wide budget is reserved per attempt by the client: a refused attempt gives
    its tokens back to the worker's balance, an answer settles to its usage."""
    from reka_async.integrations.ray._limiter import SharedBudget

    limiter = LocalLimiter()
    budget = SharedBudget(limiter)
    assert isinstance(budget, Budget)
    transport = answers(
        MockResponse(503, json={"error": {"type": "server_error"}}), MockResponse(json=native())
    )
    async with client_over(transport, rate_budget=budget) as client:
        await client.chat.create(model="reka-flash", messages=HI, max_tokens=50)
    # Granted once (a chunk of 1e5), the refused attempt's estimate refunded to the balance,
    # the answered one's corrected to its 8 tokens: the balance is the chunk less 8.
    assert limiter.granted == 1e5
    assert budget.balance[1] == pytest.approx(1e5 - 8)


# --- attacks on the accounting ------------------------------------------------------------


async def test_a_stream_dropped_without_closing_gives_its_reservation_back_to_the_count() -> None:
    """A caller that breaks out of ``async for`` and drops the stream (no ``aclose``): its
    attempt is settled as unknown when the stream is collected, so a cost budget does not
    count it in flight for ever (which would stall every later reservation)."""
    import gc

    prices = PriceTable({"reka-flash": {"input": 1.0, "output": 1.0}})
    budget = CostBudget(1.0, prices)
    transport = answers(MockResponse(chunks=sse(chunk("a"), chunk("ab"), chunk("abc", "stop"))))
    async with client_over(transport, rate_budget=budget) as client:
        stream = client.chat.create_stream(model="reka-flash", messages=HI, max_tokens=10)
        async for _ in stream:
            break
        assert budget.reserved > 0
        del stream
        gc.collect()
        assert budget.reserved == pytest.approx(0.0)
        assert budget.spent > 0  # kept at its worst case: it was sent


async def test_a_cancel_while_waiting_for_a_budget_reserves_nothing() -> None:
    """Cancelled while the second budget waits: what the first reserved is given back, and
    nothing is sent."""
    first = RecordingBudget()
    gate = asyncio.Event()

    class Waiting(RecordingBudget):
        async def reserve(self, body: Mapping[str, Any] | None) -> float:
            gate.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    transport = answers(MockResponse(json=native()))
    async with client_over(transport, rate_budget=first) as client:
        task = asyncio.create_task(
            client.chat.send_body({"model": "reka-flash", "messages": HI}, budgets=(Waiting(),))
        )
        await gate.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert first.settled == [(100.0, 0.0)]
    assert transport.requests == []
