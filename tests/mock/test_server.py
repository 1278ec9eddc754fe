"""Tests of the embedded mock Reka server (`reka_async.testing`), over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reka_async import AsyncClient, testing
from reka_async.testing import (
    DEFAULT_FAULT_KINDS,
    FAULTS,
    MockRekaServer,
    MockServerProcess,
    RecordedRequest,
    window_start_clock,
)

KEY = {"X-Api-Key": "test-key"}
ROOT = Path(__file__).resolve().parents[2]

Reply = tuple[int, Mapping[str, str], bytes]


# --------------------------------------------------------------------------- helpers


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key="test-key") as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as sess:
        yield sess


def chat_body(content: Any = "hello world", **fields: Any) -> dict[str, Any]:
    return {"model": "reka-flash", "messages": [{"role": "user", "content": content}], **fields}


async def post(
    session: aiohttp.ClientSession,
    server: MockRekaServer,
    body: Any,
    *,
    headers: Mapping[str, str] = KEY,
) -> Reply:
    async with session.post(f"{server.base_url}/chat", json=body, headers=headers) as resp:
        return resp.status, resp.headers, await resp.read()


def parse_sse(raw: bytes) -> list[tuple[str, str]]:
    """Decode server-sent events into (event, data) pairs (CRLF, comments, multi-line data)."""
    events: list[tuple[str, str]] = []
    event, data = "message", list[str]()
    for line in raw.decode().replace("\r\n", "\n").split("\n"):
        if not line:
            if data:
                events.append((event, "\n".join(data)))
            event, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value
    return events


def stream_contents(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(data) for event, data in parse_sse(raw) if data != "[DONE]"]


# --------------------------------------------------------------------------- module surface


def test_all_lists_the_public_names() -> None:
    assert sorted(testing.__all__) == [
        "Billing",
        "DEFAULT_FAULT_KINDS",
        "FAULTS",
        "GenerationModel",
        "Generator",
        "MockRekaServer",
        "MockResponse",
        "MockServerProcess",
        "MockTransport",
        "RecordedRequest",
        "main",
        "sse",
        "window_start_clock",
    ]
    assert set(DEFAULT_FAULT_KINDS) <= FAULTS
    assert {"rate_limit", "credits", "drop", "cut", "slow_first_byte", "html"} <= FAULTS


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        MockRekaServer(fault_kinds=["nope"])
    with pytest.raises(ValueError, match="stream_chunks"):
        MockRekaServer(stream_chunks=0)
    with pytest.raises(ValueError, match="unknown faults"):
        MockRekaServer().inject("500", "bogus")


def test_base_url_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = MockRekaServer().base_url


# --------------------------------------------------------------------------- happy paths


async def test_chat_reply_has_the_contract_shape(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    status, headers, raw = await post(session, server, chat_body("hello world"))
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert headers["x-request-id"].startswith("req_")
    assert headers["x-ratelimit-limit"].isdigit()
    assert int(headers["x-ratelimit-remaining"]) > 0
    assert float(headers["x-ratelimit-reset"]) > time.time()
    body = json.loads(raw)
    assert set(body) == {"id", "model", "responses", "usage"}
    assert isinstance(body["id"], str)
    assert body["model"] == "reka-flash"
    assert body["responses"] == [
        {
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Mock reply to: hello world"},
        }
    ]
    assert body["usage"] == {"input_tokens": 2, "output_tokens": 5}


async def test_replies_are_deterministic_and_request_ids_unique(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    replies = [await post(session, server, chat_body("same words")) for _ in range(3)]
    texts = {json.loads(raw)["responses"][0]["message"]["content"] for _, _, raw in replies}
    assert texts == {"Mock reply to: same words"}
    assert len({headers["x-request-id"] for _, headers, _ in replies}) == 3


async def test_list_content_parts_are_joined_and_counted(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    content = [
        {"type": "image_url", "image_url": "https://example.invalid/cat.png"},
        {"type": "text", "text": "what is this"},
    ]
    body = {
        "model": "reka-core",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": content},
        ],
    }
    _, _, raw = await post(session, server, body)
    reply = json.loads(raw)
    assert reply["responses"][0]["message"]["content"] == "Mock reply to: what is this"
    assert reply["usage"]["input_tokens"] == 5


async def test_models_lists_the_configured_ids(session: aiohttp.ClientSession) -> None:
    async with (
        MockRekaServer(models=["reka-core", "reka-mini"]) as server,
        session.get(f"{server.base_url}/models", headers=KEY) as resp,
    ):
        assert resp.status == 200
        assert "x-request-id" in resp.headers
        assert await resp.json() == [{"id": "reka-core"}, {"id": "reka-mini"}]


async def test_stream_content_is_cumulative_and_ends_with_the_full_reply(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    _, _, plain = await post(session, server, chat_body("one two three four"))
    status, headers, raw = await post(session, server, chat_body("one two three four", stream=True))
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert b"[DONE]" not in raw
    events = stream_contents(raw)
    assert len(events) == 7  # one event per word of "Mock reply to: one two three four"
    contents = [e["responses"][0]["chunk"]["content"] for e in events]
    for previous, current in itertools.pairwise(contents):
        assert current.startswith(previous)
        assert len(current) > len(previous)
    final = json.loads(plain)
    assert contents[-1] == final["responses"][0]["message"]["content"]
    assert [e["responses"][0]["finish_reason"] for e in events] == [None] * (len(events) - 1) + [
        "stop"
    ]
    assert [e["usage"]["output_tokens"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["usage"] == final["usage"]
    assert all(e["responses"][0]["chunk"]["role"] == "assistant" for e in events)


@pytest.mark.parametrize("chunks", [1, 3, 40])
async def test_stream_chunks_sets_the_number_of_events(
    session: aiohttp.ClientSession, chunks: int
) -> None:
    async with MockRekaServer(stream_chunks=chunks) as server:
        _, _, raw = await post(session, server, chat_body("a b c d e", stream=True))
    events = stream_contents(raw)
    assert len(events) == chunks
    assert events[-1]["responses"][0]["chunk"]["content"] == "Mock reply to: a b c d e"


@pytest.mark.parametrize(
    ("options", "marker"),
    [
        ({"sse_done": True}, b"data: [DONE]\n\n"),
        ({"sse_crlf": True}, b"\r\n\r\n"),
        ({"sse_extras": True}, b"event: message\nid: 1\n"),
    ],
)
async def test_sse_variants_carry_the_same_events(
    session: aiohttp.ClientSession, options: dict[str, Any], marker: bytes
) -> None:
    async with MockRekaServer(**options) as server:
        _, _, raw = await post(session, server, chat_body("x y", stream=True))
    assert marker in raw
    if options.get("sse_done"):
        assert raw.endswith(marker)
    events = stream_contents(raw)
    assert [e["responses"][0]["chunk"]["content"] for e in events] == [
        "Mock ",
        "Mock reply ",
        "Mock reply to: ",
        "Mock reply to: x ",
        "Mock reply to: x y",
    ]


async def test_sse_extras_spread_json_over_several_data_lines(
    session: aiohttp.ClientSession,
) -> None:
    async with MockRekaServer(sse_extras=True) as server:
        _, _, raw = await post(session, server, chat_body("hi", stream=True))
    first_event = raw.split(b"\n\n")[0]
    assert first_event.startswith(b": ")
    assert first_event.count(b"data: ") > 1


# --------------------------------------------------------------------------- generation knobs


async def test_stop_cuts_before_the_first_stop_string(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    _, _, raw = await post(session, server, chat_body("alpha beta gamma", stop=["gamma", "beta"]))
    reply = json.loads(raw)
    assert reply["responses"][0]["message"]["content"] == "Mock reply to: alpha "
    assert reply["responses"][0]["finish_reason"] == "stop"
    assert reply["usage"]["output_tokens"] == 4


async def test_max_tokens_truncates_with_finish_reason_length(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    _, _, raw = await post(session, server, chat_body("alpha beta gamma", max_tokens=3))
    reply = json.loads(raw)
    assert reply["responses"][0] == {
        "finish_reason": "length",
        "message": {"role": "assistant", "content": "Mock reply to:"},
    }
    assert reply["usage"]["output_tokens"] == 3
    _, _, raw = await post(
        session, server, chat_body("alpha beta gamma", max_tokens=3, stream=True)
    )
    events = stream_contents(raw)
    assert events[-1]["responses"][0]["finish_reason"] == "length"
    assert events[-1]["responses"][0]["chunk"]["content"] == "Mock reply to:"


async def test_json_prefill_continues_and_stops_after_the_code_block(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    messages = [
        {"role": "user", "content": "Give me JSON"},
        {"role": "assistant", "content": "```json"},
    ]
    body = {"model": "reka-core", "messages": messages}
    _, _, raw = await post(session, server, body)
    continuation = json.loads(raw)["responses"][0]["message"]["content"]
    assert continuation == '\n{"answer": "mock"}\n```\n'
    assert json.loads(continuation.removesuffix("```\n")) == {"answer": "mock"}
    _, _, raw = await post(session, server, {**body, "stop": ["```\n"]})
    assert json.loads(raw)["responses"][0]["message"]["content"] == '\n{"answer": "mock"}\n'


async def test_plain_prefill_replies_with_a_continuation_only(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    messages = [{"role": "user", "content": "Tell"}, {"role": "assistant", "content": "Once"}]
    _, _, raw = await post(session, server, {"model": "reka-core", "messages": messages})
    assert json.loads(raw)["responses"][0]["message"]["content"] == " and so it continues."


async def test_tool_choice_tool_returns_a_tool_call(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    tools = [{"name": "get_weather", "description": "Weather", "parameters": {}}]
    _, _, raw = await post(session, server, chat_body("rain?", tools=tools, tool_choice="tool"))
    response = json.loads(raw)["responses"][0]
    assert response["finish_reason"] == "stop"
    message = response["message"]
    assert message["content"] == ""
    assert message["tool_calls"] == [
        {"id": message["tool_calls"][0]["id"], "name": "get_weather", "parameters": {}}
    ]
    assert message["tool_calls"][0]["id"].startswith("call_")


async def test_unknown_body_fields_are_ignored(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    status, _, _ = await post(session, server, chat_body(custom_field={"a": 1}, temperature=0))
    assert status == 200


# --------------------------------------------------------------------------- auth and errors


@pytest.mark.parametrize(("key", "status"), [("any-key", 200), ("other", 200), ("", 401)])
async def test_by_default_the_mock_takes_any_non_empty_key(
    session: aiohttp.ClientSession, key: str, status: int
) -> None:
    async with MockRekaServer() as srv:
        got, _, _ = await post(session, srv, chat_body(), headers={"X-Api-Key": key})
    assert got == status


@pytest.mark.parametrize("headers", [{"X-Api-Key": "wrong"}, {}])
async def test_wrong_or_missing_key_is_401(
    server: MockRekaServer, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, resp_headers, raw = await post(session, server, chat_body(), headers=headers)
    assert status == 401
    assert json.loads(raw) == {
        "error": {"type": "authentication_error", "message": "Invalid or missing API key"}
    }
    assert "x-request-id" in resp_headers
    assert "x-ratelimit-remaining" in resp_headers


async def test_api_key_none_accepts_any_non_empty_key(session: aiohttp.ClientSession) -> None:
    async with MockRekaServer(api_key=None) as server:
        ok, _, _ = await post(session, server, chat_body(), headers={"X-Api-Key": "anything"})
        missing, _, _ = await post(session, server, chat_body(), headers={})
    assert (ok, missing) == (200, 401)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (chat_body() | {"messages": []}, ["body", "messages"]),
        ({"model": "reka-flash"}, ["body", "messages"]),
        ({"model": "reka-flash", "messages": "hi"}, ["body", "messages"]),
        ({"messages": [{"role": "user", "content": "x"}]}, ["body", "model"]),
        (chat_body() | {"model": 3}, ["body", "model"]),
        (
            {"model": "reka-flash", "messages": [{"role": "robot", "content": "x"}]},
            ["body", "messages", 0, "role"],
        ),
        ({"model": "reka-flash", "messages": ["x"]}, ["body", "messages", 0]),
        (
            {"model": "reka-flash", "messages": [{"role": "user", "content": 5}]},
            ["body", "messages", 0, "content"],
        ),
        (chat_body(max_tokens="10"), ["body", "max_tokens"]),
        (chat_body(max_tokens=1.5), ["body", "max_tokens"]),
        (chat_body(temperature="hot"), ["body", "temperature"]),
        (chat_body(top_k=True), ["body", "top_k"]),
        (chat_body(stop="END"), ["body", "stop"]),
        (chat_body(stop=["ok", 1]), ["body", "stop", 1]),
        (chat_body(stream="yes"), ["body", "stream"]),
        (["not", "an", "object"], ["body"]),
    ],
)
async def test_invalid_bodies_get_a_fastapi_422(
    server: MockRekaServer, session: aiohttp.ClientSession, body: Any, loc: list[Any]
) -> None:
    status, _, raw = await post(session, server, body)
    assert status == 422
    detail = json.loads(raw)["detail"]
    assert loc in [item["loc"] for item in detail]
    assert all(isinstance(item["msg"], str) and isinstance(item["type"], str) for item in detail)


async def test_malformed_json_is_422(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{server.base_url}/chat", data=b"{nope", headers=KEY) as resp:
        assert resp.status == 422
        assert "detail" in await resp.json()


async def test_unknown_model_is_404(server: MockRekaServer, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, server, chat_body() | {"model": "reka-giant"})
    assert status == 404
    assert json.loads(raw) == {
        "error": {"type": "not_found_error", "message": "Model 'reka-giant' not found"}
    }


async def test_unknown_path_is_404_with_the_error_shape(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{server.base_url}/nothing-here", headers=KEY) as resp:
        assert resp.status == 404
        assert "x-request-id" in resp.headers
        assert (await resp.json())["error"]["type"] == "not_found_error"


# --------------------------------------------------------------------------- faults

ERROR_TYPES = {
    "400": "validation_error",
    "401": "authentication_error",
    "403": "permission_error",
    "404": "not_found_error",
    "408": "timeout_error",
    "409": "conflict_error",
    "500": "server_error",
    "502": "server_error",
    "503": "server_error",
}


@pytest.mark.parametrize(("fault", "error_type"), sorted(ERROR_TYPES.items()))
async def test_status_faults_answer_with_their_status_and_json_error(
    server: MockRekaServer, session: aiohttp.ClientSession, fault: str, error_type: str
) -> None:
    server.inject(fault)
    status, headers, raw = await post(session, server, chat_body())
    assert status == int(fault)
    assert json.loads(raw)["error"]["type"] == error_type
    assert "x-request-id" in headers
    assert server.requests[-1].fault == fault


async def test_422_fault_uses_the_detail_shape(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("422")
    status, _, raw = await post(session, server, chat_body())
    assert status == 422
    assert isinstance(json.loads(raw)["detail"], list)


async def test_rate_limit_fault_advertises_retry_after(session: aiohttp.ClientSession) -> None:
    async with MockRekaServer(retry_after_s=2.5) as server:
        server.inject("rate_limit")
        status, headers, raw = await post(session, server, chat_body())
    assert status == 429
    assert json.loads(raw) == {
        "error": {"type": "rate_limit_error", "message": "Rate limit exceeded"}
    }
    assert headers["retry-after"] == "2.5"
    assert headers["x-ratelimit-remaining"] == "0"
    assert float(headers["x-ratelimit-reset"]) == pytest.approx(time.time() + 2.5, abs=1.0)


async def test_whole_retry_after_is_sent_as_an_integer(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("rate_limit")
    status, headers, _ = await post(session, server, chat_body())
    assert (status, headers["retry-after"]) == (429, "1")


async def test_credits_fault_is_a_429_without_retry_after(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("credits")
    status, headers, raw = await post(session, server, chat_body())
    assert status == 429
    assert "retry-after" not in headers
    assert headers["x-ratelimit-remaining"] != "0"
    error = json.loads(raw)["error"]
    assert error["type"] == "insufficient_credits"
    assert "credits" in error["message"]


async def test_drop_closes_the_connection_without_a_response(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("drop")
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(session, server, chat_body())
    status, _, _ = await post(session, server, chat_body())
    assert status == 200
    assert [r.fault for r in server.requests] == ["drop", None]


async def test_cut_non_stream_sends_half_a_body(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("cut")
    async with session.post(f"{server.base_url}/chat", json=chat_body(), headers=KEY) as resp:
        assert resp.status == 200
        assert resp.content_length is not None
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_cut_stream_sends_some_events_then_breaks(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("cut")
    lines: list[bytes] = []

    async def consume(resp: aiohttp.ClientResponse) -> None:
        async for line in resp.content:
            lines.append(line)

    async with session.post(
        f"{server.base_url}/chat", json=chat_body("a b c d", stream=True), headers=KEY
    ) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await consume(resp)
    data = [line for line in lines if line.startswith(b"data: ")]
    assert 0 < len(data) < 7  # the full stream has 7 events
    assert all(json.loads(line[6:])["responses"][0]["finish_reason"] is None for line in data)


async def test_html_fault_is_a_502_html_page(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("html")
    status, headers, raw = await post(session, server, chat_body())
    assert status == 502
    assert headers["Content-Type"].startswith("text/html")
    assert raw == b"<html><body><h1>502 Bad Gateway</h1></body></html>"


async def test_truncated_json_fault_is_half_a_valid_body(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("truncated_json")
    status, headers, raw = await post(session, server, chat_body())
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert raw.startswith(b'{"id":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


async def test_wrong_shape_fault(server: MockRekaServer, session: aiohttp.ClientSession) -> None:
    server.inject("wrong_shape")
    status, _, raw = await post(session, server, chat_body())
    assert status == 200
    assert json.loads(raw) == {"unexpected": True, "responses": "nope"}


async def test_error_event_fault_ends_a_stream_with_an_error_event(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("error_event", "error_event")
    status, _, raw = await post(session, server, chat_body("a b c", stream=True))
    assert status == 200
    events = parse_sse(raw)
    assert [name for name, _ in events] == ["message", "message", "error"]
    assert json.loads(events[-1][1]) == {
        "error": {"type": "server_error", "message": "Stream failed"}
    }
    status, _, _ = await post(session, server, chat_body())
    assert status == 500  # outside a stream, error_event is a plain 500


async def test_slow_first_byte_delays_then_answers(session: aiohttp.ClientSession) -> None:
    async with MockRekaServer(slow_first_byte_s=0.2) as server:
        server.inject("slow_first_byte")
        started = time.monotonic()
        status, _, _ = await post(session, server, chat_body())
    assert status == 200
    assert time.monotonic() - started >= 0.2


async def test_client_hanging_up_on_a_slow_request_frees_the_handler(
    server: MockRekaServer,
) -> None:
    server.inject("slow_first_byte")  # 30 s by default
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with pytest.raises(asyncio.TimeoutError):
            await post(session, server, chat_body())
    deadline = time.monotonic() + 5
    while server.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert server.in_flight == 0
    assert server.max_in_flight == 1


async def test_models_endpoint_suffers_injected_faults(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("503", "truncated_json")
    url = f"{server.base_url}/models"
    async with session.get(url, headers=KEY) as resp:
        assert resp.status == 503
    async with session.get(url, headers=KEY) as resp:
        raw = await resp.read()
    assert raw.startswith(b'[{"id":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


# --------------------------------------------------------------------------- fault selection


async def test_inject_queue_is_fifo_one_fault_per_request(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("500", "502")
    server.inject("503")
    statuses = [(await post(session, server, chat_body()))[0] for _ in range(4)]
    assert statuses == [500, 502, 503, 200]
    assert [r.fault for r in server.requests] == ["500", "502", "503", None]


async def test_fault_directive_applies_to_every_attempt(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    body = chat_body("please fail [[fault:503]]")
    statuses = [(await post(session, server, body))[0] for _ in range(3)]
    assert statuses == [503, 503, 503]


async def test_counted_fault_directive_applies_to_the_first_k_requests(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    body = chat_body("flaky [[fault:rate_limit*2]]")
    other = chat_body("other [[fault:500*1]]")
    statuses = [(await post(session, server, body))[0] for _ in range(3)]
    other_statuses = [(await post(session, server, other))[0] for _ in range(2)]
    assert statuses == [429, 429, 200]
    assert other_statuses == [500, 200]
    _, _, raw = await post(session, server, body)
    # The directive stays in the prompt, so the reply echoes it.
    assert "[[fault:rate_limit*2]]" in json.loads(raw)["responses"][0]["message"]["content"]


async def test_directive_wins_over_the_inject_queue(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.inject("500")
    first, _, _ = await post(session, server, chat_body("[[fault:html]]"))
    second, _, _ = await post(session, server, chat_body())
    assert (first, second) == (502, 500)


async def test_latency_directive_delays_one_request(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    status, _, _ = await post(session, server, chat_body("slow [[latency_ms:150]]"))
    assert status == 200
    assert time.monotonic() - started >= 0.15


async def test_random_faults_are_reproducible_with_a_seed(
    session: aiohttp.ClientSession,
) -> None:
    runs = []
    for _ in range(2):
        async with MockRekaServer(fault_rate=0.5, fault_kinds=["500", "503"], seed=7) as server:
            runs.append([(await post(session, server, chat_body()))[0] for _ in range(12)])
    assert runs[0] == runs[1]
    assert {200, 500, 503} <= set(runs[0])


async def test_rpm_limit_answers_429_once_the_window_is_used_up(
    session: aiohttp.ClientSession,
) -> None:
    async with MockRekaServer(rpm_limit=2, clock=window_start_clock()) as server:
        replies = [await post(session, server, chat_body()) for _ in range(3)]
    assert [status for status, _, _ in replies] == [200, 200, 429]
    assert [h["x-ratelimit-remaining"] for _, h, _ in replies] == ["1", "0", "0"]
    assert replies[0][1]["x-ratelimit-limit"] == "2"
    assert 59 < float(replies[2][1]["retry-after"]) <= 60
    assert json.loads(replies[2][2])["error"]["type"] == "rate_limit_error"
    assert [r.fault for r in server.requests] == [None, None, "rate_limit"]


async def test_the_window_follows_its_clock_to_the_minute_and_rolls_at_its_end(
    session: aiohttp.ClientSession,
) -> None:
    now = [1_800_000_059.5]  # half a second before a clock minute ends
    async with MockRekaServer(rpm_limit=1, clock=lambda: now[0]) as server:
        first = await post(session, server, chat_body())
        now[0] = 1_800_000_059.75
        refused = await post(session, server, chat_body())
        now[0] = 1_800_000_060.0
        next_window = await post(session, server, chat_body())
    assert [r[0] for r in (first, refused, next_window)] == [200, 429, 200]
    assert float(refused[1]["retry-after"]) == pytest.approx(0.25)
    assert refused[1]["x-ratelimit-reset"] == "1800000060.000"
    assert next_window[1]["x-ratelimit-reset"] == "1800000120.000"
    assert next_window[1]["x-ratelimit-remaining"] == "0"


def test_window_start_clock_reads_a_fresh_window_ahead_of_the_real_clock() -> None:
    clock = window_start_clock(60.0)
    real = time.time()
    read = clock()
    assert real <= read < real + 60.0
    assert 0.0 < read % 60.0 < 30.0  # early in a window: it has most of its minute left


# --------------------------------------------------------------------------- bookkeeping


async def test_requests_are_recorded(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    before = time.monotonic()
    body = chat_body("record me")
    await post(session, server, body)
    (recorded,) = server.requests
    assert isinstance(recorded, RecordedRequest)
    assert (recorded.method, recorded.path, recorded.fault) == ("POST", "/v1/chat", None)
    assert recorded.body == body
    assert recorded.headers["x-api-key"] == "test-key"
    assert before <= recorded.received_at <= time.monotonic()


async def test_record_requests_false_keeps_nothing(session: aiohttp.ClientSession) -> None:
    async with MockRekaServer(record_requests=False) as server:
        await post(session, server, chat_body())
        assert server.requests == []


async def test_in_flight_high_water_mark_counts_concurrent_requests(
    session: aiohttp.ClientSession,
) -> None:
    async with MockRekaServer(latency_s=0.05) as server:
        results = await asyncio.gather(*(post(session, server, chat_body()) for _ in range(10)))
        assert [status for status, _, _ in results] == [200] * 10
        assert server.max_in_flight == 10
        assert server.in_flight == 0
        server.reset_stats()
        assert (server.max_in_flight, server.requests) == (0, [])


async def test_set_latency_changes_the_delay(
    server: MockRekaServer, session: aiohttp.ClientSession
) -> None:
    server.set_latency(latency_s=0.1, chunk_latency_s=0.02)
    started = time.monotonic()
    await post(session, server, chat_body("a b", stream=True))  # 5 events, 4 gaps
    assert time.monotonic() - started >= 0.1 + 4 * 0.02


# --------------------------------------------------------------------------- sync and CLI


def test_in_thread_serves_synchronous_clients() -> None:
    with MockRekaServer.in_thread(api_key="sync-key") as server:
        request = urllib.request.Request(
            f"{server.base_url}/chat",
            data=json.dumps(chat_body("from sync")).encode(),
            headers={"X-Api-Key": "sync-key", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            reply = json.loads(resp.read())
        server.inject("503")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        info.value.close()
        assert len(server.requests) == 2
    assert info.value.code == 503
    assert reply["responses"][0]["message"]["content"] == "Mock reply to: from sync"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_serves_until_sigterm_and_exits_zero() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "reka_async.testing", "--port", "0", "--api-key", "cli"]
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                assert selector.select(timeout=20), "the mock server printed nothing"
            line = proc.stdout.readline().decode().strip()
            prefix = "Mock Reka server listening on "
            assert line.startswith(prefix), line
            base_url = line.removeprefix(prefix)
            request = urllib.request.Request(f"{base_url}/models", headers={"X-Api-Key": "cli"})
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert json.loads(resp.read())[0] == {"id": "reka-core"}
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


async def test_mock_server_process_serves_then_stops() -> None:
    with MockServerProcess("--api-key", "proc-key", "--seed", "1") as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.process.poll() is None
        async with AsyncClient(api_key="proc-key", base_url=server.base_url) as client:
            response = await client.chat.create(
                messages=[{"role": "user", "content": "over a pipe"}], model="reka-flash"
            )
        assert response.text == "Mock reply to: over a pipe"
    assert server.process.poll() == 0  # gone after SIGTERM: a clean shutdown, not a kill
    assert server.process.stdout is not None
    assert server.process.stdout.closed
    server.stop()  # idempotent


def test_mock_server_process_reports_a_failed_start_with_its_stderr() -> None:
    server = MockServerProcess("--fault-kinds", "no-such-fault", startup_timeout=20)
    with pytest.raises(RuntimeError, match="did not start") as info:
        server.start()
    assert "no-such-fault" in str(info.value)  # the server's own error message, from stderr
    assert server.process.returncode == 2
