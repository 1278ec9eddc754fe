"""The private cattrs converter: wire JSON <-> attrs models, plus request validation.

One converter, built once with ``cattrs.Converter``; never the global ``cattrs.structure``.
Responses tolerate unknown keys and unknown content-part types. Requests accept our models or
plain dicts anywhere, are validated before anything is sent (``InvalidRequestError`` naming the
offending field), and omit ``None`` fields on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._exceptions import InvalidRequestError
from ._models import (
    ROLES,
    AudioPart,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ChunkResponse,
    ImagePart,
    Message,
    MessageResponse,
    Model,
    PdfPart,
    TextPart,
    Tool,
    ToolCall,
    ToolOutput,
    Usage,
    VideoPart,
)

__all__ = [
    "converter",
    "dumps",
    "load_chat_response",
    "loads",
    "parse_chat_response",
    "parse_chunk",
    "parse_chunk_after",
    "parse_models",
    "request_body",
]

T = TypeVar("T")

try:  # optional speed-up (the ``speed`` extra); the default install uses the stdlib.
    import orjson

    def dumps(obj: Any) -> bytes:
        """Serialise to compact UTF-8 JSON."""
        return orjson.dumps(obj)

    loads: Callable[[bytes | str], Any] = orjson.loads
except ImportError:  # pragma: no cover - exercised when orjson is absent
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def dumps(obj: Any) -> bytes:
        """Serialise to compact UTF-8 JSON."""
        return _encoder.encode(obj).encode()

    loads = json.loads


_PART_TYPES: dict[str, type[Any]] = {
    "text": TextPart,
    "image_url": ImagePart,
    "video_url": VideoPart,
    "audio_url": AudioPart,
    "pdf_url": PdfPart,
}
_PART_FIELD = {name: name for name in ("image_url", "video_url", "audio_url", "pdf_url")}
_PART_FIELD["text"] = "text"


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)

    # --- structuring (responses) -------------------------------------------------------
    def structure_message(data: Any, _: Any) -> Message:
        if not isinstance(data, Mapping):
            raise TypeError(f"message must be an object, got {type(data).__name__}")
        tool_calls = data.get("tool_calls")
        return Message(
            role=str(data.get("role", "assistant")),
            content=_structure_content(data.get("content")),
            tool_calls=[conv.structure(tc, ToolCall) for tc in tool_calls] if tool_calls else None,
        )

    conv.register_structure_hook(Message, structure_message)
    for cls in (ChunkResponse, ChatChunk, Model, ToolCall):
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv))

    # The response of every non-streamed call: hand-written hooks, measured ~3x faster than
    # the generated ones on this hot path (benchmarks/profile_hotpath.py), same semantics:
    # unknown keys ignored, ``str``/``int`` coercion, ``usage`` optional. Values that already
    # have the right type (the normal case) skip the coercion call.
    def structure_usage(data: Any, _: Any) -> Usage:
        if not data:
            return Usage()
        given = data.get("input_tokens", 0)
        taken = data.get("output_tokens", 0)
        return Usage(
            input_tokens=given if type(given) is int else int(given),
            output_tokens=taken if type(taken) is int else int(taken),
        )

    def structure_message_response(data: Any, _: Any) -> MessageResponse:
        reason = data.get("finish_reason")
        message = data["message"]
        if type(message) is dict and not message.get("tool_calls"):
            # The common shape, inlined: a dict with string content and no tool calls.
            role = message.get("role", "assistant")
            content = message.get("content")
            structured = Message(
                role=role if type(role) is str else str(role),
                content=content if type(content) is str else _structure_content(content),
            )
        else:
            structured = structure_message(message, Message)
        return MessageResponse(
            message=structured,
            finish_reason=reason if reason is None or type(reason) is str else str(reason),
        )

    def structure_chat_response(data: Any, _: Any) -> ChatResponse:
        responses = data["responses"]
        if not isinstance(responses, list):
            raise TypeError("responses must be a list")
        id_, model = data["id"], data["model"]
        return ChatResponse(
            id=id_ if type(id_) is str else str(id_),
            model=model if type(model) is str else str(model),
            responses=[structure_message_response(r, MessageResponse) for r in responses],
            usage=structure_usage(data.get("usage"), Usage),
        )

    conv.register_structure_hook(Usage, structure_usage)
    conv.register_structure_hook(MessageResponse, structure_message_response)
    conv.register_structure_hook(ChatResponse, structure_chat_response)

    # --- unstructuring (requests) --------------------------------------------------------
    for part_cls in (TextPart, ImagePart, VideoPart, AudioPart, PdfPart, ToolOutput, ToolCall):
        conv.register_unstructure_hook(part_cls, make_dict_unstructure_fn(part_cls, conv))
    conv.register_unstructure_hook(
        Tool, make_dict_unstructure_fn(Tool, conv, _cattrs_omit_if_default=True)
    )
    conv.register_unstructure_hook(
        Message, make_dict_unstructure_fn(Message, conv, _cattrs_omit_if_default=True)
    )
    conv.register_unstructure_hook(
        ChatRequest,
        make_dict_unstructure_fn(
            ChatRequest, conv, _cattrs_omit_if_default=True, extra_body=override(omit=True)
        ),
    )
    return conv


def _structure_content(content: Any) -> Any:
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        return str(content)
    parts: list[Any] = []
    for item in content:
        if isinstance(item, Mapping):
            ptype = item.get("type")
            cls = _PART_TYPES.get(ptype) if isinstance(ptype, str) else None
            field = _PART_FIELD.get(ptype) if isinstance(ptype, str) else None
            if cls is not None and field is not None and isinstance(item.get(field), str):
                parts.append(cls(**{field: item[field]}))
            elif "tool_call_id" in item and "output" in item:
                parts.append(
                    ToolOutput(tool_call_id=str(item["tool_call_id"]), output=str(item["output"]))
                )
            else:
                parts.append(dict(item))  # unknown part type: keep it as data
        else:
            parts.append(item)
    return parts


converter = _make_converter()


def _structure(data: Any, cls: type[T]) -> T:
    return converter.structure(data, cls)


_structure_chat_response = converter.get_structure_hook(ChatResponse)


def parse_chat_response(data: Any) -> ChatResponse:
    """Structure a decoded ``POST /chat`` body. Raises on a body of the wrong shape."""
    return _structure_chat_response(data, ChatResponse)  # type: ignore[no-any-return]


def load_chat_response(raw: bytes) -> ChatResponse:
    """Decode and structure a ``POST /chat`` body in one call (the hot path's parser)."""
    return _structure_chat_response(loads(raw), ChatResponse)  # type: ignore[no-any-return]


def parse_chunk(data: Any) -> ChatChunk:
    """Structure a decoded stream event. Raises on a body of the wrong shape."""
    return _structure(data, ChatChunk)


_structure_chunk_response = converter.get_structure_hook(ChunkResponse)
_structure_usage = converter.get_structure_hook(Usage)


def parse_chunk_after(data: Any, previous_text: str) -> ChatChunk:
    """Structure a decoded stream event with its ``delta`` against the text so far.

    The per-event hot path of streaming: one ``ChatChunk`` built once, with ``delta`` set,
    instead of structuring it and copying it with ``attrs.evolve``. Same result as
    ``parse_chunk`` plus the delta; raises on a body of the wrong shape.
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
        usage=None if usage is None else _structure_usage(usage, Usage),
        delta=text[len(previous_text) :] if text.startswith(previous_text) else text,
    )


def parse_models(data: Any) -> list[Model]:
    """Structure a decoded ``GET /models`` body (a list, or ``{"data": [...]}``)."""
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise TypeError("expected a JSON list of models")
    return [_structure(item, Model) for item in data]


# --- request validation and encoding ---------------------------------------------------------


def _fail(path: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"{path}: {problem}")


def _wire_part(part: Any, path: str, role: str) -> Any:
    if isinstance(part, (TextPart, ImagePart, VideoPart, AudioPart, PdfPart, ToolOutput)):
        return converter.unstructure(part)
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        raise _fail(
            path, f"a content part must be a dict or a part model, got {type(part).__name__}"
        )
    if role == "tool_output" and "tool_call_id" in part:
        if not isinstance(part.get("tool_call_id"), str) or not isinstance(part.get("output"), str):
            raise _fail(path, "a tool output needs string 'tool_call_id' and 'output'")
        return part
    ptype = part.get("type")
    field = _PART_FIELD.get(ptype) if isinstance(ptype, str) else None
    if field is None:
        raise _fail(
            path,
            f"unknown content part type {ptype!r}; use one of "
            "'text', 'image_url', 'video_url', 'audio_url', 'pdf_url'",
        )
    if not isinstance(part.get(field), str):
        raise _fail(f"{path}.{field}", f"must be a string for a {ptype!r} part")
    return part


_PLAIN = frozenset(("role", "content"))


def _wire_message(msg: Any, path: str) -> Any:
    role: Any
    content: Any
    tool_calls: Any
    if isinstance(msg, Message):
        role, content, tool_calls = msg.role, msg.content, msg.tool_calls
        source: Mapping[str, Any] | None = None
    elif isinstance(msg, Mapping):
        source = msg
        role, content, tool_calls = msg.get("role"), msg.get("content"), msg.get("tool_calls")
    else:
        raise _fail(path, f"a message must be a dict or a Message, got {type(msg).__name__}")
    if not isinstance(role, str) or role not in ROLES:  # an unhashable role must not TypeError
        raise _fail(
            f"{path}.role",
            f"{role!r} is not a valid role; use 'user', 'assistant', 'system' or 'tool_output'",
        )
    if content is not None and not isinstance(content, (str, list)):
        raise _fail(
            f"{path}.content", f"must be a string or a list of parts, got {type(content).__name__}"
        )
    if content is None and not tool_calls:
        raise _fail(f"{path}.content", "a message needs content (or tool_calls)")
    if isinstance(content, list):
        if not content:
            raise _fail(f"{path}.content", "an empty list of parts; give at least one part")
        parts = [_wire_part(p, f"{path}.content[{i}]", role) for i, p in enumerate(content)]
    else:
        parts = None
    if tool_calls is not None and not isinstance(tool_calls, list):
        raise _fail(f"{path}.tool_calls", "must be a list")
    if source is not None and parts is None and tool_calls is None and source.keys() <= _PLAIN:
        # The common case (plain-string content in a dict): send the caller's dict as it is.
        return source
    out: dict[str, Any] = {"role": role}
    if content is not None:
        out["content"] = parts if parts is not None else content
    if tool_calls:
        out["tool_calls"] = [
            converter.unstructure(tc) if isinstance(tc, ToolCall) else tc for tc in tool_calls
        ]
    return out


def _plain_dict_message(msg: Any) -> bool:
    """The common message, checked without ABC ``isinstance`` calls: a ``dict`` with exactly a
    valid role and string content. It goes on the wire as the caller's own dict."""
    if type(msg) is not dict or len(msg) != 2:
        return False
    role = msg.get("role")
    return type(role) is str and role in ROLES and type(msg.get("content")) is str


def wire_messages(messages: Any) -> list[Any]:
    """Validate messages (models or dicts) and return their wire form."""
    if type(messages) is list and messages and all(map(_plain_dict_message, messages)):
        return messages.copy()  # the hot path: already the wire form; nothing to convert
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            "messages: must be a list of messages, e.g. [{'role': 'user', 'content': 'Hi'}]"
        )
    if not messages:
        raise InvalidRequestError("messages: the list is empty; give at least one message")
    return [_wire_message(m, f"messages[{i}]") for i, m in enumerate(messages)]


def _check_number(name: str, value: Any, kind: type | tuple[type, ...], kind_name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidRequestError(f"{name}: must be {kind_name}, got {value!r}")


_INT_PARAMS = ("max_tokens", "top_k", "seed")
_FLOAT_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def request_body(
    *,
    model: Any,
    messages: Any,
    params: Mapping[str, Any],
    stream: bool,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate a chat request and return its wire dict (``None`` values omitted).

    Raises:
        InvalidRequestError: naming the parameter and what to fix.
    """
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            f"model: must be a non-empty string such as 'reka-flash', got {model!r}"
        )
    body: dict[str, Any] = {"model": model, "messages": wire_messages(messages)}
    for name, value in params.items():
        if value is None:
            continue
        if name in _INT_PARAMS:
            _check_number(name, value, int, "an integer")
            if name == "max_tokens" and value < 1:
                raise InvalidRequestError(f"max_tokens: must be at least 1, got {value}")
        elif name in _FLOAT_PARAMS:
            _check_number(name, value, (int, float), "a number")
        elif name == "stop":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise InvalidRequestError(f"stop: must be a list of strings, got {value!r}")
        elif name == "tools":
            if not isinstance(value, list):
                raise InvalidRequestError("tools: must be a list of Tool or dicts")
            value = [converter.unstructure(t) if isinstance(t, Tool) else t for t in value]
            for i, t in enumerate(value):
                if not isinstance(t, Mapping) or not isinstance(t.get("name"), str):
                    raise InvalidRequestError(f"tools[{i}]: needs a string 'name'")
        elif name == "tool_choice":
            if value not in ("auto", "none", "tool"):
                raise InvalidRequestError(
                    f"tool_choice: must be 'auto', 'none' or 'tool', got {value!r}"
                )
        elif name == "use_search_engine":
            if not isinstance(value, bool):
                raise InvalidRequestError(f"use_search_engine: must be a bool, got {value!r}")
        else:
            raise InvalidRequestError(
                f"{name}: unknown parameter; pass fields this version does not know in extra_body"
            )
        body[name] = value
    if stream:
        body["stream"] = True
    if extra_body:
        body.update(extra_body)
    return body


def request_from_model(req: ChatRequest) -> dict[str, Any]:
    """Return the wire dict of a ``ChatRequest`` (validated like keyword arguments)."""
    data = converter.unstructure(req)
    data.pop("stream", None)
    model = data.pop("model")
    messages = req.messages
    data.pop("messages")
    return request_body(
        model=model,
        messages=messages,
        params=data,
        stream=bool(req.stream),
        extra_body=req.extra_body,
    )
