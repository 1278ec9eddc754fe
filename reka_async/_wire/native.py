"""Decoding the native dialect's responses (``POST /chat``, its stream events, ``/models``).

One decoder per type, and it is the fast one: hand-written structuring for the shapes of the
hot path (measured ~3x faster than cattrs' generated hooks, ``benchmarks/profile_hotpath.py``)
with the same semantics: unknown keys ignored, ``str``/``int`` coercion, ``usage`` optional.
Values that already have the right type (the normal case) skip the coercion call. The
property tests run these same functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from .._models import (
    ChatChunk,
    ChatResponse,
    ChunkResponse,
    Message,
    MessageResponse,
    Model,
    Usage,
)
from .._types import Role
from ._convert import converter, structure_content, structure_message
from ._json import loads
from .events import ChoicePiece, StreamEvent, ToolCallPiece

__all__ = [
    "load_chat_response",
    "parse_chat_response",
    "parse_chunk",
    "parse_chunk_event",
    "parse_models",
]


def _usage(data: Any) -> Usage:
    if not data:
        return Usage()
    given = data.get("input_tokens", 0)
    taken = data.get("output_tokens", 0)
    return Usage(
        input_tokens=given if type(given) is int else int(given),
        output_tokens=taken if type(taken) is int else int(taken),
    )


def _message_response(data: Any) -> MessageResponse:
    reason = data.get("finish_reason")
    message = data["message"]
    if type(message) is dict and not message.get("tool_calls"):
        # The common shape, inlined: a dict with string content and no tool calls.
        role = message.get("role", "assistant")
        content = message.get("content")
        structured = Message(
            role=cast(Role, role if type(role) is str else str(role)),
            content=content if type(content) is str else structure_content(content),
        )
    else:
        structured = structure_message(message)
    return MessageResponse(
        message=structured,
        finish_reason=reason if reason is None or type(reason) is str else str(reason),
    )


def parse_chat_response(data: Any) -> ChatResponse:
    """Structure a decoded ``POST /chat`` body. Raises on a body of the wrong shape."""
    responses = data["responses"]
    if not isinstance(responses, list):
        raise TypeError("responses must be a list")
    id_, model = data["id"], data["model"]
    return ChatResponse(
        id=id_ if type(id_) is str else str(id_),
        model=model if type(model) is str else str(model),
        responses=[_message_response(r) for r in responses],
        usage=_usage(data.get("usage")),
    )


def load_chat_response(raw: bytes) -> ChatResponse:
    """Decode and structure a ``POST /chat`` body in one call (the hot path's parser)."""
    return parse_chat_response(loads(raw))


_structure_chunk_response = converter.get_structure_hook(ChunkResponse)


def parse_chunk(data: Any, previous_text: str = "") -> ChatChunk:
    """Structure a decoded stream event, with its ``delta`` against the text so far.

    The per-event hot path of streaming: one ``ChatChunk`` built once, ``delta`` included.
    Raises on a body of the wrong shape.
    """
    responses = data["responses"]
    if not isinstance(responses, list):
        raise TypeError("responses must be a list")
    answers = [_structure_chunk_response(r, ChunkResponse) for r in responses]
    text = answers[0].chunk.text if answers else ""
    usage = data.get("usage")
    id_, model = data["id"], data["model"]
    return ChatChunk(
        id=id_ if type(id_) is str else str(id_),
        model=model if type(model) is str else str(model),
        responses=answers,
        usage=None if usage is None else _usage(usage),
        delta=text[len(previous_text) :] if text.startswith(previous_text) else text,
    )


def parse_chunk_event(data: Any) -> StreamEvent:
    """Decode one native stream event (``responses[].chunk``) into its pieces.

    The content is passed on as sent: the stream decides whether it is cumulative or a delta.
    Raises on an event of the wrong shape.
    """
    responses = data["responses"]
    if not isinstance(responses, list):
        raise TypeError("responses must be a list")
    choices = []
    for i, item in enumerate(responses):
        chunk = item["chunk"]
        if type(chunk) is not dict:
            raise TypeError("chunk must be an object")
        content = chunk.get("content")
        if content is not None and type(content) is not str:
            content = structure_message(chunk).text  # parts: their text
        reason = item.get("finish_reason")
        calls = structure_message(chunk).tool_calls if chunk.get("tool_calls") else None
        role = chunk.get("role")
        choices.append(
            ChoicePiece(
                index=i,
                role=role if role is None or type(role) is str else str(role),
                content=content,
                finish_reason=reason if reason is None or type(reason) is str else str(reason),
                tool_calls=[
                    ToolCallPiece(index=j, id=c.id, name=c.name, parameters=c.parameters)
                    for j, c in enumerate(calls)
                ]
                if calls
                else None,
            )
        )
    usage = data.get("usage")
    id_, model = data["id"], data["model"]
    return StreamEvent(
        id=id_ if type(id_) is str else str(id_),
        model=model if type(model) is str else str(model),
        choices=choices,
        usage=None if usage is None else _usage(usage),
        deltas=False,
    )


def parse_models(data: Any) -> list[Model]:
    """Structure a decoded ``GET /models`` body (a list, or ``{"data": [...]}``)."""
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise TypeError("expected a JSON list of models")
    return [converter.structure(item, Model) for item in data]


def load_models(raw: bytes) -> list[Model]:
    """Decode and structure a ``GET /models`` body."""
    return parse_models(loads(raw))
