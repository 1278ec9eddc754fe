"""The same checks on both dialects: faults, retries, the shared cooldown, credits, timeouts,
stream cuts and error events, against the mock's two endpoints over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from reka_async import (
    APIResponseValidationError,
    APITimeoutError,
    AsyncChatStream,
    AsyncClient,
    AuthenticationError,
    InsufficientCreditsError,
    InternalServerError,
    RateLimitError,
    RetryEvent,
    RetryPolicy,
    StreamError,
    Timeout,
    UnprocessableEntityError,
)
from reka_async.testing import MockRekaServer

KEY = "parity-key"
MODEL = "reka-flash"
PROMPT = "one two three four five six seven eight"
FAST = RetryPolicy(base=0.001, cap=0.01)


def ask(text: str = PROMPT) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def drain_into(stream: AsyncChatStream, deltas: list[str]) -> None:
    """Collect a stream's deltas, so that what arrived before an error can be checked."""
    async for chunk in stream:
        deltas.append(chunk.delta)


@pytest.fixture(params=["native", "openai"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key=KEY, retry_after_s=0.05, slow_first_byte_s=5.0) as srv:
        yield srv


@pytest.fixture
async def client(server: MockRekaServer, api: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(KEY, server.base_url, api=api, retry_policy=FAST) as c:  # type: ignore[arg-type]
        yield c


@pytest.mark.parametrize("fault", ["500", "502", "503", "408", "rate_limit", "drop"])
async def test_a_retryable_fault_is_retried(
    client: AsyncClient, server: MockRekaServer, fault: str
) -> None:
    events: list[RetryEvent] = []
    server.inject(fault)
    response = await client.chat.send_body(
        {"model": MODEL, "messages": ask()}, on_retry=events.append
    )
    assert response.text == f"Mock reply to: {PROMPT}"
    assert [r.fault for r in server.requests] == [fault, None]
    assert len(events) == 1
    assert events[0].rate_limited == (fault == "rate_limit")


async def test_retries_stop_at_max_retries(client: AsyncClient, server: MockRekaServer) -> None:
    with pytest.raises(InternalServerError):
        await client.chat.create(model=MODEL, messages=ask("x [[fault:500]]"), max_retries=3)
    assert len(server.requests) == 4


@pytest.mark.parametrize("fault", ["credits", "credits_p001", "credits_enough"])
async def test_out_of_credits_is_never_retried(
    client: AsyncClient, server: MockRekaServer, fault: str
) -> None:
    with pytest.raises(InsufficientCreditsError):
        await client.chat.create(model=MODEL, messages=ask(f"x [[fault:{fault}]]"), max_retries=5)
    assert len(server.requests) == 1


async def test_a_rate_limit_trips_the_shared_cooldown(api: str) -> None:
    # A 30 s retry-after: the cooldown is still running when it is read, however slow the
    # machine (the fixture's 0.05 s would make this a race).
    async with (
        MockRekaServer(api_key=KEY, retry_after_s=30.0) as server,
        AsyncClient(KEY, server.base_url, api=api, retry_policy=FAST) as client,  # type: ignore[arg-type]
    ):
        with pytest.raises(RateLimitError):
            await client.chat.create(
                model=MODEL, messages=ask("x [[fault:rate_limit]]"), max_retries=0
            )
        assert client.cooldown_remaining > 25


async def test_a_bad_key_is_an_authentication_error(server: MockRekaServer, api: str) -> None:
    async with AsyncClient("wrong", server.base_url, api=api) as c:  # type: ignore[arg-type]
        with pytest.raises(AuthenticationError):
            await c.chat.create(model=MODEL, messages=ask())
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [("422", UnprocessableEntityError), ("html", InternalServerError)],
)
async def test_error_bodies_give_typed_errors(
    client: AsyncClient, fault: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.chat.create(model=MODEL, messages=ask(f"x [[fault:{fault}]]"), max_retries=0)


@pytest.mark.parametrize("fault", ["truncated_json", "wrong_shape"])
async def test_a_bad_200_body_is_a_validation_error_not_retried(
    client: AsyncClient, server: MockRekaServer, fault: str
) -> None:
    with pytest.raises(APIResponseValidationError):
        await client.chat.create(model=MODEL, messages=ask(f"x [[fault:{fault}]]"))
    assert len(server.requests) == 1


async def test_a_slow_first_byte_times_out_and_is_retried(
    client: AsyncClient, server: MockRekaServer
) -> None:
    with pytest.raises(APITimeoutError):
        await client.chat.create(
            model=MODEL,
            messages=ask("x [[fault:slow_first_byte]]"),
            timeout=Timeout(connect=2.0, read=0.2, total=5.0),
            max_retries=1,
        )
    assert len(server.requests) == 2


@pytest.mark.parametrize("fault", ["503", "rate_limit", "drop"])
async def test_a_fault_before_the_first_event_retries_the_stream(
    client: AsyncClient, server: MockRekaServer, fault: str
) -> None:
    server.inject(fault)
    stream = client.chat.create_stream(model=MODEL, messages=ask())
    final = await stream.final_response()
    assert final.text == f"Mock reply to: {PROMPT}"
    assert [r.fault for r in server.requests] == [fault, None]


async def test_a_cut_mid_stream_is_final_with_the_partial_text(
    client: AsyncClient, server: MockRekaServer
) -> None:
    text = f"Mock reply to: {PROMPT} [[fault:cut]]"
    stream = client.chat.create_stream(model=MODEL, messages=ask(f"{PROMPT} [[fault:cut]]"))
    received: list[str] = []
    with pytest.raises(StreamError, match="broke") as info:
        await drain_into(stream, received)
    assert info.value.partial_text == "".join(received)
    assert text.startswith(info.value.partial_text)
    assert len(info.value.partial_text) < len(text)
    assert len(server.requests) == 1
    assert client.connections_in_use == 0


async def test_an_error_event_is_final_with_the_partial_text(
    client: AsyncClient, server: MockRekaServer
) -> None:
    stream = client.chat.create_stream(
        model=MODEL, messages=ask("a b c d e f [[fault:error_event]]")
    )
    with pytest.raises(StreamError) as info:
        await stream.final_response()
    assert "Mock reply to: a b c d e f".startswith(info.value.partial_text)
    assert len(server.requests) == 1


async def test_a_finished_stream_returns_its_connection(client: AsyncClient) -> None:
    async with client.chat.create_stream(model=MODEL, messages=ask()) as stream:
        deltas = [chunk.delta async for chunk in stream]
    assert "".join(deltas) == f"Mock reply to: {PROMPT}"
    assert client.connections_in_use == 0
