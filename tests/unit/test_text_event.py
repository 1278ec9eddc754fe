"""The usual stream event's fast path (a dialect's ``text_event`` + ``Assembler.feed_text``)
gives the same chunks as decoding the event in full (``decode_event`` + ``Assembler.feed``)."""

from __future__ import annotations

from typing import Any

import pytest

from reka_async._assemble import Assembler
from reka_async._wire.native import parse_chunk_event, text_event
from reka_async._wire.openai import parse_completion_chunk, text_completion_chunk


def _native(content: Any, reason: Any = None, **extra: Any) -> dict[str, Any]:
    chunk = {"role": "assistant", "content": content}
    return {
        "id": "c1",
        "model": "reka-flash",
        "responses": [{"finish_reason": reason, "chunk": chunk}],
        **extra,
    }


def _openai(delta: dict[str, Any] | None, reason: Any = None, **extra: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": reason}
    if delta is not None:
        choice["delta"] = delta
    return {
        "id": "c1",
        "model": "reka-flash",
        "object": "chat.completion.chunk",
        "choices": [choice],
        **extra,
    }


NATIVE_STREAMS = {
    "cumulative": [_native("Hel"), _native("Hello"), _native("Hello world", "stop")],
    "delta": [_native("Hel"), _native("lo"), _native(" world"), _native("", "stop")],
    "rewrite": [_native("ab"), _native("abc"), _native("xyz"), _native("xyz!", "stop")],
    "usage and after the finish": [
        _native("a"),
        _native("ab", "stop", usage={"input_tokens": 3, "output_tokens": 2}),
        _native("abc"),
    ],
    "odd values go the general way": [
        _native("a"),
        {"id": 7, "model": "m", "responses": [{"chunk": {"content": "ab"}}]},
        _native(["not", "a", "string"]),
        {"id": "c1", "model": "m", "responses": [{"chunk": {"content": "x"}}, {"chunk": {}}]},
        _native("abcd", "stop"),
    ],
}

OPENAI_STREAMS = {
    "deltas": [
        _openai({"role": "assistant", "content": ""}),
        _openai({"content": "Hel"}),
        _openai({"content": "lo"}),
        _openai({}, "stop"),
        {
            "id": "c1",
            "model": "reka-flash",
            "choices": [],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2},
        },
    ],
    "no delta, usage on the last choice": [
        _openai({"content": "a"}),
        _openai(None, "length", usage={"prompt_tokens": 1, "completion_tokens": 1}),
    ],
    "tool calls and a second choice go the general way": [
        _openai({"content": "a"}),
        _openai(
            {"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{}"}}]}
        ),
        {"id": "c1", "model": "m", "choices": [{"index": 1, "delta": {"content": "b"}}]},
        _openai({"content": "c"}, "tool_calls"),
    ],
}


def _both_ways(
    events: list[dict[str, Any]], fast: Any, full: Any
) -> tuple[list[Any], list[Any], int]:
    a, b = Assembler(), Assembler()
    quick, slow, taken = [], [], 0
    for data in events:
        fields = fast(data)
        if fields is not None:
            taken += 1
            quick.append(a.feed_text(fields))
        else:
            quick.append(a.feed(full(data)))
        slow.append(b.feed(full(data)))
    assert a.response() == b.response()
    assert a.usage == b.usage
    assert a.finished == b.finished
    return quick, slow, taken


@pytest.mark.parametrize("name", sorted(NATIVE_STREAMS))
def test_native_usual_events_assemble_as_decoded_ones(name: str) -> None:
    quick, slow, taken = _both_ways(NATIVE_STREAMS[name], text_event, parse_chunk_event)
    assert quick == slow
    assert taken >= 2  # the fast path really ran


@pytest.mark.parametrize("name", sorted(OPENAI_STREAMS))
def test_openai_usual_events_assemble_as_decoded_ones(name: str) -> None:
    quick, slow, taken = _both_ways(
        OPENAI_STREAMS[name], text_completion_chunk, parse_completion_chunk
    )
    assert quick == slow
    assert taken >= 1


@pytest.mark.parametrize(
    "data",
    [
        _native("a", extra_field=1),
        {"id": "c1", "model": "m", "responses": [{"chunk": {"content": "a", "tool_calls": [{}]}}]},
        {"responses": [{"chunk": {"content": "a"}}]},  # no id: the full decoder reports it
        ["not", "an", "object"],
        _openai({"content": "a", "reasoning_content": "why"}),
        {"id": "c1", "model": "m", "choices": [{"index": 2, "delta": {"content": "a"}}]},
    ],
)
def test_only_the_usual_shape_takes_the_fast_path(data: Any) -> None:
    fields = text_event(data) if "choices" not in data else text_completion_chunk(data)
    if isinstance(data, dict) and "extra_field" in data:
        assert fields is not None  # unknown keys are ignored, as the full decoder does
    else:
        assert fields is None
