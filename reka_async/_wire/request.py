"""Validating a chat request and building its wire body, before anything is sent.

Requests accept our models or plain dicts anywhere, are validated up front
(``InvalidRequestError`` naming the offending field and what to fix), and omit ``None`` fields
on the wire. The body built here is the native dialect's; it is the canonical form the rest of
the package passes around (``openai.to_openai_body`` derives the other dialect's from it).

OpenAI-shaped inputs are accepted too and converted to the canonical form here, on the slow
path only (a list of plain ``{"role", "content": str}`` dicts is sent as it is): media parts
``{"image_url": {"url": ...}}``, tools wrapped in ``{"type": "function", "function": ...}``,
``tool_choice="required"``, assistant tool calls with JSON-string ``arguments``, and
``{"role": "tool", "tool_call_id", "content"}`` messages (as ``tool_output``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

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
from .._research import research_body, response_format_body
from .._types import OPTION_NAMES, PARAM_NAMES, ROLES, TOOL_CHOICES
from ._convert import PART_FIELD, converter
from ._json import loads
from .schema import is_schema_class, response_format_for

__all__ = [
    "PARAM_RANGES",
    "chat_body",
    "check_range",
    "request_body",
    "request_from_model",
    "wire_messages",
]


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
    url = part.get(field)
    if isinstance(url, str):
        return part
    if isinstance(url, Mapping) and field != "text":
        # The OpenAI form {"image_url": {"url": "..."}} (a "detail" key, if any, is dropped).
        url = url.get("url")
        if not isinstance(url, str):
            raise _fail(f"{path}.{field}.url", f"must be a string for a {ptype!r} part")
        return {"type": ptype, field: url}
    raise _fail(f"{path}.{field}", f"must be a string for a {ptype!r} part")


_PLAIN: Final = frozenset(("role", "content"))


def _wire_tool_call(call: Any, path: str) -> Any:
    """A tool call in the canonical form; the OpenAI form (``{"id", "type": "function",
    "function": {"name", "arguments": "<JSON>"}}``) is converted."""
    if isinstance(call, ToolCall):
        return converter.unstructure(call)
    if not isinstance(call, Mapping):
        raise _fail(path, f"a tool call must be a dict or a ToolCall, got {type(call).__name__}")
    if not isinstance(call.get("function"), Mapping):
        return call
    function = call["function"]
    name, arguments = function.get("name"), function.get("arguments")
    if not isinstance(name, str) or not isinstance(call.get("id"), str):
        raise _fail(path, "an OpenAI-style tool call needs a string 'id' and 'function.name'")
    if isinstance(arguments, str):
        try:
            arguments = loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise _fail(f"{path}.function.arguments", f"is not valid JSON: {exc}") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise _fail(f"{path}.function.arguments", "must be a JSON object")
    return {"id": call["id"], "name": name, "parameters": dict(arguments)}


def _tool_result(msg: Mapping[str, Any], path: str) -> dict[str, Any]:
    """An OpenAI ``{"role": "tool", "tool_call_id", "content"}`` message as a ``tool_output``."""
    call_id, content = msg.get("tool_call_id"), msg.get("content")
    if not isinstance(call_id, str):
        raise _fail(f"{path}.tool_call_id", "a 'tool' message needs a string tool_call_id")
    if isinstance(content, list):  # text parts
        texts = [p.get("text") if isinstance(p, Mapping) else p for p in content]
        if all(isinstance(t, str) for t in texts):
            content = "".join(cast(list[str], texts))
    if not isinstance(content, str):
        raise _fail(f"{path}.content", "a 'tool' message needs the tool's output as a string")
    return {"role": "tool_output", "content": [{"tool_call_id": call_id, "output": content}]}


def _message_path(index: int) -> str:
    return f"messages[{index}]"


def _wire_message(msg: Any, index: int) -> Any:
    # ``messages[index]`` in errors: formatted only when one is raised (this runs per message).
    role: Any
    content: Any
    tool_calls: Any
    source: Mapping[str, Any] | None
    if type(msg) is not dict and isinstance(msg, Message):
        role, content, tool_calls = msg.role, msg.content, msg.tool_calls
        source = None
    elif type(msg) is dict or isinstance(msg, Mapping):
        source = msg
        role, content, tool_calls = msg.get("role"), msg.get("content"), msg.get("tool_calls")
        if role == "tool":
            return _tool_result(msg, _message_path(index))
    else:
        raise _fail(
            _message_path(index), f"a message must be a dict or a Message, got {type(msg).__name__}"
        )
    if not isinstance(role, str) or role not in ROLES:  # an unhashable role must not TypeError
        raise _fail(
            f"{_message_path(index)}.role",
            f"{role!r} is not a valid role; use 'user', 'assistant', 'system' or 'tool_output'"
            " (or 'tool' with a tool_call_id)",
        )
    if type(content) is str:  # the usual content first: one check (this runs per message)
        parts = None
    elif isinstance(content, list):
        if not content:
            raise _fail(
                f"{_message_path(index)}.content", "an empty list of parts; give at least one part"
            )
        parts = [
            _wire_part(p, f"{_message_path(index)}.content[{i}]", role)
            for i, p in enumerate(content)
        ]
    elif isinstance(content, str):
        parts = None
    elif content is None:
        if not tool_calls:
            raise _fail(
                f"{_message_path(index)}.content", "a message needs content (or tool_calls)"
            )
        parts = None
    else:
        raise _fail(
            f"{_message_path(index)}.content",
            f"must be a string or a list of parts, got {type(content).__name__}",
        )
    if tool_calls is not None and not isinstance(tool_calls, list):
        raise _fail(f"{_message_path(index)}.tool_calls", "must be a list")
    if source is not None and parts is None and tool_calls is None and source.keys() <= _PLAIN:
        # The common case (plain-string content in a dict): send the caller's dict as it is.
        return source
    out: dict[str, Any] = {"role": role}
    if content is not None:
        out["content"] = parts if parts is not None else content
    if tool_calls:
        out["tool_calls"] = [
            _wire_tool_call(tc, f"{_message_path(index)}.tool_calls[{i}]")
            for i, tc in enumerate(tool_calls)
        ]
    return out


def _plain_message(msg: Any) -> bool:
    """A message already in its wire form: a ``dict`` of exactly a valid role and string
    content (no ABC ``isinstance``; a role that is not a ``str`` is never hashed)."""
    if type(msg) is not dict or len(msg) != 2:
        return False
    role = msg.get("role")
    return type(role) is str and role in ROLES and type(msg.get("content")) is str


def wire_messages(messages: Any) -> list[Any]:
    """Validate messages (models or dicts) and return their wire form."""
    # The usual messages (plain dicts of a role and text) are their own wire form: checked
    # in one pass, no ``_wire_message`` per message. It buys about 4,300 of a native
    # request's 166,000 instructions in-process (2.6 %; about 0.8 % of a request over a
    # socket), what issue 25's budget needed back (benchmarks/README.md, "Fast paths");
    # tests/unit/test_fast_paths_match_the_general_ones.py pins it to the general path below.
    if type(messages) is list and messages and all(map(_plain_message, messages)):
        return messages.copy()
    if type(messages) is not list and (
        isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence)
    ):
        raise InvalidRequestError(
            "messages: must be a list of messages, e.g. [{'role': 'user', 'content': 'Hi'}]"
        )
    if not messages:
        raise InvalidRequestError("messages: the list is empty; give at least one message")
    return list(map(_wire_message, messages, range(len(messages))))


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


def _wire_tool(tool: Any, path: str) -> Any:
    """A tool in the canonical form; the OpenAI ``{"type": "function", "function": {...}}``
    wrapper is taken off."""
    if isinstance(tool, Tool):
        return converter.unstructure(tool)
    if isinstance(tool, Mapping) and tool.get("type") == "function":
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise _fail(
                f"{path}.function", "must be a dict with 'name', 'description', 'parameters'"
            )
        tool = {k: function[k] for k in ("name", "description", "parameters") if k in function}
    if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
        raise _fail(path, "needs a string 'name'")
    return tool


_INT_PARAMS: Final = frozenset(("max_tokens", "top_k", "seed"))
_FLOAT_PARAMS: Final = frozenset(("temperature", "top_p", "presence_penalty", "frequency_penalty"))

#: The values each sampling parameter may take: ``(low, low included, high, high included)``,
#: ``None`` for no bound; every float must also be finite. The API documents defaults, not
#: limits (temperature 0.4, top_p 0.95, top_k 1024, penalties 0.0), so only values that cannot
#: be valid are refused: a negative temperature or top_k, a top_p outside (0, 1] (a share of
#: the probability mass), fewer than one token; penalties have no known bounds, so only NaN
#: and infinities are refused. The mock keeps the same table (``testing/_validation.py``,
#: which imports nothing of the package); a test checks that the two agree.
PARAM_RANGES: Final[dict[str, tuple[float | None, bool, float | None, bool]]] = {
    "temperature": (0, True, None, False),
    "top_p": (0, False, 1, True),
    "top_k": (0, True, None, False),
    "max_tokens": (1, True, None, False),
    "presence_penalty": (None, False, None, False),
    "frequency_penalty": (None, False, None, False),
}


def _range_text(low: float | None, low_in: bool, high: float | None, high_in: bool) -> str:
    if low is not None and high is not None:
        return f"in {'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
    if low is not None:
        return f"{'>=' if low_in else '>'} {low:g}"
    if high is not None:
        return f"{'<=' if high_in else '<'} {high:g}"
    return "a finite number"


def check_range(name: str, value: float) -> None:
    """Refuse a sampling parameter's value that cannot be valid (see ``PARAM_RANGES``).

    Args:
        name: the parameter (``temperature``, ``top_p``, ``top_k``, ``max_tokens``,
            ``presence_penalty``, ``frequency_penalty``); other names pass.
        value: its value, already checked to be a number.

    Raises:
        InvalidRequestError: naming the parameter and the range it must be in.
    """
    bounds = PARAM_RANGES.get(name)
    if bounds is None:
        return
    low, low_in, high, high_in = bounds
    if (
        not math.isfinite(value)
        or (low is not None and (value < low or (value == low and not low_in)))
        or (high is not None and (value > high or (value == high and not high_in)))
    ):
        allowed = _range_text(low, low_in, high, high_in)
        if allowed != "a finite number":
            allowed = f"finite and {allowed}" if name in _FLOAT_PARAMS else allowed
        raise InvalidRequestError(f"{name}: must be {allowed}, got {value!r}")


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
            check_range(name, value)
        elif name in _FLOAT_PARAMS:
            _check_number(name, value, (int, float), "a number")
            check_range(name, value)
        elif name == "stop":
            value = [value] if isinstance(value, str) else _as_list(value)
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise InvalidRequestError(f"stop: must be a list of strings, got {value!r}")
        elif name == "tools":
            value = _as_list(value)
            if not isinstance(value, list):
                raise InvalidRequestError("tools: must be a list of Tool or dicts")
            value = [_wire_tool(t, f"tools[{i}]") for i, t in enumerate(value)]
        elif name == "tool_choice":
            if not isinstance(value, str) or value not in TOOL_CHOICES:
                raise InvalidRequestError(
                    f"tool_choice: must be 'auto', 'none' or 'tool' ('required'), got {value!r}"
                )
            if value == "required":  # the OpenAI word for "tool"
                value = "tool"
        elif name == "use_search_engine":
            if not isinstance(value, bool):
                raise InvalidRequestError(f"use_search_engine: must be a bool, got {value!r}")
        elif name == "research":
            value = research_body(value, stream=stream)
        elif name == "response_format":
            # A class (attrs, dataclass, TypedDict, pydantic) sends its schema, as chat.parse
            # does; batch items name theirs this way.
            if is_schema_class(value):
                value = response_format_for(value)
            value = response_format_body(value)
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
_PARAM_ORDER: Final = {name: i for i, name in enumerate(PARAM_NAMES)}


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
        # ``stream`` is openai-python's habit: name the call that streams.
        hint = "; to stream, call create_stream(...)" if unknown[0] == "stream" else ""
        raise TypeError(f"{what}() got an unexpected keyword argument {unknown[0]!r}{hint}")
    if "messages" not in args or "model" not in args:
        missing = "messages" if "messages" not in args else "model"
        raise TypeError(f"{what}() missing required keyword argument: {missing!r}")
    # The parameters the caller gave, in declared order (the body's key order): a call
    # passes few of the many declared, so the caller's keywords are the ones looked at.
    names = [*filter(_PARAM_ORDER.__contains__, args)]
    if len(names) > 1:
        names.sort(key=_PARAM_ORDER.__getitem__)
    params = {}
    for name in names:
        value = args[name]
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
