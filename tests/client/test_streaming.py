"""Streaming against the embedded mock server (and a few hand-made SSE servers) over real
sockets: deltas, cumulative chunks, early exit, faults before and after the first chunk."""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from reka_async import (
    APIResponseValidationError,
    APITimeoutError,
    AsyncChatStream,
    AsyncClient,
    ChatChunk,
    ChatResponse,
    InsufficientCreditsError,
    InvalidRequestError,
    StreamError,
    Timeout,
    Tool,
)
from reka_async.testing import MockRekaServer
from reka_async.types import ClientState

API_KEY = "test-key"
MODEL = "reka-flash"
PROMPT = "one two three four five six seven eight"
EXPECTED = f"Mock reply to: {PROMPT}"


def ask(text: str = PROMPT) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def acquired(client: AsyncClient) -> int:
    """Connections of the client's pool that are checked out right now."""
    assert client.state is ClientState.OPEN
    return client.connections_in_use


async def collect(stream: AsyncChatStream) -> list[ChatChunk]:
    return [chunk async for chunk in stream]


async def drain_into(stream: AsyncChatStream, deltas: list[str]) -> None:
    """Iterate to the end, keeping each delta (so they survive an exception)."""
    async for chunk in stream:
        deltas.append(chunk.delta)


@pytest.fixture
async def slow_server() -> AsyncIterator[MockRekaServer]:
    """Streams one event per word with a pause between events, so a stream stays open."""
    async with MockRekaServer(api_key=API_KEY, chunk_latency_s=0.1, retry_after_s=0.05) as srv:
        yield srv


# --- the happy path ---------------------------------------------------------------------------


async def test_deltas_concatenate_to_the_final_text(client: AsyncClient) -> None:
    chunks = await collect(client.chat.create_stream(model=MODEL, messages=ask()))
    assert len(chunks) > 3
    assert "".join(c.delta for c in chunks) == EXPECTED
    assert all(c.delta for c in chunks)


async def test_stream_matches_the_plain_response(client: AsyncClient) -> None:
    plain = await client.chat.create(model=MODEL, messages=ask())
    chunks = await collect(client.chat.create_stream(model=MODEL, messages=ask()))
    assert chunks[-1].text == plain.text


async def test_chunk_content_is_cumulative(client: AsyncClient) -> None:
    chunks = await collect(client.chat.create_stream(model=MODEL, messages=ask()))
    contents = [c.responses[0].chunk.content for c in chunks]
    for before, after in itertools.pairwise(contents):
        assert isinstance(before, str)
        assert isinstance(after, str)
        assert after.startswith(before)
        assert len(after) > len(before)
    assert contents[-1] == EXPECTED


async def test_only_the_last_chunk_has_a_finish_reason(client: AsyncClient) -> None:
    chunks = await collect(client.chat.create_stream(model=MODEL, messages=ask()))
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == "stop"


async def test_stream_sends_stream_true(client: AsyncClient, server: MockRekaServer) -> None:
    await collect(client.chat.create_stream(model=MODEL, messages=ask(), max_tokens=100))
    (req,) = server.requests
    assert req.body == {"model": MODEL, "messages": ask(), "max_tokens": 100, "stream": True}
    assert req.headers["Accept"] == "text/event-stream"
    assert req.headers["X-Api-Key"] == API_KEY


async def test_final_response_assembles_a_chat_response(client: AsyncClient) -> None:
    stream = client.chat.create_stream(model=MODEL, messages=ask())
    resp = await stream.final_response()
    assert isinstance(resp, ChatResponse)
    assert resp.text == EXPECTED
    assert resp.responses[0].message.content == EXPECTED
    assert resp.finish_reason == "stop"
    assert resp.model == MODEL
    assert resp.usage.output_tokens == len(EXPECTED.split())


async def test_final_response_after_partial_iteration(client: AsyncClient) -> None:
    stream = client.chat.create_stream(model=MODEL, messages=ask())
    first = await anext(stream)
    resp = await stream.final_response()
    assert first.text != EXPECTED
    assert resp.text == EXPECTED


async def test_async_with_form(client: AsyncClient) -> None:
    async with client.chat.create_stream(model=MODEL, messages=ask()) as stream:
        assert stream.request_id is not None
        texts = [chunk.delta async for chunk in stream]
        assert stream.text == EXPECTED
    assert "".join(texts) == EXPECTED
    assert acquired(client) == 0


async def test_stream_tool_calls(client: AsyncClient) -> None:
    stream = client.chat.create_stream(
        model=MODEL, messages=ask("weather?"), tools=[Tool(name="get_weather")], tool_choice="tool"
    )
    resp = await stream.final_response()
    assert [c.name for c in resp.tool_calls] == ["get_weather"]


@pytest.mark.parametrize(
    "options",
    [
        {"sse_crlf": True},
        {"sse_extras": True},
        {"sse_done": True},
        {"sse_crlf": True, "sse_extras": True, "sse_done": True},
        {"stream_chunks": 1},
        {"stream_chunks": 200},
    ],
    ids=["crlf", "extras", "done", "all", "one-event", "char-events"],
)
async def test_wire_variants_give_the_same_text(options: dict[str, Any]) -> None:
    async with (
        MockRekaServer(api_key=API_KEY, **options) as server,
        AsyncClient(API_KEY, server.base_url) as client,
    ):
        stream = client.chat.create_stream(model=MODEL, messages=ask())
        chunks = await collect(stream)
    assert "".join(c.delta for c in chunks) == EXPECTED
    assert chunks[-1].finish_reason == "stop"


def test_create_stream_validates_at_once() -> None:
    client = AsyncClient(API_KEY, "http://127.0.0.1:9/v1")
    with pytest.raises(InvalidRequestError, match="messages"):
        client.chat.create_stream(model=MODEL, messages=[])


# --- leaving early ----------------------------------------------------------------------------


async def test_break_releases_the_connection(slow_server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, slow_server.base_url) as client:
        stream = client.chat.create_stream(model=MODEL, messages=ask())
        async for _chunk in stream:
            break
        assert acquired(client) == 1  # still open: the server is mid-stream
        del stream
        gc.collect()
        assert acquired(client) == 0
        resp = await client.chat.create(model=MODEL, messages=ask("after"))
        assert resp.text == "Mock reply to: after"


async def test_break_inside_async_with_releases_at_exit(slow_server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, slow_server.base_url, max_connections=1) as client:
        async with client.chat.create_stream(model=MODEL, messages=ask()) as stream:
            async for _chunk in stream:
                break
            assert acquired(client) == 1
        assert acquired(client) == 0
        # With a pool of one, this only works if the connection really went back.
        resp = await client.chat.create(model=MODEL, messages=ask("again"))
        assert resp.text == "Mock reply to: again"


async def test_aclose_releases_the_connection(slow_server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, slow_server.base_url) as client:
        stream = client.chat.create_stream(model=MODEL, messages=ask())
        await anext(stream)
        await stream.aclose()
        assert acquired(client) == 0
        with pytest.raises(StopAsyncIteration):
            await anext(stream)


async def test_exception_in_the_loop_releases_the_connection(slow_server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, slow_server.base_url) as client:

        async def fail_in_the_loop() -> None:
            async with client.chat.create_stream(model=MODEL, messages=ask()) as stream:
                async for _chunk in stream:
                    raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await fail_in_the_loop()
        assert acquired(client) == 0


async def test_finished_stream_returns_the_connection_to_the_pool(client: AsyncClient) -> None:
    await collect(client.chat.create_stream(model=MODEL, messages=ask()))
    assert acquired(client) == 0


# --- faults -----------------------------------------------------------------------------------


async def test_error_event_raises_stream_error_with_partial_text(
    client: AsyncClient, server: MockRekaServer
) -> None:
    received: list[str] = []
    stream = client.chat.create_stream(
        model=MODEL, messages=ask("a b c d e f [[fault:error_event]]")
    )
    with pytest.raises(StreamError, match="Stream failed") as info:
        await drain_into(stream, received)
    err = info.value
    assert err.partial_text
    assert "Mock reply to: a b c d e f".startswith(err.partial_text)
    assert "".join(received) == err.partial_text[: len("".join(received))]
    assert err.request_id is not None
    assert len(server.requests) == 1  # not retried: the stream had started
    assert acquired(client) == 0


async def test_mid_stream_cut_raises_stream_error_with_partial_text(
    client: AsyncClient, server: MockRekaServer
) -> None:
    with pytest.raises(StreamError, match="broke") as info:
        await collect(
            client.chat.create_stream(model=MODEL, messages=ask(f"{PROMPT} [[fault:cut]]"))
        )
    err = info.value
    assert err.partial_text
    assert f"Mock reply to: {PROMPT} [[fault:cut]]".startswith(err.partial_text)
    assert len(err.partial_text) < len(f"Mock reply to: {PROMPT} [[fault:cut]]")
    assert len(server.requests) == 1


@pytest.mark.parametrize("fault", ["503", "500", "rate_limit", "drop", "408"])
async def test_fault_before_the_first_chunk_is_retried(
    client: AsyncClient, server: MockRekaServer, fault: str
) -> None:
    server.inject(fault)
    chunks = await collect(client.chat.create_stream(model=MODEL, messages=ask()))
    assert "".join(c.delta for c in chunks) == EXPECTED
    assert [r.fault for r in server.requests] == [fault, None]
    assert all(r.body["stream"] is True for r in server.requests)


async def test_fault_before_the_first_chunk_with_async_with(
    client: AsyncClient, server: MockRekaServer
) -> None:
    server.inject("503", "drop")
    async with client.chat.create_stream(model=MODEL, messages=ask()) as stream:
        resp = await stream.final_response()
    assert resp.text == EXPECTED
    assert [r.fault for r in server.requests] == ["503", "drop", None]


async def test_credits_429_on_a_stream_is_raised_at_once(
    client: AsyncClient, server: MockRekaServer
) -> None:
    server.inject("credits")
    with pytest.raises(InsufficientCreditsError):
        await collect(client.chat.create_stream(model=MODEL, messages=ask(), max_retries=5))
    assert len(server.requests) == 1


async def test_stalled_stream_times_out(slow_server: MockRekaServer) -> None:
    slow_server.set_latency(chunk_latency_s=2.0)
    async with AsyncClient(API_KEY, slow_server.base_url) as client:
        stream = client.chat.create_stream(
            model=MODEL,
            messages=ask(),
            timeout=Timeout(connect=2.0, read=0.2, total=10.0),
            max_retries=0,
        )
        with pytest.raises(APITimeoutError):
            await collect(stream)
        assert acquired(client) == 0


async def test_stalled_stream_is_not_retried_after_a_chunk(slow_server: MockRekaServer) -> None:
    slow_server.set_latency(chunk_latency_s=2.0)
    async with AsyncClient(API_KEY, slow_server.base_url, max_retries=3) as client:
        stream = client.chat.create_stream(
            model=MODEL, messages=ask(), timeout=Timeout(connect=2.0, read=0.2, total=10.0)
        )
        first = await anext(stream)
        with pytest.raises(APITimeoutError, match="after"):
            await anext(stream)
    assert first.delta == "Mock "
    assert len(slow_server.requests) == 1


async def test_slow_first_byte_on_a_stream_is_retried_then_times_out(
    client: AsyncClient, server: MockRekaServer
) -> None:
    stream = client.chat.create_stream(
        model=MODEL,
        messages=ask("hi [[fault:slow_first_byte]]"),
        timeout=Timeout(connect=2.0, read=0.2, total=10.0),
        max_retries=1,
    )
    with pytest.raises(APITimeoutError):
        await collect(stream)
    assert len(server.requests) == 2


# --- hand-made SSE servers: what the mock does not produce ------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def sse_client(handler: Handler) -> AsyncIterator[AsyncClient]:
    """A client of a one-route server whose /v1/chat is ``handler``."""
    app = web.Application()
    app.router.add_post("/v1/chat", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        async with AsyncClient(API_KEY, base_url, max_retries=0) as client:
            yield client
    finally:
        await runner.cleanup()


def event(content: str, finish_reason: str | None = None) -> bytes:
    chunk = {"role": "assistant", "content": content}
    data = {
        "id": "c1",
        "model": MODEL,
        "responses": [{"finish_reason": finish_reason, "chunk": chunk}],
    }
    return json.dumps(data).encode()


async def send(request: web.Request, *writes: bytes) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "x-request-id": "r9"}
    )
    await response.prepare(request)
    for data in writes:
        await response.write(data)
    await response.write_eof()
    return response


async def test_events_split_across_writes_at_every_byte() -> None:
    payload = (
        b": hello\r\n"
        + b"data: "
        + event("Hel")
        + b"\r\n\r\n"
        + b"event: message\r\nid: 2\r\ndata: "
        + event("Hello wor")
        + b"\r\n\r\n"
        + b"data: "
        + event("Hello world", "stop")
        + b"\r\n\r\ndata: [DONE]\r\n\r\n"
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        return await send(request, *(payload[i : i + 1] for i in range(len(payload))))

    async with sse_client(handler) as client:
        chunks = await collect(client.chat.create_stream(model=MODEL, messages=ask()))
    assert [c.delta for c in chunks] == ["Hel", "lo wor", "ld"]


async def test_clean_end_without_finish_reason_is_a_stream_error() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await send(
            request, b"data: " + event("Hel") + b"\n\ndata: " + event("Hello") + b"\n\n"
        )

    async with sse_client(handler) as client:
        deltas: list[str] = []
        stream = client.chat.create_stream(model=MODEL, messages=ask())
        with pytest.raises(StreamError, match="final event") as info:
            await drain_into(stream, deltas)
    assert deltas == ["Hel", "lo"]
    assert info.value.partial_text == "Hello"
    assert info.value.request_id == "r9"


async def test_empty_stream_has_no_final_response() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await send(request)

    async with sse_client(handler) as client:
        with pytest.raises(StreamError):
            await client.chat.create_stream(model=MODEL, messages=ask()).final_response()


async def test_non_json_event_is_a_response_validation_error() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await send(request, b"data: " + event("Hi") + b"\n\ndata: {oops\n\n")

    async with sse_client(handler) as client:
        with pytest.raises(APIResponseValidationError, match="oops") as info:
            await collect(client.chat.create_stream(model=MODEL, messages=ask()))
        assert info.value.request_id == "r9"
        assert acquired(client) == 0


async def test_error_object_without_event_name_is_a_stream_error() -> None:
    error = json.dumps({"error": {"type": "overloaded", "message": "try later"}}).encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        return await send(request, b"data: " + event("Hi") + b"\n\ndata: " + error + b"\n\n")

    async with sse_client(handler) as client:
        with pytest.raises(StreamError, match="overloaded: try later") as info:
            await collect(client.chat.create_stream(model=MODEL, messages=ask()))
    assert info.value.partial_text == "Hi"
