"""One stream event as either dialect sends it, before the stream assembles it.

Each dialect's decoder turns the JSON of one server-sent event into a ``StreamEvent``: what
this event carries, piece by piece, with no memory of the events before it. ``_stream.py``
assembles the pieces into ``ChatChunk`` objects (the running text, ``delta``, cumulative or
delta mode, tool-call fragments joined by index, the finish).

These classes are built once per stream event and never leave the package, so they are plain
slotted classes, not frozen: a frozen attrs ``__init__`` sets each field through
``object.__setattr__``. Decoding and assembling one event of a 64-event stream took about 7 us
with frozen ones and 5.5 us with these (a timeit loop over the decoder and the assembler).
"""

from __future__ import annotations

from typing import Any

import attrs

from .._models import Annotation, ReasoningStep, Usage

__all__ = ["ChoicePiece", "StreamEvent", "TextEvent", "ToolCallPiece"]


@attrs.define(kw_only=True)
class ToolCallPiece:
    """A tool call, or a fragment of one, in a stream event.

    Attributes:
        index: which call of the answer it belongs to (OpenAI fragments are joined by it).
        id, name: sent with the first fragment (OpenAI) or with the whole call (native).
        arguments: a fragment of the JSON-string arguments (OpenAI); joined, then parsed.
        parameters: the whole call's parameters, already an object (native).
    """

    index: int = 0
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    parameters: dict[str, Any] | None = None


@attrs.define(kw_only=True)
class ChoicePiece:
    """What one event carries for one answer (``responses[i]`` / ``choices[i]``).

    Attributes:
        index: the answer's position.
        role: sent on the first event of an answer (OpenAI) or on every one (native).
        content: the text as sent: a delta (OpenAI), or cumulative or a delta (native; the
            stream decides which from the first two content events).
        reasoning_content: a delta of the reasoning text (Research).
        reasoning_steps: steps completed in this event, appended to the answer's.
        annotations: citations completed in this event, appended to the answer's.
        tool_calls: calls or call fragments.
        finish_reason: set on the event that ends this answer.
    """

    index: int = 0
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning_steps: list[ReasoningStep] | None = None
    annotations: list[Annotation] | None = None
    tool_calls: list[ToolCallPiece] | None = None
    finish_reason: str | None = None


@attrs.define(kw_only=True)
class StreamEvent:
    """One decoded stream event.

    Attributes:
        id, model: as sent.
        choices: the answers this event carries something for (may be empty: a usage-only
            trailer, or a keep-alive).
        usage: token counts, when the event carries them.
        deltas: ``True`` when the dialect guarantees delta content (OpenAI); ``False`` when
            it may be cumulative or delta (native).
    """

    id: str
    model: str
    choices: list[ChoicePiece]
    usage: Usage | None = None
    deltas: bool = False


#: The usual stream event as its fields, ``(id, model, role, content, finish_reason, usage,
#: deltas)``: one answer (index 0) with text only. The dialects' ``text_event`` returns it
#: (or ``None`` for any other event) and the ``Assembler`` takes it without the two objects
#: and the list a ``StreamEvent`` costs per event.
TextEvent = tuple[str, str, str | None, str | None, str | None, Usage | None, bool]
