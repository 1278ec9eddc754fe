"""Assembling a chat stream: ``StreamEvent`` pieces in, ``ChatChunk`` objects out (sans-I/O).

The rules, for both dialects:

* **Cumulative or delta, from evidence.** OpenAI-dialect content is always a delta. Native
  content may be either (sources disagree), so it is judged on all of a stream's events: it
  is read as cumulative (the text so far) while each event's text starts with the text so
  far (a final event may also repeat it, or trim trailing whitespace); the first event that
  does not proves deltas, and the text is rebuilt from every piece received: while they were
  consistent, each piece was a prefix of the latest text, so their lengths are enough to
  rebuild them. When the rebuilt text does not extend the text handed out so far, the
  chunk says so (``ChatChunk.rewrite``: whoever printed the deltas starts over). A delta
  stream that stays consistent to its end (``"ha"``, ``"ha"``, ``"ha!"``) cannot be told
  apart on the wire: the caller pins the reading with ``stream_mode`` (``"cumulative"``:
  every event is the whole text so far, and one that does not extend it replaces it, flagged
  as a rewrite; ``"delta"``: every event is new text).
* **The finish ends the answer.** Once an answer has its ``finish_reason``, later pieces for
  it are ignored, and an event with nothing else is not handed out; a usage-only trailer still
  counts (its usage is merged).
* **Events with no answers** (``responses: []``, a usage-only chunk) carry no text and reset
  nothing.
* **Tool calls** arrive whole (native) or as fragments joined by index (OpenAI: ``arguments``
  is a JSON string sent in pieces, parsed once it is complete).
"""

from __future__ import annotations

import json
from typing import Any, Final

from ._models import (
    Annotation,
    ChatChunk,
    ChatResponse,
    ChunkResponse,
    Message,
    MessageResponse,
    ReasoningStep,
    ToolCall,
    Usage,
)
from ._types import StreamMode
from ._wire._build import (
    new_chat_chunk,
    new_choice_piece,
    new_chunk_response,
    new_message,
    new_stream_event,
)
from ._wire.events import ChoicePiece, StreamEvent, TextEvent, ToolCallPiece

__all__ = ["Assembler"]

_AUTO: Final = 0  # cumulative so far, until an event proves deltas
_CUMULATIVE: Final = 1  # pinned: every event is the whole text so far
_DELTA: Final = 2  # proved, or pinned: every event is new text
_MODES: Final = {"auto": _AUTO, "cumulative": _CUMULATIVE, "delta": _DELTA}


class _ToolCallState:
    __slots__ = ("arguments", "id", "name", "parameters")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []
        self.parameters: dict[str, Any] | None = None

    def add(self, piece: ToolCallPiece) -> None:
        if piece.id:
            self.id = piece.id
        if piece.name:
            self.name = piece.name
        if piece.arguments:
            self.arguments.append(piece.arguments)
        if piece.parameters is not None:
            self.parameters = piece.parameters

    def call(self) -> ToolCall:
        parameters = self.parameters
        if parameters is None:
            joined = "".join(self.arguments)
            try:
                parsed = json.loads(joined) if joined else {}
            except (ValueError, RecursionError):  # still arriving, not JSON, too deep: as sent
                parsed = {"_raw": joined}
            parameters = parsed if isinstance(parsed, dict) else {"_raw": joined}
        return ToolCall(id=self.id, name=self.name, parameters=parameters)


class _Answer:
    """The running state of one answer (``responses[i]`` / ``choices[i]``)."""

    __slots__ = (
        "annotations",
        "finish_reason",
        "lengths",
        "mode",
        "reasoning",
        "role",
        "steps",
        "text",
        "tools",
    )

    def __init__(self, mode: int) -> None:
        self.role: str = "assistant"
        self.text = ""
        self.mode = mode
        #: The length of each content piece received while the stream read as cumulative
        #: (``_AUTO`` only): each piece is a prefix of ``text``, so the deltas can be rebuilt.
        self.lengths: list[int] = []
        self.finish_reason: str | None = None
        self.reasoning: list[str] | None = None
        self.steps: list[ReasoningStep] | None = None
        self.annotations: list[Annotation] | None = None
        self.tools: dict[int, _ToolCallState] | None = None

    def add_content(self, content: str, deltas: bool, final: bool) -> tuple[str, bool]:
        """Take one content piece (``final``: it comes with the answer's finish reason);
        return ``(delta, rewrite)``."""
        text = self.text
        mode = self.mode
        if deltas or mode == _DELTA:
            self.text = text + content
            return content, False
        if content.startswith(text):  # consistent with cumulative content
            self.text = content
            if mode == _AUTO:
                self.lengths.append(len(content))
            return content[len(text) :], False
        if final and text and content == text.rstrip():
            # A final event that trims trailing whitespace is still cumulative; the deltas
            # already handed out keep the whitespace.
            self.text = content
            return "", False
        if mode == _CUMULATIVE:  # pinned: the server replaced the text
            self.text = content
            return content, True
        # Deltas, proved: every piece so far was new text.
        lengths, self.lengths = self.lengths, []
        self.mode = _DELTA
        rebuilt = "".join([text[:n] for n in lengths]) + content
        self.text = rebuilt
        if rebuilt.startswith(text):
            return rebuilt[len(text) :], False
        return rebuilt, True

    def add(self, piece: ChoicePiece) -> None:
        """Everything but the content of one piece."""
        if piece.role:
            self.role = piece.role
        if piece.reasoning_content:
            if self.reasoning is None:
                self.reasoning = []
            self.reasoning.append(piece.reasoning_content)
        if piece.reasoning_steps:
            self.steps = [*(self.steps or ()), *piece.reasoning_steps]
        if piece.annotations:
            self.annotations = [*(self.annotations or ()), *piece.annotations]
        if piece.tool_calls:
            if self.tools is None:
                self.tools = {}
            for call in piece.tool_calls:
                state = self.tools.get(call.index)
                if state is None:
                    state = self.tools[call.index] = _ToolCallState()
                state.add(call)
        if piece.finish_reason is not None:
            self.finish_reason = piece.finish_reason

    def message(self) -> Message:
        tools = self.tools
        role: Any = self.role if self.role != "tool" else "tool_output"
        if tools is None and self.reasoning is None and not self.steps and not self.annotations:
            return new_message(role, self.text)  # the common case: text only
        return Message(
            role=role,
            content=self.text,
            tool_calls=[tools[i].call() for i in sorted(tools)] if tools else None,
            reasoning_content="".join(self.reasoning) if self.reasoning is not None else None,
            reasoning_steps=self.steps,
            annotations=self.annotations,
        )


class Assembler:
    """The state of one stream: feed it ``StreamEvent`` objects, get ``ChatChunk`` objects."""

    __slots__ = ("_answers", "_id", "_mode", "_model", "finished", "usage")

    def __init__(self, mode: StreamMode = "auto") -> None:
        self._mode = _MODES[mode]
        self._answers: dict[int, _Answer] = {}
        self._id = ""
        self._model = ""
        #: True while every answer begun so far has its finish reason.
        self.finished = False
        #: The usage of the stream, from whichever event carried it (the last one wins).
        self.usage: Usage | None = None

    @property
    def started(self) -> bool:
        """Whether any answer has begun (something a retry would send again)."""
        return bool(self._answers)

    @property
    def text(self) -> str:
        """The text of the first answer so far."""
        first = self._answers.get(0)
        return first.text if first is not None else ""

    def feed(self, event: StreamEvent) -> ChatChunk | None:
        """Take one event; return the chunk to hand out, or ``None`` (nothing to show)."""
        if event.usage is not None:
            self.usage = event.usage
        choices = event.choices
        if not choices:
            return None
        answers = self._answers
        if len(choices) == 1 and len(answers) <= 1:
            piece = choices[0]
            if piece.index == 0:
                return self._feed_one(event, piece)  # the usual stream: one answer
        delta = ""
        rewrite = False
        taken = False
        for piece in choices:
            answer = answers.get(piece.index)
            if answer is None:
                answer = answers[piece.index] = _Answer(self._mode)
            elif answer.finish_reason is not None:
                continue  # the answer has ended: later pieces of it are ignored
            taken = True
            if piece.content:
                got, replaced = answer.add_content(
                    piece.content, event.deltas, piece.finish_reason is not None
                )
                if piece.index == 0:
                    delta, rewrite = got, replaced
            answer.add(piece)
        if not taken:
            return None
        self._id, self._model = event.id, event.model
        self.finished = all(a.finish_reason is not None for a in answers.values())
        return ChatChunk(
            id=event.id,
            model=event.model,
            responses=[
                ChunkResponse(chunk=answers[i].message(), finish_reason=answers[i].finish_reason)
                for i in sorted(answers)
            ],
            usage=event.usage,
            delta=delta,
            rewrite=rewrite,
        )

    def feed_text(self, event: TextEvent) -> ChatChunk | None:
        """``feed`` for the usual event given as its fields (a dialect's ``text_event``): the
        same rules, without the ``StreamEvent`` and ``ChoicePiece`` a decoded event costs."""
        id_, model, role, content, reason, usage, deltas = event
        if len(self._answers) > 1:  # a stream of several answers: the general rules
            piece = new_choice_piece(role=role, content=content, finish_reason=reason)
            return self.feed(new_stream_event(id_, model, [piece], usage, deltas))
        if usage is not None:
            self.usage = usage
        return self._one(id_, model, role, content, reason, usage, deltas, None)

    def _feed_one(self, event: StreamEvent, piece: ChoicePiece) -> ChatChunk | None:
        extra = (
            piece
            if piece.tool_calls
            or piece.reasoning_content
            or piece.reasoning_steps
            or piece.annotations
            else None
        )
        return self._one(
            event.id,
            event.model,
            piece.role,
            piece.content,
            piece.finish_reason,
            event.usage,
            event.deltas,
            extra,
        )

    def _one(
        self,
        id_: str,
        model: str,
        role: str | None,
        content: str | None,
        reason: str | None,
        usage: Usage | None,
        deltas: bool,
        extra: ChoicePiece | None,
    ) -> ChatChunk | None:
        # The per-event hot path of streaming: one answer (index 0), usually text only, so
        # the common fields are handled inline and the message built directly; ``extra`` is
        # the piece when it carries more (tool calls, reasoning, citations).
        answer = self._answers.get(0)
        if answer is None:
            answer = self._answers[0] = _Answer(self._mode)
        elif answer.finish_reason is not None:
            return None  # the answer has ended: later events are ignored
        if content:
            delta, rewrite = answer.add_content(content, deltas, reason is not None)
        else:
            delta, rewrite = "", False
        if role:
            answer.role = role
        if reason is not None:
            answer.finish_reason = reason
            self.finished = True
        if extra is not None:
            answer.add(extra)
        message = answer.message()  # its text-only case is the common one, and cheap
        self._id, self._model = id_, model
        return new_chat_chunk(
            id_, model, [new_chunk_response(message, answer.finish_reason)], usage, delta, rewrite
        )

    def response(self) -> ChatResponse | None:
        """The assembled response, or ``None`` when no answer has begun."""
        if not self._answers:
            return None
        answers = self._answers
        return ChatResponse(
            id=self._id,
            model=self._model,
            responses=[
                MessageResponse(
                    message=answers[i].message(), finish_reason=answers[i].finish_reason
                )
                for i in sorted(answers)
            ],
            usage=self.usage or Usage(),
        )
