"""Validating a chat request and building its wire body, before anything is sent.

Requests accept our models or plain dicts anywhere, are validated up front
(``InvalidRequestError`` naming the offending field and what to fix), and omit ``None`` fields
on the wire. The body built here is the native dialect's; it is the canonical form the rest of
the package passes around.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._exceptions import InvalidRequestError
from .._models import (
    AudioPart,
    ChatRequest,
    ImagePart,
    Message,
    PdfPart,
    TextPart,
    Tool,
    ToolCall,
    ToolOutput,
    VideoPart,
)
from .._types import OPTION_NAMES, PARAM_NAMES, ROLES, TOOL_CHOICES
from ._convert import PART_FIELD, converter

__all__ = ["chat_body", "request_body", "request_from_model", "wire_messages"]


_PART_MODELS: Final = (TextPart, ImagePart, VideoPart, AudioPart, PdfPart, ToolOutput)


def _fail(path: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"{path}: {problem}")


def _wire_part(part: Any, path: str, role: str) -> Any:
    if isinstance(part, _PART_MODELS):
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
    field = PART_FIELD.get(ptype) if isinstance(ptype, str) else None
    if field is None:
        raise _fail(
            path,
            f"unknown content part type {ptype!r}; use one of "
            "'text', 'image_url', 'video_url', 'audio_url', 'pdf_url'",
        )
    if not isinstance(part.get(field), str):
        raise _fail(f"{path}.{field}", f"must be a string for a {ptype!r} part")
    return part


_PLAIN: Final = frozenset(("role", "content"))


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


def _as_list(value: Any) -> Any:
    """A list from a sequence argument; anything else (a single ``str``, a wrong type) goes to
    validation unchanged, so a wrong type is an ``InvalidRequestError``, not a ``TypeError``."""
    if type(value) is list:
        return value
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return value


def _check_number(name: str, value: Any, kind: type | tuple[type, ...], kind_name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidRequestError(f"{name}: must be {kind_name}, got {value!r}")


_INT_PARAMS: Final = frozenset(("max_tokens", "top_k", "seed"))
_FLOAT_PARAMS: Final = frozenset(("temperature", "top_p", "presence_penalty", "frequency_penalty"))


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
    for name, value in params.items():  # one loop, checks inline: this runs per request
        if value is None:
            continue
        if name in _INT_PARAMS:
            _check_number(name, value, int, "an integer")
            if name == "max_tokens" and value < 1:
                raise InvalidRequestError(f"max_tokens: must be at least 1, got {value}")
        elif name in _FLOAT_PARAMS:
            _check_number(name, value, (int, float), "a number")
        elif name == "stop":
            value = [value] if isinstance(value, str) else _as_list(value)
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise InvalidRequestError(f"stop: must be a list of strings, got {value!r}")
        elif name == "tools":
            value = _as_list(value)
            if not isinstance(value, list):
                raise InvalidRequestError("tools: must be a list of Tool or dicts")
            value = [converter.unstructure(t) if isinstance(t, Tool) else t for t in value]
            for i, t in enumerate(value):
                if not isinstance(t, Mapping) or not isinstance(t.get("name"), str):
                    raise InvalidRequestError(f"tools[{i}]: needs a string 'name'")
        elif name == "tool_choice":
            if not isinstance(value, str) or value not in TOOL_CHOICES:
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


_CALL_KEYS: Final = frozenset((*PARAM_NAMES, *OPTION_NAMES, "messages", "model"))


def chat_body(args: Mapping[str, Any], *, stream: bool, what: str) -> dict[str, Any]:
    """The validated wire body from the keywords of ``chat.create`` (a ``ChatArgs``).

    Only the keywords the caller passed are read, so nothing else can join the request.

    Raises:
        TypeError: a keyword that ``ChatArgs`` does not declare, or ``messages``/``model``
            missing (as Python raises for a function's own keywords).
        InvalidRequestError: a value is invalid.
    """
    if not args.keys() <= _CALL_KEYS:
        unknown = sorted(set(args) - _CALL_KEYS)
        raise TypeError(f"{what}() got an unexpected keyword argument {unknown[0]!r}")
    if "messages" not in args or "model" not in args:
        missing = "messages" if "messages" not in args else "model"
        raise TypeError(f"{what}() missing required keyword argument: {missing!r}")
    params = {}
    for name in PARAM_NAMES:  # a loop, not a comprehension: one frame less per request
        value = args.get(name)
        if value is not None:
            params[name] = value
    return request_body(
        model=args["model"],
        messages=args["messages"],
        params=params,
        stream=stream,
        extra_body=args.get("extra_body"),
    )


def request_from_model(req: ChatRequest) -> dict[str, Any]:
    """Return the wire dict of a ``ChatRequest`` (validated like keyword arguments)."""
    data = converter.unstructure(req)
    data.pop("stream", None)
    model = data.pop("model")
    data.pop("messages")
    return request_body(
        model=model,
        messages=req.messages,
        params=data,
        stream=bool(req.stream),
        extra_body=req.extra_body,
    )
