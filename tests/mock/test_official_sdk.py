"""The official ``reka-api`` SDK, sync and async, parses every reply of the mock (the native
dialect's oracle). Needs ``reka-api``, a large dependency tree: the full test environment only
(``nox -s tests`` on its first Python)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reka_async.testing import MockRekaServer


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key="test-key") as srv:
        yield srv


async def test_official_async_sdk_parses_every_reply(server: MockRekaServer) -> None:
    from reka.client import AsyncReka

    client = AsyncReka(base_url=server.base_url, api_key="test-key")
    try:
        messages: Any = [{"role": "user", "content": "hi"}]  # the SDK accepts plain dicts
        response = await client.chat.create(messages=messages, model="reka-flash")
        assert response.responses[0].message.content == "Mock reply to: hi"
        assert response.responses[0].finish_reason == "stop"
        assert response.usage.output_tokens == 4

        contents = [
            chunk.responses[0].chunk.content
            async for chunk in client.chat.create_stream(messages=messages, model="reka-flash")
        ]
        assert contents[-1] == "Mock reply to: hi"
        assert len(contents) == 4

        models = await client.models.get()
        assert [m.id for m in models] == [
            "reka-core",
            "reka-flash",
            "reka-edge",
            "reka-core-20240501",
            "reka-flash-20240904",
            "reka-flash-3",
            "reka-edge-2603",
            "reka-flash-research",
        ]
    finally:
        # The SDK never closes its httpx client itself.
        await client._client_wrapper.httpx_client.httpx_client.aclose()


async def test_official_sync_sdk_parses_every_reply(server: MockRekaServer) -> None:
    from reka.client import Reka

    def run() -> tuple[Any, Any, list[str]]:
        client = Reka(base_url=server.base_url, api_key="test-key")
        try:
            messages: Any = [{"role": "user", "content": "sync hi"}]
            response = client.chat.create(messages=messages, model="reka-core")
            chunks = list(client.chat.create_stream(messages=messages, model="reka-core"))
            models = client.models.get()
            return (
                response.responses[0].message.content,
                chunks[-1].responses[0].chunk.content,
                [m.id for m in models],
            )
        finally:
            client._client_wrapper.httpx_client.httpx_client.close()

    content, streamed, model_ids = await asyncio.to_thread(run)
    assert content == streamed == "Mock reply to: sync hi"
    assert "reka-core" in model_ids
