"""AsyncClient against the embedded mock server over real sockets: round trips, retries,
timeouts, typed errors and the shared rate-limit cooldown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from reka_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    InsufficientCreditsError,
    InternalServerError,
    Message,
    NotFoundError,
    RateLimitError,
    RetryEvent,
    RetryPolicy,
    Timeout,
    Tool,
    ToolCall,
    ToolOutput,
    UnprocessableEntityError,
)
from reka_async._wire import request_body
from reka_async.testing import MockRekaServer, window_start_clock

API_KEY = "test-key"
MODEL = "reka-flash"


#: Backoff in milliseconds; server-requested waits are still honoured as they are.
FAST_POLICY = RetryPolicy(base=0.001, cap=0.01)


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def faults(server: MockRekaServer) -> list[str | None]:
    return [r.fault for r in server.requests]


# --- round trips ------------------------------------------------------------------------------


async def test_chat_round_trip(client: AsyncClient, server: MockRekaServer) -> None:
    resp = await client.chat.create(model=MODEL, messages=ask("What is 2+2?"), max_tokens=50)
    assert resp.text == "Mock reply to: What is 2+2?"
    assert resp.responses[0].message.content == resp.text
    assert resp.responses[0].message.role == "assistant"
    assert resp.finish_reason == "stop"
    assert resp.model == MODEL
    assert resp.usage.output_tokens == len(resp.text.split())
    (req,) = server.requests
    assert req.path == "/v1/chat"
    assert req.headers["X-Api-Key"] == API_KEY
    assert req.body == {"model": MODEL, "messages": ask("What is 2+2?"), "max_tokens": 50}


async def test_multi_turn_conversation(client: AsyncClient, server: MockRekaServer) -> None:
    history: list[Any] = [Message(role="system", content="Be brief.")]
    for question in ("Hello", "And again"):
        history.append({"role": "user", "content": question})
        resp = await client.chat.create(model=MODEL, messages=history)
        assert resp.text == f"Mock reply to: {question}"
        history.append(resp.responses[0].message)
    assert [len(r.body["messages"]) for r in server.requests] == [2, 4]
    assert server.requests[1].body["messages"][2] == {
        "role": "assistant",
        "content": "Mock reply to: Hello",
    }


async def test_prefill_continues_the_assistant_message_and_stops(client: AsyncClient) -> None:
    messages = [
        {"role": "user", "content": "Answer in JSON."},
        {"role": "assistant", "content": "```json"},
    ]
    full = await client.chat.create(model=MODEL, messages=messages)
    stopped = await client.chat.create(model=MODEL, messages=messages, stop=["```\n"])
    assert full.text == '\n{"answer": "mock"}\n```\n'
    assert stopped.text == '\n{"answer": "mock"}\n'
    assert stopped.finish_reason == "stop"


async def test_max_tokens_gives_finish_reason_length(client: AsyncClient) -> None:
    resp = await client.chat.create(model=MODEL, messages=ask("one two three four"), max_tokens=2)
    assert resp.text == "Mock reply"
    assert resp.finish_reason == "length"


async def test_tool_call_round_trip(client: AsyncClient, server: MockRekaServer) -> None:
    weather = Tool(
        name="get_weather",
        description="Weather for a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    first = await client.chat.create(
        model=MODEL, messages=ask("Weather in Oslo?"), tools=[weather], tool_choice="tool"
    )
    (call,) = first.tool_calls
    assert isinstance(call, ToolCall)
    assert call.name == "get_weather"
    assert server.requests[0].body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]

    second = await client.chat.create(
        model=MODEL,
        messages=[
            *ask("Weather in Oslo?"),
            first.responses[0].message,
            Message(role="tool_output", content=[ToolOutput(tool_call_id=call.id, output="-3 C")]),
        ],
        tools=[weather],
    )
    assert second.text == "Mock reply to: -3 C"
    assert server.requests[1].body["messages"][1]["tool_calls"] == [
        {"id": call.id, "name": "get_weather", "parameters": {}}
    ]


async def test_models_list(client: AsyncClient) -> None:
    ids = [m.id for m in await client.models.list()]
    assert {"reka-core", "reka-flash", "reka-edge"} <= set(ids)


async def test_unknown_model_is_not_found(client: AsyncClient, server: MockRekaServer) -> None:
    with pytest.raises(NotFoundError, match="reka-nonexistent"):
        await client.chat.create(model="reka-nonexistent", messages=ask("hi"))
    assert len(server.requests) == 1


async def test_concurrent_requests_share_one_client(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url, max_connections=3) as client:
        replies = await asyncio.gather(
            *(
                client.chat.create(model=MODEL, messages=ask(f"q{i} [[latency_ms:50]]"))
                for i in range(12)
            )
        )
    assert [r.text for r in replies] == [
        f"Mock reply to: q{i} [[latency_ms:50]]" for i in range(12)
    ]
    assert 1 < server.max_in_flight <= 3


# --- typed errors -----------------------------------------------------------------------------


async def test_wrong_key_is_authentication_error(server: MockRekaServer) -> None:
    async with AsyncClient("wrong-key", server.base_url, max_retries=3) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.chat.create(model=MODEL, messages=ask("hi"))
    assert info.value.status_code == 401
    assert info.value.request_id
    assert "wrong-key" not in str(info.value)
    assert len(server.requests) == 1


async def test_server_validation_is_unprocessable_entity_with_detail(
    client: AsyncClient, server: MockRekaServer
) -> None:
    with pytest.raises(UnprocessableEntityError) as info:
        # extra_body bypasses local validation, so the server's validation answers.
        await client.chat.create(model=MODEL, messages=ask("hi"), extra_body={"temperature": "hot"})
    err = info.value
    assert err.status_code == 422
    assert [d["loc"] for d in err.detail] == [["body", "temperature"]]
    assert "temperature" in str(err)
    assert len(server.requests) == 1  # 422 is not retried


async def test_injected_422_has_detail(client: AsyncClient) -> None:
    with pytest.raises(UnprocessableEntityError) as info:
        await client.chat.create(model=MODEL, messages=ask("hi [[fault:422]]"))
    assert info.value.detail[0]["msg"] == "Injected validation failure"


async def test_html_502_is_internal_server_error_with_request_id_and_snippet(
    client: AsyncClient,
) -> None:
    with pytest.raises(InternalServerError) as info:
        await client.chat.create(model=MODEL, messages=ask("hi [[fault:html]]"), max_retries=0)
    err = info.value
    assert err.status_code == 502
    assert err.request_id is not None
    assert err.request_id.startswith("req_")
    assert err.request_id in str(err)
    assert "502 Bad Gateway" in str(err)
    assert isinstance(err.body, str)
    assert err.body.startswith("<html>")


@pytest.mark.parametrize("fault", ["truncated_json", "wrong_shape"])
async def test_bad_200_body_is_response_validation_error(
    client: AsyncClient, server: MockRekaServer, fault: str
) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        await client.chat.create(model=MODEL, messages=ask(f"hi [[fault:{fault}]]"))
    err = info.value
    assert err.status_code == 200
    assert err.request_id is not None
    assert err.request_id in str(err)
    assert err.body[:20] in str(err)  # the snippet
    assert len(server.requests) == 1  # a complete answer is not retried


async def test_connection_refused_is_api_connection_error() -> None:
    async with MockRekaServer() as gone:
        base_url = gone.base_url
    async with AsyncClient(API_KEY, base_url, max_retries=1, retry_policy=FAST_POLICY) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.chat.create(model=MODEL, messages=ask("hi"))
    assert not isinstance(info.value, APITimeoutError)
    assert API_KEY not in str(info.value)


async def test_redirect_is_not_followed_and_the_key_stays_home() -> None:
    seen: list[web.Request] = []

    async def collect(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({})

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", collect)
    async with serve(other) as other_url:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"{other_url}/v1/chat")

        redirector = web.Application()
        redirector.router.add_route("*", "/{tail:.*}", redirect)
        async with serve(redirector) as url, AsyncClient(API_KEY, f"{url}/v1") as client:
            with pytest.raises(APIStatusError) as info:
                await client.chat.create(model=MODEL, messages=ask("hi"))
    assert info.value.status_code == 307
    assert "redirect" in str(info.value)
    assert seen == []


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run an aiohttp application on a free loopback port; yield its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# --- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "502", "503", "408", "409", "rate_limit", "drop", "cut"])
async def test_transient_fault_is_retried_then_succeeds(
    client: AsyncClient, server: MockRekaServer, fault: str
) -> None:
    server.inject(fault)
    resp = await client.chat.create(model=MODEL, messages=ask("hello"))
    assert resp.text == "Mock reply to: hello"
    assert faults(server) == [fault, None]


async def test_several_faults_in_a_row_are_retried(
    client: AsyncClient, server: MockRekaServer
) -> None:
    resp = await client.chat.create(model=MODEL, messages=ask("x [[fault:503*2]]"), max_retries=2)
    assert resp.text == "Mock reply to: x [[fault:503*2]]"
    assert faults(server) == ["503", "503", None]


async def test_retries_give_up_with_the_last_error(
    client: AsyncClient, server: MockRekaServer
) -> None:
    with pytest.raises(InternalServerError) as info:
        await client.chat.create(model=MODEL, messages=ask("x [[fault:500]]"), max_retries=3)
    assert info.value.status_code == 500
    assert len(server.requests) == 4


async def test_retry_hook_sees_each_retry(client: AsyncClient, server: MockRekaServer) -> None:
    events: list[RetryEvent] = []
    body = request_body(model=MODEL, messages=ask("x [[fault:503*2]]"), params={}, stream=False)
    resp = await client.chat.send_body(body, on_retry=events.append)
    assert resp.finish_reason == "stop"
    assert [(e.attempt, e.error.status_code) for e in events] == [(0, 503), (1, 503)]  # type: ignore[attr-defined]
    assert all(e.path == "/chat" and not e.rate_limited for e in events)


async def test_credits_429_is_raised_at_once(client: AsyncClient, server: MockRekaServer) -> None:
    with pytest.raises(InsufficientCreditsError) as info:
        await client.chat.create(model=MODEL, messages=ask("hi [[fault:credits]]"), max_retries=5)
    assert info.value.status_code == 429
    assert "credits" in str(info.value)
    assert len(server.requests) == 1


async def test_retry_after_above_max_retry_wait_is_raised_with_retry_after() -> None:
    async with (
        MockRekaServer(api_key=API_KEY, retry_after_s=30.0) as server,
        AsyncClient(API_KEY, server.base_url, max_retries=3, max_retry_wait=5.0) as client,
    ):
        with pytest.raises(RateLimitError) as info:
            await client.chat.create(model=MODEL, messages=ask("hi [[fault:rate_limit]]"))
    assert type(info.value) is RateLimitError
    assert info.value.retry_after == 30.0
    assert len(server.requests) == 1


async def test_acceptance_many_calls_through_a_faulty_server() -> None:
    """The issue's acceptance check: 30 % faults, 40 sequential calls, all succeed."""
    async with (
        MockRekaServer(
            api_key=API_KEY,
            fault_rate=0.3,
            fault_kinds=("500", "503", "rate_limit", "drop"),
            retry_after_s=0.02,
            seed=1234,
        ) as server,
        AsyncClient(API_KEY, server.base_url, max_retries=8, retry_policy=FAST_POLICY) as client,
    ):
        texts = [
            (await client.chat.create(model=MODEL, messages=ask(f"call {i}"))).text
            for i in range(40)
        ]
    assert texts == [f"Mock reply to: call {i}" for i in range(40)]
    injected = [f for f in faults(server) if f is not None]
    assert len(injected) >= 5  # the faults really happened
    assert len(server.requests) == 40 + len(injected)


# --- timeouts ---------------------------------------------------------------------------------

SHORT_READ = Timeout(connect=2.0, read=0.2, total=10.0)


async def test_slow_first_byte_is_a_timeout(client: AsyncClient, server: MockRekaServer) -> None:
    with pytest.raises(APITimeoutError) as info:
        await client.chat.create(
            model=MODEL,
            messages=ask("hi [[fault:slow_first_byte]]"),
            timeout=SHORT_READ,
            max_retries=0,
        )
    assert isinstance(info.value, APIConnectionError)
    assert len(server.requests) == 1


async def test_timeouts_are_retried_up_to_max_retries(
    client: AsyncClient, server: MockRekaServer
) -> None:
    with pytest.raises(APITimeoutError):
        await client.chat.create(
            model=MODEL,
            messages=ask("hi [[fault:slow_first_byte]]"),
            timeout=SHORT_READ,
            max_retries=2,
        )
    assert len(server.requests) == 3


async def test_timeout_then_success(client: AsyncClient, server: MockRekaServer) -> None:
    resp = await client.chat.create(
        model=MODEL, messages=ask("hi [[fault:slow_first_byte*1]]"), timeout=SHORT_READ
    )
    assert resp.finish_reason == "stop"
    assert faults(server) == ["slow_first_byte", None]


async def test_plain_request_read_timeout_bounds_the_whole_response(
    client: AsyncClient, server: MockRekaServer
) -> None:
    # A plain answer arrives whole once generated: "read" bounds that wait (generation time),
    # measured with a single deadline rather than a timer re-armed on every packet.
    with pytest.raises(APITimeoutError):
        await client.chat.create(
            model=MODEL,
            messages=ask("hi [[latency_ms:3000]]"),
            timeout=Timeout(connect=2.0, read=0.2, total=30.0),
            max_retries=0,
        )
    reply = await client.chat.create(
        model=MODEL,
        messages=ask("hi [[latency_ms:50]]"),
        timeout=Timeout(connect=2.0, read=5.0, total=30.0),
    )
    assert reply.text == "Mock reply to: hi [[latency_ms:50]]"


async def test_total_timeout_as_a_number(client: AsyncClient, server: MockRekaServer) -> None:
    with pytest.raises(APITimeoutError):
        await client.chat.create(
            model=MODEL, messages=ask("hi [[latency_ms:3000]]"), timeout=0.2, max_retries=0
        )


async def test_client_default_timeout_applies(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url, timeout=SHORT_READ, max_retries=0) as client:
        with pytest.raises(APITimeoutError):
            await client.chat.create(model=MODEL, messages=ask("hi [[fault:slow_first_byte]]"))


# --- the shared rate-limit cooldown -----------------------------------------------------------


@pytest.fixture
async def cooldown_server() -> AsyncIterator[MockRekaServer]:
    """A server whose rate-limit 429s ask for 0.3 s."""
    async with MockRekaServer(api_key=API_KEY, retry_after_s=0.3) as srv:
        yield srv


async def test_retry_after_a_rate_limit_waits_the_servers_delay(
    cooldown_server: MockRekaServer,
) -> None:
    server = cooldown_server
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client:
        # The backoff is 1-10 ms: only honouring the server's delay makes the gap 0.3 s.
        server.inject("rate_limit")
        await client.chat.create(model=MODEL, messages=ask("hi"))
    first, second = server.requests
    assert first.fault == "rate_limit"
    assert second.fault is None
    assert second.received_at - first.received_at >= 0.3


async def test_rate_limit_pauses_other_requests_of_the_client(
    cooldown_server: MockRekaServer,
) -> None:
    server = cooldown_server
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client:
        limited = asyncio.Event()

        def on_retry(event: RetryEvent) -> None:
            if event.rate_limited:
                limited.set()

        body = request_body(
            model=MODEL, messages=ask("first [[fault:rate_limit*1]]"), params={}, stream=False
        )
        first = asyncio.create_task(client.chat.send_body(body, on_retry=on_retry))
        await limited.wait()  # the first request got its 429 and is cooling down
        other = await client.chat.create(model=MODEL, messages=ask("other"))
        await first
    assert other.text == "Mock reply to: other"
    limited_at = server.requests[0].received_at
    other_req = next(r for r in server.requests if r.body["messages"] == ask("other"))
    assert server.requests[0].fault == "rate_limit"
    assert other_req.received_at - limited_at >= 0.3


@pytest.fixture
async def tiny_server() -> AsyncIterator[MockRekaServer]:
    # The window starts with the test: one that ends within the second would rightly be
    # waited for (max_retry_wait=1.0) and the third request would pass.
    async with MockRekaServer(
        api_key=API_KEY, rpm_limit=2, retry_after_s=0.05, clock=window_start_clock()
    ) as srv:
        yield srv


async def test_rpm_limit_429_with_a_long_wait_is_raised_not_slept(
    tiny_server: MockRekaServer,
) -> None:
    async with AsyncClient(API_KEY, tiny_server.base_url, max_retry_wait=1.0) as client:
        await client.chat.create(model=MODEL, messages=ask("1"))
        await client.chat.create(model=MODEL, messages=ask("2"))
        with pytest.raises(RateLimitError) as info:
            await client.chat.create(model=MODEL, messages=ask("3"))
    assert info.value.retry_after is not None
    assert info.value.retry_after > 1.0
    assert len(tiny_server.requests) == 3
