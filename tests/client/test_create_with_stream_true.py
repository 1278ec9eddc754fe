"""``chat.create(..., stream=True)``, openai-python's spelling, returns the stream that
``create_stream`` returns (async and sync); a ``stream`` that is not a bool, and ``stream=`` where
no stream can be returned, raise a ``TypeError`` that names what to call."""

from __future__ import annotations

import pytest
from conftest import API_KEY

from reka_async import AsyncChatStream, AsyncClient, ChatResponse, ChatStream, Client
from reka_async.testing import MockRekaServer

MSGS = [{"role": "user", "content": "one two"}]


async def test_stream_true_returns_the_stream(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        stream = await client.chat.create(messages=MSGS, model="reka-flash", stream=True)
        assert isinstance(stream, AsyncChatStream)
        async with stream:
            text = "".join([chunk.delta async for chunk in stream])
        plain = await client.chat.create(messages=MSGS, model="reka-flash", stream=False)
    assert isinstance(plain, ChatResponse)
    assert text == plain.text == "Mock reply to: one two"
    assert [r.body.get("stream") for r in server.requests] == [True, None]


async def test_stream_true_on_the_openai_dialect(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url, api="openai") as client:
        stream = await client.chat.create(messages=MSGS, model="reka-flash", stream=True)
        async with stream:
            final = await stream.final_response()
    assert final.text == "Mock reply to: one two"
    assert server.requests[-1].path == "/v1/chat/completions"


def test_the_sync_client_streams_with_stream_true() -> None:
    with (
        MockRekaServer.in_thread(api_key=API_KEY) as server,
        Client(API_KEY, server.base_url) as client,
    ):
        stream = client.chat.create(messages=MSGS, model="reka-flash", stream=True)
        assert isinstance(stream, ChatStream)
        with stream:
            text = "".join(chunk.delta for chunk in stream)
        assert text == "Mock reply to: one two"
        assert server.requests[-1].body["stream"] is True


async def test_a_stream_that_is_not_a_bool_is_a_type_error(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        with pytest.raises(TypeError, match="stream must be True or False"):
            await client.chat.create(messages=MSGS, model="reka-flash", stream="yes")  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="create_stream"):
            await client.chat.with_raw_response.create(  # type: ignore[call-arg]
                messages=MSGS, model="reka-flash", stream=True
            )
    assert server.requests == []
