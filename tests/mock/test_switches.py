"""The mock server's switches for the eras of the contract: native stream modes and trailer,
``/models`` shapes, credits wordings, both auth headers, 405s and the command-line flags."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from reka_async import AsyncClient, InsufficientCreditsError
from reka_async.testing import FAULTS, MockRekaServer, MockServerProcess

KEY = "test-key"
BODY = {"model": "reka-flash", "messages": [{"role": "user", "content": "one two three"}]}


async def request(
    server: MockRekaServer,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    headers = {"X-Api-Key": KEY} if headers is None else headers
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{server.base_url}{path}", json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.read()


def data_lines(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]


# --------------------------------------------------------------------------- native streams


async def test_delta_mode_sends_the_new_text_of_each_event() -> None:
    async with MockRekaServer(native_stream="delta") as server:
        _, raw = await request(server, "/chat", {**BODY, "stream": True})
        _, plain = await request(server, "/chat", BODY)
    events = [json.loads(d) for d in data_lines(raw)]
    pieces = [e["responses"][0]["chunk"]["content"] for e in events]
    assert pieces == ["Mock ", "reply ", "to: ", "one ", "two ", "three"]
    assert "".join(pieces) == json.loads(plain)["responses"][0]["message"]["content"]
    assert events[-1]["responses"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("mode", "contents"),
    [("delta", ["ha", "ha", "ha!"]), ("cumulative", ["ha", "haha", "hahaha!"])],
)
async def test_a_pieces_directive_streams_those_pieces_in_the_servers_mode(
    mode: str, contents: list[str]
) -> None:
    messages = [{"role": "user", "content": '[[pieces:["ha", "ha", "ha!"]]]'}]
    body = {"model": "reka-flash", "messages": messages}
    async with MockRekaServer(native_stream=mode) as server:  # type: ignore[arg-type]
        _, raw = await request(server, "/chat", {**body, "stream": True})
        _, plain = await request(server, "/chat", body)
        _, compatible = await request(server, "/chat/completions", {**body, "stream": True})
    events = [json.loads(d) for d in data_lines(raw)]
    assert [e["responses"][0]["chunk"]["content"] for e in events] == contents
    assert [e["responses"][0]["finish_reason"] for e in events] == [None, None, "stop"]
    assert json.loads(plain)["responses"][0]["message"]["content"] == "hahaha!"
    deltas = [json.loads(d) for d in data_lines(compatible) if d != "[DONE]"]
    texts = [c["delta"].get("content") for e in deltas for c in e["choices"]]
    assert [t for t in texts if t] == ["ha", "ha", "ha!"]


# The client of this branch still takes native chunk.content as cumulative and cannot read a
# list of strings from /models; the contract asks for both (strict: these flip when it does).
@pytest.mark.parametrize("mode", ["cumulative", "delta"])
async def test_the_client_assembles_either_mode(mode: str) -> None:
    async with (
        MockRekaServer(api_key=KEY, native_stream=mode) as server,  # type: ignore[arg-type]
        AsyncClient(KEY, server.base_url) as client,
    ):
        stream = client.chat.create_stream(model="reka-flash", messages=BODY["messages"])
        deltas = [chunk.delta async for chunk in stream]
    assert stream.text == "".join(deltas) == "Mock reply to: one two three"


async def test_trailer_adds_a_usage_only_event_then_done() -> None:
    async with MockRekaServer(native_stream_trailer=True) as server:
        _, raw = await request(server, "/chat", {**BODY, "stream": True})
    *events, trailer, done = data_lines(raw)
    assert done == "[DONE]"
    assert json.loads(events[-1])["responses"][0]["finish_reason"] == "stop"
    last = json.loads(trailer)
    assert last["responses"] == []
    assert last["usage"] == json.loads(events[-1])["usage"]


async def test_without_the_trailer_there_is_no_done() -> None:
    async with MockRekaServer() as server:
        _, raw = await request(server, "/chat", {**BODY, "stream": True})
    assert "[DONE]" not in data_lines(raw)


def test_invalid_switch_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="native_stream"):
        MockRekaServer(native_stream="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="models_shape"):
        MockRekaServer(models_shape="dict")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- /models shapes


async def test_models_default_shape_is_the_legacy_list() -> None:
    async with MockRekaServer() as server:
        _, raw = await request(server, "/models", method="GET")
    assert json.loads(raw)[:2] == [{"id": "reka-core"}, {"id": "reka-flash"}]


async def test_models_openai_shape_lists_the_catalogue_with_its_details() -> None:
    async with MockRekaServer(models_shape="openai") as server:
        _, raw = await request(server, "/models", method="GET")
    body = json.loads(raw)
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids == [
        "reka-core",
        "reka-flash",
        "reka-edge",
        "reka-core-20240501",
        "reka-flash-20240904",
        "reka-flash-3",
        "reka-edge-2603",
        "reka-flash-research",
    ]
    flash = body["data"][1]
    assert flash["pricing"] == {"prompt": "0.0000008", "completion": "0.000002"}
    for model in body["data"]:
        assert {"context_length", "max_output_length", "input_modalities"} <= set(model)
        assert {"output_modalities", "name", "description", "owned_by", "created"} <= set(model)
        assert all(isinstance(float(p), float) for p in model["pricing"].values())


async def test_models_strings_shape_is_a_list_of_ids() -> None:
    async with MockRekaServer(models_shape="strings", models=["reka-core", "x"]) as server:
        _, raw = await request(server, "/models", method="GET")
    assert json.loads(raw) == ["reka-core", "x"]


@pytest.mark.parametrize("shape", ["list", "openai", "strings"])
async def test_the_client_reads_every_models_shape(shape: str) -> None:
    async with (
        MockRekaServer(api_key=KEY, models_shape=shape) as server,  # type: ignore[arg-type]
        AsyncClient(KEY, server.base_url) as client,
    ):
        models = await client.models.list()
    assert "reka-flash" in [m.id for m in models]
    if shape == "openai":
        assert next(m for m in models if m.id == "reka-flash").context_length


# --------------------------------------------------------------------------- auth, 405, credits


async def test_native_chat_accepts_a_bearer_token() -> None:
    async with MockRekaServer(api_key=KEY) as server:
        ok, _ = await request(server, "/chat", BODY, headers={"Authorization": f"Bearer {KEY}"})
        wrong, _ = await request(server, "/chat", BODY, headers={"Authorization": "Bearer no"})
        basic, _ = await request(server, "/chat", BODY, headers={"Authorization": f"Basic {KEY}"})
    assert (ok, wrong, basic) == (200, 401, 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/chat"), ("GET", "/chat/completions"), ("POST", "/models"), ("PUT", "/chat")],
)
async def test_wrong_method_on_a_known_path_is_405(method: str, path: str) -> None:
    async with MockRekaServer() as server:
        status, raw = await request(server, path, method=method)
    assert status == 405
    assert json.loads(raw) == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize("fault", ["credits", "credits_p001", "credits_enough"])
async def test_every_credits_wording_is_insufficient_credits_to_the_client(fault: str) -> None:
    assert fault in FAULTS
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(KEY, server.base_url) as client,
    ):
        server.inject(fault)
        with pytest.raises(InsufficientCreditsError):
            await client.chat.create(model="reka-flash", messages=BODY["messages"], max_retries=3)
        assert len(server.requests) == 1


def test_cli_flags_reach_the_server() -> None:
    with MockServerProcess("--models-shape", "openai", "--native-stream-trailer") as server:
        req = urllib.request.Request(f"{server.base_url}/models", headers={"X-Api-Key": "k"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["object"] == "list"
        body = json.dumps({**BODY, "stream": True}).encode()
        req = urllib.request.Request(
            f"{server.base_url}/chat",
            data=body,
            headers={"X-Api-Key": "k", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert data_lines(resp.read())[-1] == "[DONE]"


async def test_native_tool_directive_calls_the_named_tool_with_schema_arguments() -> None:
    tools = [
        {"name": "other", "parameters": {}},
        {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "integer", "minimum": 7}, "note": {"type": "string"}},
                "required": ["id"],
            },
        },
    ]
    body = {"model": "reka-flash", "messages": [{"role": "user", "content": "[[tool:lookup]]"}]}
    async with MockRekaServer() as server:
        _, raw = await request(server, "/chat", {**body, "tools": tools})
        _, streamed = await request(server, "/chat", {**body, "tools": tools, "stream": True})
    response = json.loads(raw)["responses"][0]
    (call,) = response["message"]["tool_calls"]
    assert (call["name"], call["parameters"]) == ("lookup", {"id": 7})
    (event,) = [json.loads(d) for d in data_lines(streamed)]
    (streamed_call,) = event["responses"][0]["chunk"]["tool_calls"]
    assert streamed_call["parameters"] == {"id": 7}
