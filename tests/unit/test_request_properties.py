"""Property tests: arbitrary wire bodies, SSE bytes, CLI input lines and request arguments only
ever produce models or the package's own documented exceptions."""

# Each property is "a result OR one documented exception", so pytest.raises does not fit.
# ruff: noqa: PT017

from __future__ import annotations

import asyncio
import itertools
import json
import re
from typing import Any

import pytest
from _seam import answers, client_over
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reka_async import AsyncClient, BatchRunner
from reka_async._assemble import Assembler
from reka_async._exceptions import (
    APIError,
    APIResponseValidationError,
    APIStatusError,
    InvalidRequestError,
)
from reka_async._models import ChatChunk, ChatResponse, Model
from reka_async._sse import ServerSentEvent, SSEDecoder
from reka_async._wire import (
    parse_chat_response,
    parse_chunk_event,
    parse_completion,
    parse_completion_chunk,
    parse_models,
    request_body,
    to_openai_body,
)
from reka_async._wire.events import StreamEvent
from reka_async.jobs import BadLine, InvalidInputLine, JobInput, line_preparer
from reka_async.testing import MockResponse

BASE = "https://api.example.test/v1"
CHAT_URL = BASE + "/chat"
#: For the properties that run a client per example (over a ``MockTransport``).
CLIENT_RUNS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELD_NAMES = [
    "id",
    "model",
    "responses",
    "usage",
    "message",
    "chunk",
    "finish_reason",
    "role",
    "content",
    "tool_calls",
    "type",
    "text",
    "image_url",
    "tool_call_id",
    "output",
    "name",
    "parameters",
    "input_tokens",
    "output_tokens",
    "error",
    "detail",
    "loc",
    "msg",
    "choices",
    "delta",
    "index",
    "function",
    "arguments",
    "reasoning_content",
    "reasoning_steps",
    "args",
    "tool_name",
    "tool_output",
    "annotations",
    "url_citation",
    "url",
    "start_index",
    "prompt_tokens",
    "completion_tokens",
    "data",
    "pricing",
    "context_length",
]
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(FIELD_NAMES),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=25,
)


def _response_like(payload_key: str) -> st.SearchStrategy[Any]:
    """Bodies close to the real shape, so parsing gets deep before it fails (or succeeds)."""
    message = st.fixed_dictionaries(
        {},
        optional={
            "role": json_values,
            "content": st.one_of(
                st.text(max_size=10),
                st.lists(
                    st.fixed_dictionaries(
                        {"type": st.sampled_from(["text", "image_url", "weird"]) | json_values},
                        optional={"text": json_values, "image_url": json_values},
                    ),
                    max_size=3,
                ),
                json_values,
            ),
            "tool_calls": json_values,
        },
    )
    item = st.fixed_dictionaries(
        {payload_key: st.one_of(message, json_values)},
        optional={"finish_reason": json_values},
    )
    return st.fixed_dictionaries(
        {"id": st.one_of(st.text(max_size=5), json_values), "model": st.text(max_size=5)},
        optional={
            "responses": st.one_of(st.lists(item, max_size=2), json_values),
            "usage": st.one_of(
                st.fixed_dictionaries({}, optional={"input_tokens": json_values}), json_values
            ),
        },
    )


chat_bodies = st.one_of(json_values, _response_like("message"))
chunk_bodies = st.one_of(json_values, _response_like("chunk"))


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# --------------------------------------------------------------------------- (a) parsing


@settings(max_examples=200, deadline=None)
@given(chat_bodies)
def test_parse_chat_response_returns_model_or_raises(data: Any) -> None:
    try:
        result = parse_chat_response(data)
    except Exception:
        return
    assert isinstance(result, ChatResponse)
    assert isinstance(result.text, str)


@settings(max_examples=200, deadline=None)
@given(chunk_bodies)
def test_an_assembled_chunk_is_a_model_or_nothing(data: Any) -> None:
    try:
        event = parse_chunk_event(data)
    except (KeyError, TypeError, ValueError):
        return
    result = Assembler().feed(event)
    if result is not None:
        assert isinstance(result, ChatChunk)
        assert isinstance(result.text, str)


@settings(max_examples=200, deadline=None)
@given(chunk_bodies)
def test_parse_chunk_event_returns_an_event_or_raises(data: Any) -> None:
    try:
        event = parse_chunk_event(data)
    except (KeyError, TypeError, ValueError):
        return
    assert isinstance(event, StreamEvent)
    assert event.deltas is False
    assert all(c.content is None or isinstance(c.content, str) for c in event.choices)


def _completion_like(payload_key: str) -> st.SearchStrategy[Any]:
    """``/chat/completions`` bodies and chunks close to the real shape."""
    call = st.fixed_dictionaries(
        {},
        optional={
            "id": json_values,
            "index": st.integers(0, 3) | json_values,
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {}, optional={"name": json_values, "arguments": st.text(max_size=12) | json_values}
            )
            | json_values,
        },
    )
    step = st.fixed_dictionaries(
        {},
        optional={
            "role": st.sampled_from(["assistant", "tool"]) | json_values,
            "reasoning_content": json_values,
            "tool_calls": st.lists(
                st.fixed_dictionaries({}, optional={"id": json_values, "args": json_values}),
                max_size=2,
            )
            | json_values,
            "tool_call_id": json_values,
            "content": st.fixed_dictionaries(
                {}, optional={"tool_name": json_values, "tool_output": json_values}
            )
            | json_values,
        },
    )
    annotation = st.fixed_dictionaries(
        {},
        optional={
            "type": json_values,
            "url_citation": st.fixed_dictionaries(
                {}, optional={"url": json_values, "start_index": json_values}
            )
            | json_values,
        },
    )
    message = st.fixed_dictionaries(
        {},
        optional={
            "role": json_values,
            "content": st.text(max_size=10) | json_values,
            "reasoning_content": json_values,
            "tool_calls": st.lists(call, max_size=2) | json_values,
            "reasoning_steps": st.lists(step, max_size=2) | json_values,
            "annotations": st.lists(annotation, max_size=2) | json_values,
        },
    )
    choice = st.fixed_dictionaries(
        {payload_key: st.one_of(message, json_values)},
        optional={"finish_reason": json_values, "index": json_values},
    )
    return st.fixed_dictionaries(
        {"id": st.one_of(st.text(max_size=5), json_values), "model": st.text(max_size=5)},
        optional={
            "choices": st.one_of(st.lists(choice, max_size=2), json_values),
            "usage": st.one_of(
                st.fixed_dictionaries(
                    {}, optional={"prompt_tokens": json_values, "completion_tokens": json_values}
                ),
                json_values,
            ),
        },
    )


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, _completion_like("message")))
def test_parse_completion_returns_a_response_or_raises(data: Any) -> None:
    try:
        result = parse_completion(data)
    except (KeyError, TypeError, ValueError):
        return
    assert isinstance(result, ChatResponse)
    assert isinstance(result.text, str)
    for call in result.tool_calls:
        assert isinstance(call.parameters, dict)


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, _completion_like("delta")))
def test_parse_completion_chunk_returns_an_event_or_raises(data: Any) -> None:
    try:
        event = parse_completion_chunk(data)
    except (KeyError, TypeError, ValueError):
        return
    assert isinstance(event, StreamEvent)
    assert event.deltas is True
    for piece in event.choices:
        assert isinstance(piece.index, int)
        assert piece.content is None or isinstance(piece.content, str)
        for call in piece.tool_calls or []:
            assert call.arguments is None or isinstance(call.arguments, str)


models_bodies = st.one_of(
    json_values,
    st.lists(st.text(max_size=5), max_size=3),
    st.fixed_dictionaries(
        {"data": st.lists(st.dictionaries(keys, json_values, max_size=5), max_size=3)}
    ),
)


@settings(max_examples=200, deadline=None)
@given(models_bodies)
def test_parse_models_returns_models_or_raises(data: Any) -> None:
    try:
        models = parse_models(data)
    except (KeyError, TypeError, ValueError):
        return
    assert all(isinstance(m, Model) and isinstance(m.id, str) for m in models)


raw_bodies = st.one_of(
    chat_bodies.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
)


async def _create(response: MockResponse) -> Any:
    transport = answers(response, url=CHAT_URL)
    async with client_over(transport, "k", base_url=BASE, max_retries=0) as client:
        return await client.chat.create(
            messages=[{"role": "user", "content": "hi"}], model="reka-flash"
        )


@CLIENT_RUNS
@given(body=raw_bodies)
def test_client_200_any_body(body: bytes) -> None:
    try:
        result = _run(_create(MockResponse(200, content=body)))
    except APIResponseValidationError as exc:
        assert exc.status_code == 200
        assert isinstance(str(exc), str)
        return
    assert isinstance(result, ChatResponse)
    assert isinstance(result.text, str)


header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30
) | st.sampled_from(["0", "1.5", "-3", "nan", "inf", "1e999", "Wed, 21 Oct 2015 07:28:00 GMT"])
error_bodies = st.one_of(
    raw_bodies,
    st.fixed_dictionaries(
        {
            "error": st.one_of(
                json_values,
                st.fixed_dictionaries({}, optional={"type": json_values, "message": json_values}),
            )
        }
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"detail": json_values}).map(lambda v: json.dumps(v).encode()),
)


@CLIENT_RUNS
@given(
    status=st.integers(400, 599),
    body=error_bodies,
    headers=st.dictionaries(
        st.sampled_from(
            ["retry-after", "retry-after-ms", "x-ratelimit-reset", "x-ratelimit-remaining"]
        ),
        header_values,
        max_size=4,
    ),
)
def test_client_error_status_any_body(status: int, body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(APIStatusError) as info:
        _run(_create(MockResponse(status, content=body, headers=headers)))
    exc = info.value
    assert exc.status_code == status
    assert str(exc).startswith(f"HTTP {status}")
    assert repr(exc)


# --------------------------------------------------------------------------- (b) SSE


sse_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.sampled_from(
            [
                b"data: ",
                b"data:",
                b"event: error",
                b"id: 1\x00",
                b"retry: 12",
                b"retry: \xd9\xa3",
                b": comment",
                b"\r\n",
                b"\n",
                b"\r",
                b"[DONE]",
                b'{"id": "x"}',
                b"\xff\xfe",
                b"data: {",
            ]
        )
        | st.binary(max_size=8),
        max_size=30,
    ).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(data=sse_bytes, cuts=st.lists(st.integers(0, 200), max_size=6))
def test_sse_decoder_never_raises(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    split: list[ServerSentEvent] = []
    decoder = SSEDecoder()
    for a, b in itertools.pairwise(points):
        split += decoder.feed(data[a:b])
    split += decoder.flush()
    whole = SSEDecoder()
    assert whole.feed(b"") == []
    events = whole.feed(data) + whole.flush()
    # How the bytes were split never changes the events.
    assert split == events
    for event in events:
        assert isinstance(event.data, str)


def _sse(values: list[Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(v).encode() + b"\n\n" for v in values)


@CLIENT_RUNS
@given(body=st.one_of(sse_bytes, st.lists(chunk_bodies, max_size=3).map(_sse)))
def test_stream_any_body(body: bytes) -> None:
    response = MockResponse(200, content=body, headers={"Content-Type": "text/event-stream"})
    transport = answers(response, url=CHAT_URL)

    async def go() -> None:
        async with client_over(transport, "k", base_url=BASE, max_retries=0) as client:
            stream = client.chat.create_stream(
                messages=[{"role": "user", "content": "hi"}], model="reka-flash"
            )
            try:
                async with stream:
                    async for chunk in stream:
                        assert isinstance(chunk, ChatChunk)
                        assert isinstance(chunk.delta, str)
            except APIError as exc:
                assert isinstance(str(exc), str)

    _run(go())


# --------------------------------------------------------------------------- (c) CLI input

ITEM_KEYS = [
    "prompt",
    "messages",
    "custom_id",
    "model",
    "max_tokens",
    "temperature",
    "stop",
    "tool_choice",
    "extra_body",
    "tools",
    "seed",
    "use_search_engine",
]
item_values = st.one_of(
    json_values,
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "role": st.one_of(st.sampled_from(["user", "assistant", "robot"]), json_values),
                "content": json_values,
                "tool_calls": json_values,
            },
        ),
        max_size=3,
    ),
)
json_lines = st.dictionaries(
    st.one_of(st.sampled_from(ITEM_KEYS), st.text(max_size=5)), item_values, max_size=5
).map(lambda d: json.dumps(d, ensure_ascii=False).encode())
input_lines = st.one_of(
    json_lines,
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=40).map(lambda t: t.replace("\n", "").encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"   ", b"\r", b"\xef\xbb\xbf{}", b"{", b'{"prompt": "hi"}\r']),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(input_lines, min_size=1, max_size=8))
def test_cli_input_lines(lines: list[bytes]) -> None:
    client = AsyncClient("k", BASE)
    line_of: dict[int, int] = {}
    prepare = line_preparer(line_of, model="reka-flash", params={})
    runner = BatchRunner(client, concurrency=1, model="reka-flash", prepare=prepare)
    source = JobInput()
    for lineno, raw in enumerate(lines, start=1):
        item = source.parse(raw, lineno)
        if item is None:  # a blank line
            text = raw.decode("utf-8", "replace")
            assert not (text.removeprefix("\ufeff") if lineno == 1 else text).strip()
            continue
        assert isinstance(item, dict)
        assert isinstance(item["custom_id"], str)
        assert item["custom_id"]
        if isinstance(item, BadLine):
            assert isinstance(item.error, InvalidInputLine)
            assert re.match(rf"line {lineno}: ", str(item.error)), str(item.error)
        line_of[lineno - 1] = lineno
        try:
            custom_id, body = runner.prepare(lineno - 1, item)
        except InvalidInputLine as exc:
            assert str(exc).startswith(f"line {lineno}: "), str(exc)
        else:
            assert not isinstance(item, BadLine)
            assert isinstance(custom_id, str)
            assert isinstance(body["model"], str)
            assert body["messages"]


# --------------------------------------------------------------------------- (d) requests


odd_values = st.one_of(
    json_values,
    st.binary(max_size=4),
    st.tuples(st.text(max_size=3)),
    st.frozensets(st.integers(), max_size=2),
    st.just(object()),
    st.floats(),  # nan and inf too
    st.sampled_from(["auto", "none", "tool", ["END"], "END", 1, 0, -1, 2**70, True]),
)
messages = st.one_of(
    odd_values,
    st.lists(
        st.one_of(
            odd_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "role": st.one_of(
                        st.sampled_from(["user", "assistant", "system", "tool_output", "tool"]),
                        odd_values,
                    ),
                    "content": st.one_of(
                        odd_values,
                        st.lists(
                            st.one_of(
                                odd_values,
                                st.fixed_dictionaries(
                                    {"type": st.sampled_from(["text", "image_url"]) | odd_values},
                                    optional={
                                        "text": odd_values,
                                        "image_url": odd_values,
                                        "tool_call_id": odd_values,
                                        "output": odd_values,
                                    },
                                ),
                            ),
                            max_size=3,
                        ),
                    ),
                    "tool_calls": odd_values,
                },
            ),
        ),
        max_size=3,
    ),
)
params = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        (
            "max_tokens",
            "temperature",
            "top_p",
            "top_k",
            "seed",
            "stop",
            "tool_choice",
            "tools",
            "use_search_engine",
            "presence_penalty",
        ),
        odd_values,
    ),
)


# An unhashable role once escaped as TypeError from ``role in ROLES``.
@example(model="reka-flash", messages=[{"role": ["user"], "content": "x"}], params={}, stream=False)
@settings(max_examples=300, deadline=None)
@given(
    model=st.one_of(st.just("reka-flash"), odd_values),
    messages=messages,
    params=params,
    stream=st.booleans(),
)
def test_request_body_valid_or_invalid_request(
    model: Any, messages: Any, params: dict[str, Any], stream: bool
) -> None:
    try:
        body = request_body(model=model, messages=messages, params=params, stream=stream)
    except InvalidRequestError as exc:
        assert str(exc)
        return
    assert body["model"] == model
    assert isinstance(body["messages"], list)
    assert body["messages"]
    assert all(v is not None for v in body.values())
    if stream:
        assert body["stream"] is True
    try:
        openai_body = to_openai_body(body)
    except InvalidRequestError as exc:  # use_search_engine only
        assert "use_search_engine" in str(exc)
        return
    assert len(openai_body["messages"]) == len(body["messages"])
