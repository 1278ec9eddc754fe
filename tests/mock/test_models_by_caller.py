"""``GET /v1/models`` answers each caller in its SDK's shape (the OpenAI list to a ``Bearer``
token, the native list to ``X-Api-Key`` alone) with the same models, unless one shape is
forced; ``GET /v1/models/{id}`` (a mock extra) answers one model; our client reads every shape
whichever dialect asks."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from reka_async import AsyncClient
from reka_async.testing import MockRekaServer, MockServerProcess

KEY = "test-key"
BEARER = {"Authorization": f"Bearer {KEY}"}
NATIVE = {"X-Api-Key": KEY}
BOTH = {**NATIVE, **BEARER}


async def get(
    server: MockRekaServer, path: str, headers: Mapping[str, str], method: str = "GET"
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{server.base_url}{path}", headers=headers) as resp,
    ):
        return resp.status, json.loads(await resp.read())


def ids(body: Any) -> list[str]:
    entries = body["data"] if isinstance(body, dict) else body
    return [e if isinstance(e, str) else e["id"] for e in entries]


async def test_a_bearer_token_gets_the_openai_list() -> None:
    async with MockRekaServer(api_key=KEY) as server:
        _, body = await get(server, "/models", BEARER)
    assert body["object"] == "list"
    assert all(m["object"] == "model" for m in body["data"])


async def test_an_api_key_header_alone_gets_the_native_list() -> None:
    async with MockRekaServer(api_key=KEY) as server:
        _, body = await get(server, "/models", NATIVE)
    assert isinstance(body, list)
    assert body[0] == {"id": "reka-core"}


async def test_bearer_wins_when_both_headers_are_sent() -> None:
    async with MockRekaServer(api_key=KEY) as server:
        _, body = await get(server, "/models", BOTH)
    assert body["object"] == "list"


async def test_both_shapes_list_the_same_models() -> None:
    async with MockRekaServer(api_key=KEY) as server:
        _, native = await get(server, "/models", NATIVE)
        _, openai = await get(server, "/models", BEARER)
    assert ids(native) == ids(openai)
    assert {"reka-flash-research", "reka-flash-3", "reka-core-20240501"} <= set(ids(native))


@pytest.mark.parametrize("shape", ["list", "openai", "strings"])
async def test_a_forced_shape_wins_over_the_caller(shape: str) -> None:
    async with MockRekaServer(api_key=KEY, models_shape=shape) as server:  # type: ignore[arg-type]
        _, native = await get(server, "/models", NATIVE)
        _, bearer = await get(server, "/models", BEARER)
    assert native == bearer
    assert ids(native)[:2] == ["reka-core", "reka-flash"]


async def test_one_model_is_an_openai_model_object() -> None:
    async with MockRekaServer(api_key=KEY) as server:
        status, body = await get(server, "/models/reka-flash", NATIVE)
        dated_status, dated = await get(server, "/models/reka-core-20240501", BEARER)
    assert status == dated_status == 200
    assert body["id"] == "reka-flash"
    assert body["object"] == "model"
    assert body["pricing"] == {"prompt": "0.0000008", "completion": "0.000002"}
    assert {"created", "owned_by", "context_length"} <= set(body)
    assert dated["name"] == "Reka Core"  # a dated name takes its family's details


async def test_an_unlisted_model_is_a_404_and_a_wrong_key_a_401() -> None:
    async with MockRekaServer(api_key=KEY, models=["reka-core"]) as server:
        missing, body = await get(server, "/models/reka-flash", NATIVE)
        refused, _ = await get(server, "/models/reka-core", {"X-Api-Key": "no"})
        wrong_method, _ = await get(server, "/models/reka-core", NATIVE, method="POST")
    assert (missing, refused, wrong_method) == (404, 401, 405)
    assert body["error"]["type"] == "not_found_error"
    assert "reka-flash" in body["error"]["message"]


async def test_one_model_suffers_injected_faults() -> None:
    async with MockRekaServer(api_key=KEY) as server:
        server.inject("503")
        status, _ = await get(server, "/models/reka-flash", NATIVE)
    assert status == 503


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_our_client_lists_the_same_models_from_the_default_mock(api: str) -> None:
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(KEY, server.base_url, api=api) as client,  # type: ignore[arg-type]
    ):
        models = await client.models.list()
        _, native = await get(server, "/models", NATIVE)
    assert [m.id for m in models] == ids(native)
    flash = next(m for m in models if m.id == "reka-flash")
    # Either way the client gets a shape it reads: the OpenAI one carries the details.
    assert (flash.context_length is not None) is (api == "openai")


def test_the_mock_process_answers_by_caller_by_default() -> None:
    """``python -m reka_async.testing`` without ``--models-shape`` answers by caller."""
    with MockServerProcess() as server:
        bodies = []
        for headers in (BEARER, NATIVE):
            req = urllib.request.Request(f"{server.base_url}/models", headers=headers)
            with urllib.request.urlopen(req, timeout=10) as resp:
                bodies.append(json.loads(resp.read()))
    assert bodies[0]["object"] == "list"
    assert ids(bodies[0]) == ids(bodies[1])
    assert isinstance(bodies[1], list)
