"""Every SDK lists models from one default mock: the official ``openai`` package
(``models.list``, ``models.retrieve``), ``reka-api`` (``models.get``) and ours, the same ids
for each. Needs ``openai`` and ``reka-api``: the full test environment only (``THIRD_PARTY_TESTS``
in noxfile.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from reka_async import AsyncClient
from reka_async.testing import MockRekaServer

KEY = "test-key"


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key=KEY) as srv:
        yield srv


async def reka_api_ids(server: MockRekaServer) -> list[str]:
    from reka.client import AsyncReka

    client = AsyncReka(base_url=server.base_url, api_key=KEY)
    try:
        return [m.id for m in await client.models.get()]
    finally:
        # The SDK never closes its httpx client itself.
        await client._client_wrapper.httpx_client.httpx_client.aclose()


async def test_openai_lists_the_models_reka_api_and_ours_list(server: MockRekaServer) -> None:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as oai:
        page = await oai.models.list()
    from_openai = [m.id for m in page.data]
    async with AsyncClient(KEY, server.base_url) as ours:
        from_ours = [m.id for m in await ours.models.list()]
    assert from_openai == await reka_api_ids(server) == from_ours
    assert "reka-flash-research" in from_openai
    assert all(m.object == "model" and m.owned_by == "reka" for m in page.data)


async def test_openai_retrieves_one_model(server: MockRekaServer) -> None:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as oai:
        model = await oai.models.retrieve("reka-flash")
        with pytest.raises(openai.NotFoundError):
            await oai.models.retrieve("reka-nonexistent")
    assert model.id == "reka-flash"
    assert model.object == "model"
    assert model.created > 0


def test_the_sync_openai_client_lists_models() -> None:
    with (
        MockRekaServer.in_thread(api_key=KEY) as server,
        openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as oai,
    ):
        ids = [m.id for m in oai.models.list()]
        retrieved = oai.models.retrieve("reka-core").id
    assert ids[:2] == ["reka-core", "reka-flash"]
    assert retrieved == "reka-core"
