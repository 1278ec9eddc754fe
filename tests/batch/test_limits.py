"""Hostile bodies cost bounded memory: ``max_response_bytes`` on plain bodies (after
decompression) and on each stream event, against the mock's ``gzip_bomb`` and ``endless``
faults over real sockets; and a stream that ends inside an event reports truncation."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from reka_async import (
    AsyncClient,
    Client,
    ResponseTooLargeError,
    StreamError,
)
from reka_async.testing import MockRekaServer
from reka_async.testing._fault_responses import BOMB_PADDING

KEY = "test-key"
MODEL = "reka-flash"
MIB = 1024 * 1024


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key=KEY) as srv:
        yield srv


def test_the_default_is_64_mib_and_the_option_is_checked() -> None:
    assert AsyncClient(KEY, "http://127.0.0.1:1/v1").max_response_bytes == 64 * MIB
    assert (
        AsyncClient(KEY, "http://127.0.0.1:1/v1", max_response_bytes=None).max_response_bytes
        is None
    )
    for bad in (0, -1, True, 1.5, "1"):
        with pytest.raises(ValueError, match="max_response_bytes: must be a positive number"):
            AsyncClient(KEY, "http://127.0.0.1:1/v1", max_response_bytes=bad)  # type: ignore[arg-type]


async def test_a_gzip_bomb_is_measured_after_decompression(server: MockRekaServer) -> None:
    # About 16 KB on the wire, 16 MiB once decompressed.
    async with AsyncClient(KEY, server.base_url, max_response_bytes=MIB) as client:
        with pytest.raises(ResponseTooLargeError) as info:
            await client.chat.create(messages=ask("boom [[fault:gzip_bomb]]"), model=MODEL)
        assert info.value.limit == MIB
        assert "max_response_bytes (1048576 bytes)" in str(info.value)
        assert info.value.request_id is not None
        assert len(server.requests) == 1  # never retried: the same answer would come back
        assert client.connections_in_use == 0


async def test_a_large_body_under_the_limit_is_read_whole(server: MockRekaServer) -> None:
    async with AsyncClient(KEY, server.base_url) as client:  # the default, 64 MiB
        response = await client.chat.create(messages=ask("big [[fault:gzip_bomb]]"), model=MODEL)
    assert response.text == "Mock reply to: big [[fault:gzip_bomb]]"
    assert client.max_response_bytes > BOMB_PADDING  # type: ignore[operator]


@pytest.mark.parametrize("limit", [MIB, None], ids=["1MiB", "default"])
async def test_an_endless_body_is_cut_at_the_limit(
    server: MockRekaServer, limit: int | None
) -> None:
    options = {} if limit is None else {"max_response_bytes": limit}
    async with AsyncClient(KEY, server.base_url, max_retries=0, **options) as client:  # type: ignore[arg-type]
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLargeError) as info:
                await client.chat.create(messages=ask("[[fault:endless]]"), model=MODEL)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert info.value.limit == client.max_response_bytes
        # Memory stays near the limit (the server would have sent 256 MiB).
        assert peak < 2 * info.value.limit + 8 * MIB
        assert client.connections_in_use == 0


async def test_an_endless_stream_event_is_cut_at_the_limit(server: MockRekaServer) -> None:
    async with AsyncClient(KEY, server.base_url, max_response_bytes=MIB) as client:
        stream = client.chat.create_stream(messages=ask("[[fault:endless]]"), model=MODEL)
        with pytest.raises(ResponseTooLargeError) as info:
            async for _ in stream:
                pass
        assert info.value.limit == MIB
        assert info.value.request_id is not None
        assert info.value.request_id == stream.request_id
        assert len(server.requests) == 1
        assert client.connections_in_use == 0


async def test_a_compressed_stream_event_is_measured_after_decompression(
    server: MockRekaServer,
) -> None:
    async with AsyncClient(KEY, server.base_url, max_response_bytes=MIB) as client:
        with pytest.raises(ResponseTooLargeError):
            async for _ in client.chat.create_stream(
                messages=ask("[[fault:gzip_bomb]]"), model=MODEL
            ):
                pass
    async with AsyncClient(KEY, server.base_url) as client:
        text = "".join(
            [
                chunk.delta
                async for chunk in client.chat.create_stream(
                    messages=ask("fine [[fault:gzip_bomb]]"), model=MODEL
                )
            ]
        )
    assert text == "Mock reply to: fine [[fault:gzip_bomb]]"


async def test_the_limit_is_per_event_not_per_stream() -> None:
    prompt = "word " * 400  # 2,000 characters of reply, in small deltas
    async with (
        MockRekaServer(api_key=KEY, native_stream="delta", stream_chunks=100) as server,
        AsyncClient(KEY, server.base_url, max_response_bytes=1024) as client,
    ):
        stream = client.chat.create_stream(messages=ask(prompt), model=MODEL)
        final = await stream.final_response()
    assert final.text.startswith("Mock reply to: word word")
    assert len(final.text) > 2000  # the whole stream is larger than the limit


def test_the_sync_client_takes_the_option(server_thread: MockRekaServer) -> None:
    with (
        Client(KEY, server_thread.base_url, max_response_bytes=MIB) as client,
        pytest.raises(ResponseTooLargeError),
    ):
        client.chat.create(messages=ask("[[fault:gzip_bomb]]"), model=MODEL)


@pytest.fixture
def server_thread() -> Any:
    with MockRekaServer.in_thread(api_key=KEY) as srv:
        yield srv


# --------------------------------------------------------------------------- truncation


def native_event(content: str, finish: str | None) -> bytes:
    return (
        b'data: {"id":"c1","model":"reka-flash","responses":[{"finish_reason":'
        + (b"null" if finish is None else b'"' + finish.encode() + b'"')
        + b',"chunk":{"role":"assistant","content":"'
        + content.encode()
        + b'"}}],"usage":{"input_tokens":2,"output_tokens":2}}'
    )


async def serve(body: bytes) -> web.AppRunner:
    """A real server answering every chat request with ``body`` as an event stream."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def base_url(runner: web.AppRunner) -> str:
    (address,) = runner.addresses
    return f"http://127.0.0.1:{address[1]}/v1"


async def test_a_final_event_without_its_blank_line_is_truncation() -> None:
    body = native_event("Hello", None) + b"\n\n" + native_event("Hello world", "stop") + b"\n"
    runner = await serve(body)
    try:
        async with AsyncClient(KEY, base_url(runner), max_retries=0) as client:
            chunks: list[str] = []
            with pytest.raises(StreamError, match="ended before its final event") as info:  # noqa: PT012
                async for chunk in client.chat.create_stream(messages=ask("hi"), model=MODEL):
                    chunks.append(chunk.text)
            assert chunks == ["Hello"]
            assert info.value.partial_text == "Hello"
    finally:
        await runner.cleanup()


async def test_an_incomplete_event_after_the_finish_is_ignored() -> None:
    body = native_event("Hello world", "stop") + b"\n\ndata: [DONE]"
    runner = await serve(body)
    try:
        async with AsyncClient(KEY, base_url(runner), max_retries=0) as client:
            stream = client.chat.create_stream(messages=ask("hi"), model=MODEL)
            final = await stream.final_response()
        assert final.text == "Hello world"
        assert final.finish_reason == "stop"
    finally:
        await runner.cleanup()
