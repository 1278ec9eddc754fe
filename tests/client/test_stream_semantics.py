"""Chat streams over real sockets from a scripted server: delta and cumulative native streams,
usage trailers, events after the finish, and errors that are final."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from reka_async import AsyncChatStream, AsyncClient, ChatChunk, RetryPolicy, StreamError, Usage

KEY = "k"
MESSAGES = [{"role": "user", "content": "hi"}]


def native(content: str | None, finish: str | None = None, **extra: Any) -> bytes:
    responses = (
        []
        if content is None
        else [{"finish_reason": finish, "chunk": {"role": "assistant", "content": content}}]
    )
    body = {"id": "s1", "model": "reka-flash", "responses": responses, **extra}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class Script:
    """What the scripted server sends for every request, and how many it got."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.cut = False  # close the connection after the frames instead of ending the body
        self.requests = 0


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Script, str]]:
    script = Script()

    async def chat(request: web.Request) -> web.StreamResponse:
        script.requests += 1
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"".join(script.frames))
        if script.cut:
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield script, f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def fast_client(base_url: str) -> AsyncClient:
    """A client whose retries (before any text) wait milliseconds."""
    return AsyncClient(KEY, base_url, retry_policy=RetryPolicy(base=0.001, cap=0.01))


def open_stream(client: AsyncClient) -> AsyncChatStream:
    return client.chat.create_stream(messages=MESSAGES, model="reka-flash")


async def collect(base_url: str) -> tuple[list[ChatChunk], Any]:
    async with fast_client(base_url) as c:
        stream = open_stream(c)
        chunks = [chunk async for chunk in stream]
        return chunks, await stream.final_response()


async def test_a_native_delta_stream_assembles_exactly_the_generated_text(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    script.frames = [native("The "), native("quick "), native("fox"), native("", "stop")]
    chunks, final = await collect(url)
    assert "".join(c.delta for c in chunks) == "The quick fox"
    assert [c.text for c in chunks] == ["The ", "The quick ", "The quick fox", "The quick fox"]
    assert final.text == "The quick fox"


async def test_a_native_cumulative_stream_still_works(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.frames = [native("The "), native("The quick"), native("The quick fox", "stop")]
    chunks, final = await collect(url)
    assert [c.delta for c in chunks] == ["The ", "quick", " fox"]
    assert final.text == "The quick fox"


async def test_a_usage_trailer_after_the_finish_is_merged_not_an_error(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    script.frames = [
        native("Hi"),
        native(" there", "stop"),
        native(None, usage={"input_tokens": 4, "output_tokens": 2}),
        b"data: [DONE]\n\n",
    ]
    chunks, final = await collect(url)
    assert len(chunks) == 2
    assert final.text == "Hi there"
    assert final.usage == Usage(input_tokens=4, output_tokens=2)


async def test_events_after_the_finish_are_not_handed_out(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.frames = [native("Hi", "stop"), native("Hi and more")]
    chunks, final = await collect(url)
    assert [c.text for c in chunks] == ["Hi"]
    assert final.text == "Hi"


async def test_usage_in_openai_names_is_read(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.frames = [native("Hi", "stop", usage={"prompt_tokens": 5, "completion_tokens": 1})]
    _, final = await collect(url)
    assert final.usage == Usage(input_tokens=5, output_tokens=1)


async def test_an_error_event_comes_after_the_chunks_before_it_and_is_final(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    error = {"error": {"type": "server_error", "message": "boom"}}
    script.frames = [native("Hel"), b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n"]
    async with fast_client(url) as c:
        stream = open_stream(c)
        first = await stream.__anext__()
        assert first.text == "Hel"
        with pytest.raises(StreamError, match="boom") as info:
            await stream.__anext__()
        assert info.value.partial_text == "Hel"
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
    assert script.requests == 1


async def test_chunks_are_made_as_they_are_asked_for_not_a_whole_read_at_once(
    scripted: tuple[Script, str],
) -> None:
    # Two hundred events written at once: the first read holds many of them. Only the
    # events up to the chunk handed out are assembled, so the text so far is that chunk's.
    script, url = scripted
    script.frames = [native(f"w{i} ") for i in range(200)] + [native("", "stop")]
    async with fast_client(url) as c:
        stream = open_stream(c)
        first = await stream.__anext__()
        assert (first.text, stream.text) == ("w0 ", "w0 ")
        second = await stream.__anext__()
        assert (second.text, stream.text) == ("w0 w1 ", "w0 w1 ")
        rest = [chunk async for chunk in stream]
    assert len(rest) == 199
    assert rest[-1].text == "".join(f"w{i} " for i in range(200))


async def test_after_aclose_nothing_already_read_is_handed_out(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    script.frames = [native(f"w{i} ") for i in range(50)] + [native("", "stop")]
    async with fast_client(url) as c:
        stream = open_stream(c)
        assert (await stream.__anext__()).text == "w0 "
        await stream.aclose()
        assert [chunk async for chunk in stream] == []
        assert stream.text == "w0 "


async def test_a_stream_cut_after_text_is_final_and_never_sent_again(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    script.frames = [native("Hel"), native("lo")]
    script.cut = True
    async with fast_client(url) as c:
        stream = open_stream(c)
        got = [(await stream.__anext__()).text, (await stream.__anext__()).text]
        with pytest.raises(StreamError) as info:
            await stream.__anext__()
        assert got == ["Hel", "Hello"]
        assert info.value.partial_text == "Hello"
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
    assert script.requests == 1


async def test_a_stream_without_a_finish_reports_truncation(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.frames = [native("Hel"), native("lo")]
    with pytest.raises(StreamError, match="before its final event") as info:
        await collect(url)
    assert info.value.partial_text == "Hello"
