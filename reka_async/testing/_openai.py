"""The OpenAI-compatible dialect, ``POST /v1/chat/completions``: its replies, bodies and streams.

Replies are those of ``/v1/chat`` for the same conversation (``"Mock reply to: ..."``), with:

* tool calls (see `_tools`), finished with ``"tool_calls"``;
* structured outputs: with ``response_format: {"type": "json_schema", ...}`` the content is a
  deterministic instance of the schema (see `_schema`), as compact-but-spaced JSON; with
  ``{"type": "json_object"}`` it is ``{"answer": "<the plain reply>"}``;
* Research (see `_research`): ``reasoning_content``, ``reasoning_steps`` and ``annotations``
  (no citations with a structured answer, whose JSON a sources sentence would break, nor
  with one cut short by ``max_tokens``).

A stream sends ``chat.completion.chunk`` events: ``role`` on the first delta; for Research the
``reasoning_content`` deltas, then ``reasoning_steps`` on an event of their own; the ``content``
deltas (one per word, or ``stream_chunks``); for Research the ``annotations`` on an event of
their own; ``finish_reason`` on the last of these; then a usage chunk with ``choices: []``, then
``data: [DONE]``. Tool calls stream as a first delta with each call's ``id``, ``name`` and an
empty ``arguments``, then the arguments in fragments joined by ``index``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any, Final

from ._faults import STATUS_FAULT_BODIES, error_body
from ._json import dumps
from ._openai_validation import validate_openai
from ._replies import Reply, last_text, make_reply, split_pieces
from ._research import RESEARCH_MODELS, research, wants_research
from ._schema import instance
from ._tools import argument_fragments

_SERVER_ERROR: Final = STATUS_FAULT_BODIES["500"]


def _structured(body: dict[str, Any]) -> str | None:
    """The content a ``response_format`` asks for, or None for plain text."""
    spec = body.get("response_format")
    if not isinstance(spec, dict):
        return None
    if spec.get("type") == "json_schema":
        schema = spec["json_schema"].get("schema") or {}
        return json.dumps(instance(schema), ensure_ascii=False)
    if spec.get("type") == "json_object":
        return json.dumps({"answer": "Mock reply to: " + last_text(body)}, ensure_ascii=False)
    return None


class OpenAIDialect:
    """``/v1/chat/completions`` for `MockRekaServer`.

    Args:
        models: The model ids accepted (research models are accepted besides).
        reject_tool_role: Answer 500 to a message with ``role: "tool"`` or a
            ``tool_call_id``, as integration tests report of the real API.
    """

    __slots__ = ("models", "reject_tool_role")

    def __init__(self, *, models: frozenset[str], reject_tool_role: bool) -> None:
        self.models = models | frozenset(RESEARCH_MODELS)
        self.reject_tool_role = reject_tool_role

    @property
    def done(self) -> bool:
        """OpenAI streams always end with ``data: [DONE]``."""
        return True

    def validate(self, body: Any) -> list[dict[str, Any]]:
        """The 422 ``detail`` entries of a body; [] when valid."""
        return validate_openai(body)

    def refuse(self, body: dict[str, Any]) -> tuple[int, bytes] | None:
        """The error answer to a valid body the server still refuses, or None."""
        model = body["model"]
        if model not in self.models:
            return 404, error_body("not_found_error", f"Model '{model}' not found")
        if self.reject_tool_role and any(
            isinstance(m, dict) and (m.get("role") == "tool" or "tool_call_id" in m)
            for m in body["messages"]
        ):
            return _SERVER_ERROR
        return None

    def reply(self, body: dict[str, Any], call_id: Callable[[], str]) -> Reply:
        """The deterministic reply to a valid, accepted body."""
        structured = _structured(body)
        reply = make_reply(body, call_id, openai=True, content=structured)
        if reply.tool_calls is not None or not wants_research(body):
            return reply
        found = research(body, last_text(body), reply.text, call_id)
        if structured is not None or reply.finish_reason != "stop":
            # A sources sentence would break the JSON, or follow a cut-off answer.
            found = dataclasses.replace(found, annotations=[], suffix="")
        return dataclasses.replace(
            reply,
            text=reply.text + found.suffix,
            output_tokens=reply.output_tokens + len(found.suffix.split()),
            research=found,
        )

    def json_body(self, chat_id: str, model: str, reply: Reply) -> bytes:
        """The body of a non-streaming answer."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls is not None:
            message["content"] = reply.text or None
            message["tool_calls"] = [call.openai() for call in reply.tool_calls]
        if reply.research is not None:
            message["reasoning_content"] = reply.research.reasoning
            message["reasoning_steps"] = reply.research.steps
            message["annotations"] = reply.research.annotations
        choice = {"index": 0, "finish_reason": reply.finish_reason, "message": message}
        return dumps(
            {
                "id": chat_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": _usage(reply),
            }
        )

    def events(
        self, chat_id: str, model: str, reply: Reply, stream_chunks: int | None
    ) -> list[bytes]:
        """The payload of every event of a stream (``[DONE]`` is the writer's)."""
        head = {
            "id": chat_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        deltas = _deltas(reply, stream_chunks)
        last = len(deltas) - 1
        payloads = [
            dumps(
                {
                    **head,
                    "choices": [
                        {
                            "index": 0,
                            "delta": delta,
                            "finish_reason": reply.finish_reason if i == last else None,
                        }
                    ],
                }
            )
            for i, delta in enumerate(deltas)
        ]
        payloads.append(dumps({**head, "choices": [], "usage": _usage(reply)}))
        return payloads


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _deltas(reply: Reply, stream_chunks: int | None) -> list[dict[str, Any]]:
    if reply.tool_calls is not None:
        calls = reply.tool_calls
        heads = [
            {
                "index": i,
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": ""},
            }
            for i, c in enumerate(calls)
        ]
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None, "tool_calls": heads}]
        for i, call in enumerate(calls):
            deltas += [
                {"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}
                for fragment in argument_fragments(call.arguments_json)
            ]
        return deltas
    found = reply.research
    if found is not None:
        deltas = [{"reasoning_content": p} for p in split_pieces(found.reasoning, None)]
        if found.steps:
            deltas.append({"reasoning_steps": found.steps})
    else:
        deltas = []
    pieces = reply.pieces or split_pieces(reply.text, stream_chunks)
    deltas += [{"content": piece} for piece in pieces]
    if found is not None and found.annotations:
        deltas.append({"annotations": found.annotations})
    deltas[0] = {"role": "assistant", **deltas[0]}
    return deltas
