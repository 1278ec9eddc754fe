"""The OpenAI-compatible dialect (``POST /chat/completions``) on the wire.

Requests are validated and built once in the canonical native form (``request.py``);
``to_openai_body`` derives this dialect's body from it, copying only what differs (a plain text
conversation goes out as the same message dicts). Responses and stream events are decoded by
hand like ``native.py`` (one decoder per type; this is the dialect's hot path), with the same
tolerance: unknown keys ignored, ``str``/``int`` coercion, ``usage`` optional, and
``TypeError``/``KeyError``/``ValueError`` on a body of the wrong shape.

Choices where the contract is silent:

- Tool results: the dialect rejects the ``tool`` role and a ``tool_call_id`` causes a 500, so a
  ``tool_output`` message goes out as a user text message, one line per output:
  ``Tool result (call <id>): <output>``.
- Tool-call ``arguments`` that are not a JSON object (cut off by ``max_tokens``, or invalid) are
  kept as ``ToolCall.parameters == {"_raw": "<the string as sent>"}`` rather than failing the
  whole answer, so the caller can see and repair them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from .._exceptions import InvalidRequestError
from .._models import (
    Annotation,
    ChatResponse,
    Message,
    MessageResponse,
    ReasoningStep,
    ToolCall,
    UrlCitation,
)
from .._types import Role
from ._build import new_chat_response, new_choice_piece, new_message, new_message_response
from ._convert import (
    PART_FIELD,
    as_str,
    content_text,
    decode_event,
    opt_int,
    opt_str,
    structure_content,
    structure_usage,
    text_fields,
)
from ._json import dumps, loads
from .events import ChoicePiece, StreamEvent, TextEvent, ToolCallPiece

__all__ = [
    "load_completion",
    "parse_completion",
    "parse_completion_chunk",
    "to_openai_body",
]

# --------------------------------------------------------------------------- requests

_MEDIA: Final = frozenset(PART_FIELD) - {"text"}


def _openai_part(part: Any) -> Any:
    ptype = part.get("type") if isinstance(part, Mapping) else None
    if isinstance(ptype, str) and ptype in _MEDIA and isinstance(part.get(ptype), str):
        return {"type": ptype, ptype: {"url": part[ptype]}}
    return part


def _tool_result_text(content: Any) -> str:
    if not isinstance(content, list):
        return f"Tool result: {content}"
    lines = []
    for item in content:
        if isinstance(item, Mapping) and "tool_call_id" in item:
            lines.append(f"Tool result (call {item['tool_call_id']}): {item.get('output', '')}")
        elif isinstance(item, Mapping) and item.get("type") == "text":
            lines.append(str(item.get("text", "")))
    return "\n".join(lines)


def _openai_call(call: Any) -> Any:
    if "function" in call:  # already in this dialect's form (passed through by request.py)
        return call
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {
            "name": call.get("name"),
            "arguments": dumps(call.get("parameters") or {}).decode(),
        },
    }


def _openai_message(msg: Any) -> Any:
    """The message in this dialect's form: the same object when nothing differs."""
    role = msg.get("role")
    content = msg.get("content")
    if role == "tool_output":
        return {"role": "user", "content": _tool_result_text(content)}
    calls = msg.get("tool_calls")
    if type(content) is not list and not calls:
        return msg  # plain text: nothing to convert
    out = dict(msg)
    if type(content) is list:
        out["content"] = [_openai_part(p) for p in content]
    if calls:
        out["tool_calls"] = [_openai_call(c) for c in calls]
    return out


def to_openai_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``/chat/completions`` body from a canonical (native) body built by ``request.py``.

    Media parts take the ``{"url": ...}`` form, tools the ``{"type": "function"}`` wrapper,
    ``tool_choice="tool"`` becomes ``"required"``, assistant tool calls get JSON-string
    ``arguments``, ``tool_output`` messages become user text (see the module docstring), and
    a stream asks for usage on its last chunk. Every other field passes through.

    Raises:
        InvalidRequestError: ``use_search_engine``, which this dialect does not have.
    """
    if "use_search_engine" in body:
        raise InvalidRequestError(
            "use_search_engine: not a field of the OpenAI-compatible API; "
            "use research={'web_search': {'enabled': True}} instead"
        )
    out = dict(body)
    messages = body["messages"]
    converted: list[Any] | None = None
    for i, msg in enumerate(messages):
        if (
            type(msg) is dict
            and type(msg.get("content")) is str
            and msg.get("role") != "tool_output"
            and not msg.get("tool_calls")
        ):
            new = msg  # plain text, the usual message: the same object, without a call
        else:
            new = _openai_message(msg)
        if converted is not None:
            converted.append(new)
        elif new is not msg:
            converted = [*messages[:i], new]
    if converted is not None:
        out["messages"] = converted
    tools = body.get("tools")
    if tools:
        out["tools"] = [{"type": "function", "function": t} for t in tools]
    if body.get("tool_choice") == "tool":
        out["tool_choice"] = "required"
    if body.get("stream"):
        out.setdefault("stream_options", {"include_usage": True})
    return out


# --------------------------------------------------------------------------- responses


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if type(value) is dict or isinstance(value, Mapping):
        return cast(Mapping[str, Any], value)
    raise TypeError(f"{what} must be an object, got {type(value).__name__}")


def _list(value: Any, what: str) -> list[Any]:
    if type(value) is list:
        return value
    raise TypeError(f"{what} must be a list, got {type(value).__name__}")


def _parameters(arguments: Any) -> dict[str, Any]:
    """Tool-call parameters from JSON-string ``arguments`` (or an object, as some send)."""
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None or arguments == "":
        return {}
    text = as_str(arguments)
    try:
        value = loads(text)
    except ValueError:
        value = None
    return dict(value) if isinstance(value, dict) else {"_raw": text}


def _tool_call(data: Any) -> ToolCall:
    data = _obj(data, "a tool call")
    function = data.get("function")
    if function is None:  # the native form {"id", "name", "parameters"}
        name, params = data.get("name"), _parameters(data.get("parameters"))
    else:
        function = _obj(function, "function")
        name, params = function.get("name"), _parameters(function.get("arguments"))
    return ToolCall(id=as_str(data.get("id", "")), name=as_str(name or ""), parameters=params)


def _step_call(data: Any) -> ToolCall:
    data = _obj(data, "a reasoning step's tool call")
    if "function" in data:
        return _tool_call(data)
    args = data.get("args", data.get("parameters"))
    return ToolCall(
        id=as_str(data.get("id", "")),
        name=as_str(data.get("name", "")),
        parameters=dict(args) if isinstance(args, Mapping) else _parameters(args),
    )


def _reasoning_step(data: Any) -> ReasoningStep:
    data = _obj(data, "a reasoning step")
    calls = data.get("tool_calls")
    role = as_str(data.get("role", "assistant"))
    thought = opt_str(data.get("reasoning_content"))
    content = data.get("content")
    tool_name = tool_output = None
    if isinstance(content, Mapping):  # a tool step: {"tool_name", "tool_output"}
        tool_name, tool_output = opt_str(content.get("tool_name")), content.get("tool_output")
    elif role == "tool":
        tool_output = content
    elif thought is None:  # an assistant step that put its thought in "content"
        thought = opt_str(content)
    return ReasoningStep(
        role=role,
        reasoning_content=thought,
        tool_calls=[_step_call(c) for c in _list(calls, "tool_calls")] if calls else None,
        tool_call_id=opt_str(data.get("tool_call_id")),
        tool_name=tool_name,
        tool_output=tool_output,
    )


def _annotation(data: Any) -> Annotation:
    data = _obj(data, "an annotation")
    cite = data.get("url_citation")
    citation = None
    if cite is not None:
        cite = _obj(cite, "url_citation")
        citation = UrlCitation(
            url=as_str(cite.get("url", "")),
            title=opt_str(cite.get("title")),
            start_index=opt_int(cite.get("start_index")),
            end_index=opt_int(cite.get("end_index")),
        )
    return Annotation(type=as_str(data.get("type", "url_citation")), url_citation=citation)


def _steps(value: Any) -> list[ReasoningStep] | None:
    return [_reasoning_step(s) for s in _list(value, "reasoning_steps")] if value else None


def _annotations(value: Any) -> list[Annotation] | None:
    return [_annotation(a) for a in _list(value, "annotations")] if value else None


def _message(data: Any) -> Message:
    if type(data) is not dict:
        data = _obj(data, "message")
    role: Role = data.get("role", "assistant")  # no ``cast()``: a call per response
    if type(role) is not str:
        role = str(role)  # type: ignore[assignment]
    content = data.get("content")
    content = content if content is None or type(content) is str else structure_content(content)
    if not (  # the common shape: text only
        data.get("tool_calls")
        or data.get("reasoning_content")
        or data.get("reasoning_steps")
        or data.get("annotations")
    ):
        return new_message(role, content)
    calls = data.get("tool_calls")
    return Message(
        role=role,
        content=content,
        tool_calls=[_tool_call(c) for c in _list(calls, "tool_calls")] if calls else None,
        reasoning_content=opt_str(data.get("reasoning_content")),
        reasoning_steps=_steps(data.get("reasoning_steps")),
        annotations=_annotations(data.get("annotations")),
    )


def _choice(data: Any) -> MessageResponse:
    if type(data) is not dict:
        data = _obj(data, "a choice")
    reason = data.get("finish_reason")
    return new_message_response(
        _message(data["message"]), reason if reason is None or type(reason) is str else str(reason)
    )


def parse_completion(data: Any, request_id: str | None = None) -> ChatResponse:
    """Structure a decoded ``/chat/completions`` body: ``choices[i].message`` becomes
    ``responses[i].message``, so both dialects answer with the same ``ChatResponse``.

    Raises:
        TypeError, KeyError, ValueError: a body of the wrong shape.
    """
    # The type checks are inline, their error paths in ``_obj``/``_list``: this runs per
    # response.
    if type(data) is not dict:
        data = _obj(data, "the body")
    choices = data["choices"]
    if type(choices) is not list:
        choices = _list(choices, "choices")
    id_, model = data["id"], data["model"]
    return new_chat_response(
        id_ if type(id_) is str else str(id_),
        model if type(model) is str else str(model),
        list(map(_choice, choices)),
        structure_usage(data.get("usage")),
        request_id,
    )


def load_completion(raw: bytes, request_id: str | None = None) -> ChatResponse:
    """Decode and structure a ``/chat/completions`` body in one call (``request_id``: its
    ``x-request-id``)."""
    return parse_completion(loads(raw), request_id)


# --------------------------------------------------------------------------- stream events


def _call_piece(data: Any, position: int) -> ToolCallPiece:
    data = _obj(data, "a tool call fragment")
    function = data.get("function")
    function = {} if function is None else _obj(function, "function")
    arguments = function.get("arguments")
    index = data.get("index")
    return ToolCallPiece(
        index=position if index is None else (index if type(index) is int else int(index)),
        id=opt_str(data.get("id")),
        name=opt_str(function.get("name")),
        arguments=None if isinstance(arguments, Mapping) else opt_str(arguments),
        parameters=dict(arguments) if isinstance(arguments, Mapping) else None,
    )


def _delta_piece(data: Any, position: int) -> ChoicePiece:
    # Per stream event: the common case (dicts, strings, no Research fields) makes no call.
    if type(data) is not dict:
        data = _obj(data, "a choice")
    index = data.get("index")
    reason = data.get("finish_reason")
    if reason is not None and type(reason) is not str:
        reason = str(reason)
    index = position if index is None else (index if type(index) is int else int(index))
    delta = data.get("delta")
    if not delta:
        return new_choice_piece(index, finish_reason=reason)
    if type(delta) is not dict:
        delta = _obj(delta, "delta")
    content = delta.get("content")
    if content is not None and type(content) is not str:
        content = content_text(content)
    role = delta.get("role")
    reasoning = delta.get("reasoning_content")
    if reasoning is not None and type(reasoning) is not str:
        reasoning = str(reasoning)
    steps = delta.get("reasoning_steps")
    notes = delta.get("annotations")
    calls = delta.get("tool_calls")
    return new_choice_piece(
        index=index,
        role=role if role is None or type(role) is str else str(role),
        content=content,
        reasoning_content=reasoning
        if reasoning is None or type(reasoning) is str
        else str(reasoning),
        reasoning_steps=None if steps is None else _steps(steps),
        annotations=None if notes is None else _annotations(notes),
        tool_calls=[_call_piece(c, i) for i, c in enumerate(_list(calls, "tool_calls"))]
        if calls
        else None,
        finish_reason=reason,
    )


def text_completion_chunk(data: Any) -> TextEvent | None:
    """The usual ``chat.completion.chunk`` (one choice at index 0, a text delta or none,
    values of the right types) as its fields (``events.TextEvent``), or ``None`` for any
    other: ``parse_completion_chunk`` decodes those. Inline because it runs per event."""
    choices = data.get("choices") if type(data) is dict else None
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("index", 0) != 0:
        return None
    delta = choice.get("delta")
    if delta is None:
        delta = {}
    elif type(delta) is not dict or (
        delta.get("tool_calls")
        or delta.get("reasoning_content")
        or delta.get("reasoning_steps")
        or delta.get("annotations")
    ):
        return None
    content, role, reason = delta.get("content"), delta.get("role"), choice.get("finish_reason")
    return text_fields(data, role, content, reason, deltas=True)


def parse_completion_chunk(data: Any) -> StreamEvent:
    """Decode one ``chat.completion.chunk`` event (``deltas=True``: content, reasoning and
    tool-call ``arguments`` are fragments, joined by the stream). The last chunk may carry
    only ``usage``, with ``choices: []``.

    Raises:
        TypeError, KeyError, ValueError: a body of the wrong shape.
    """
    return decode_event(_obj(data, "the event"), "choices", _delta_piece, deltas=True)
