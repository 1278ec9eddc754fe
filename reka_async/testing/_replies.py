"""The mock server's deterministic replies: their text, token counts and JSON bodies."""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ._json import dumps
from ._research import Research
from ._tools import ToolCall, tool_calls

WORD_RE: Final = re.compile(r"\S+")
#: ``[[pieces:["ha", "ha", "ha!"]]]``: the reply is these pieces joined, and a stream sends one
#: content event per piece (cumulative or delta as the server's mode says), whatever
#: ``stream_chunks`` is. Tests use it for the streams that cannot be told apart on the wire.
_PIECES_RE: Final = re.compile(r"\[\[pieces:(\[.*?\])\]\]")
_JSON_PREFILL_CONTINUATION: Final = '\n{"answer": "mock"}\n```\n'
_PLAIN_PREFILL_CONTINUATION: Final = " and so it continues."


def _text_of(content: Any) -> str:
    """Return the text of a message's content: the string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if text is None:
                    text = part.get("output")  # tool_output parts
                if isinstance(text, str):
                    texts.append(text)
        return "".join(texts)
    return ""


def _count_input_tokens(messages: list[Any]) -> int:
    total = 0
    for message in messages:
        if isinstance(message, dict):
            total += len(_text_of(message.get("content")).split())
    return max(total, 1)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    tool_calls: list[ToolCall] | None = None
    research: Research | None = None
    #: The stream's content pieces, when a ``[[pieces:...]]`` directive chose them.
    pieces: tuple[str, ...] | None = None


def stream_pieces(text: str) -> tuple[str, ...] | None:
    """The pieces a ``[[pieces:[...]]]`` directive in ``text`` asks for (a JSON list of
    strings), or None (no directive, or not such a list: then it is plain text)."""
    if "[[pieces:" not in text:
        return None
    match = _PIECES_RE.search(text)
    if match is None:
        return None
    try:
        pieces = json.loads(match.group(1))
    except ValueError:
        return None
    if not isinstance(pieces, list) or not pieces or not all(isinstance(p, str) for p in pieces):
        return None
    return tuple(pieces)


def last_text(body: Any) -> str:
    """Leniently return the text of the last message (for directives and canned replies)."""
    if isinstance(body, dict):
        messages = body.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            return _text_of(messages[-1].get("content"))
    return ""


def make_reply(
    body: dict[str, Any],
    call_id: Callable[[], str],
    *,
    openai: bool = False,
    content: str | None = None,
) -> Reply:
    """Compute the deterministic reply to a validated chat request body.

    Args:
        body: The request, native or (with ``openai``) in the OpenAI dialect.
        call_id: Hands out tool call ids.
        openai: Whether ``body`` is in the OpenAI dialect (tool calls then finish with
            ``"tool_calls"``; native ones with ``"stop"``, as the native contract says).
        content: The text to answer instead of the echo (structured outputs); ``stop`` and
            ``max_tokens`` still apply.
    """
    messages: list[dict[str, Any]] = body["messages"]
    last = messages[-1]
    input_tokens = _count_input_tokens(messages)
    text = _text_of(last.get("content"))
    calls = tool_calls(body, text, call_id, openai=openai)
    if calls is not None:
        tokens = sum(len(call.arguments_json.split()) for call in calls)
        return Reply("", "tool_calls" if openai else "stop", input_tokens, tokens, calls)

    pieces = stream_pieces(text) if content is None else None
    if pieces is not None:
        joined = "".join(pieces)
        return Reply(joined, "stop", input_tokens, len(joined.split()), pieces=pieces)
    if content is not None:
        reply = content
    elif last.get("role") == "assistant":
        if text.lstrip().startswith("```json"):
            reply = _JSON_PREFILL_CONTINUATION
            if text.endswith("\n"):  # the prefill already ended the line
                reply = reply.lstrip("\n")
        else:
            reply = _PLAIN_PREFILL_CONTINUATION
    else:
        reply = "Mock reply to: " + text

    finish_reason = "stop"
    stop = body.get("stop")
    if isinstance(stop, str):  # the OpenAI dialect takes one string too
        stop = [stop]
    if stop:
        cut = min((i for s in stop if s and (i := reply.find(s)) >= 0), default=-1)
        if cut >= 0:
            reply = reply[:cut]
    output_tokens = len(reply.split())
    max_tokens = body.get("max_tokens")
    if max_tokens is None and openai:
        max_tokens = body.get("max_completion_tokens")
    if max_tokens is not None and output_tokens > max_tokens:
        if max_tokens <= 0:
            reply = ""
        else:
            ends = [m.end() for m in itertools.islice(WORD_RE.finditer(reply), max_tokens)]
            reply = reply[: ends[-1]]
        output_tokens = max_tokens if max_tokens > 0 else 0
        finish_reason = "length"
    return Reply(reply, finish_reason, input_tokens, output_tokens)


def split_pieces(text: str, chunks: int | None) -> list[str]:
    """Split text into stream pieces whose concatenation is exactly the text.

    With ``chunks`` None there is one piece per word (each keeps its trailing whitespace);
    otherwise exactly ``chunks`` pieces, on word boundaries when there are enough words.
    """
    starts = [m.start() for m in WORD_RE.finditer(text)]
    words = len(starts)
    if chunks is None and not words:
        return [text]
    if chunks is None or chunks == words:
        bounds = [0, *starts[1:], len(text)]
    elif chunks < words:
        # Group the words into `chunks` contiguous runs of near-equal size.
        bounds = [0, *(starts[(i * words) // chunks] for i in range(1, chunks)), len(text)]
    else:
        # More pieces wanted than words: split on characters (pieces may be empty).
        length = len(text)
        bounds = [(i * length) // chunks for i in range(chunks)] + [length]
    return [text[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


def fallback_reply(body: Any) -> Reply:
    """The reply a fault may corrupt when the request itself has no valid reply."""
    text = "Mock reply to: " + last_text(body)
    return Reply(text, "stop", 1, len(text.split()))


def response_body(chat_id: str, model: str, reply: Reply) -> bytes:
    """The JSON body of a non-streaming chat response."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls is not None:
        message["tool_calls"] = [call.native() for call in reply.tool_calls]
    return dumps(
        {
            "id": chat_id,
            "model": model,
            "responses": [{"finish_reason": reply.finish_reason, "message": message}],
            "usage": {
                "input_tokens": reply.input_tokens,
                "output_tokens": reply.output_tokens,
            },
        }
    )


def stream_events(
    chat_id: str,
    model: str,
    reply: Reply,
    stream_chunks: int | None,
    *,
    delta: bool = False,
    trailer: bool = False,
) -> list[bytes]:
    """Return the JSON payload of every event of a native stream.

    Args:
        chat_id: The ``id`` of every event.
        model: The ``model`` of every event.
        reply: What the stream answers.
        stream_chunks: Content events (None: one per word).
        delta: Send each event's new text in ``chunk.content`` instead of the text so far.
        trailer: Add a usage-only event with empty ``responses`` after the finished one.
    """
    usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    if reply.tool_calls is not None:
        calls = [call.native() for call in reply.tool_calls]
        chunk = {"role": "assistant", "content": "", "tool_calls": calls}
        item = {"finish_reason": reply.finish_reason, "chunk": chunk}
        payloads = [dumps({"id": chat_id, "model": model, "responses": [item], "usage": usage})]
    else:
        payloads = _text_events(chat_id, model, reply, stream_chunks, delta=delta)
    if trailer:
        payloads.append(dumps({"id": chat_id, "model": model, "responses": [], "usage": usage}))
    return payloads


def _text_events(
    chat_id: str, model: str, reply: Reply, stream_chunks: int | None, *, delta: bool
) -> list[bytes]:
    text = reply.text
    pieces = reply.pieces or split_pieces(text, stream_chunks)
    starts = [m.start() for m in WORD_RE.finditer(text)]
    payloads: list[bytes] = []
    cumulative = 0
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        cumulative += len(piece)
        content = piece if delta else text[:cumulative]
        tokens = reply.output_tokens if i == last else bisect.bisect_left(starts, cumulative)
        payloads.append(
            dumps(
                {
                    "id": chat_id,
                    "model": model,
                    "responses": [
                        {
                            "finish_reason": reply.finish_reason if i == last else None,
                            "chunk": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {"input_tokens": reply.input_tokens, "output_tokens": tokens},
                }
            )
        )
    return payloads
