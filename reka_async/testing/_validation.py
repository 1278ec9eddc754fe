"""FastAPI-style request validation of ``POST /v1/chat`` bodies: the 422 ``detail`` lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ._json import dumps

_ROLES: Final = frozenset({"user", "assistant", "system", "tool_output"})
_TOOL_CHOICES: Final = frozenset({"auto", "none", "tool"})


def err(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    """One entry of a 422 ``detail`` list."""
    return {"loc": loc, "msg": msg, "type": kind}


def detail_body(errors: list[dict[str, Any]]) -> bytes:
    """The JSON body of a 422 answer listing ``errors``."""
    return dumps({"detail": errors})


def _check_int(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, int) and not isinstance(value, bool):
        if name == "max_tokens" and value < 0:
            return [
                err(
                    ["body", name],
                    "Input should be greater than or equal to 0",
                    "greater_than_equal",
                )
            ]
        return []
    return [err(["body", name], "Input should be a valid integer", "int_type")]


def _check_number(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return []
    return [err(["body", name], "Input should be a valid number", "float_type")]


def _check_bool(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, bool):
        return []
    return [err(["body", name], "Input should be a valid boolean", "bool_type")]


def _check_stop(name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return [err(["body", name], "Input should be a valid list", "list_type")]
    return [
        err(["body", name, i], "Input should be a valid string", "string_type")
        for i, item in enumerate(value)
        if not isinstance(item, str)
    ]


def _check_tools(name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return [err(["body", name], "Input should be a valid list", "list_type")]
    errors: list[dict[str, Any]] = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            errors.append(
                err(
                    ["body", name, i],
                    "Input should be a valid dictionary or object to extract fields from",
                    "model_attributes_type",
                )
            )
        elif "name" not in tool:
            errors.append(err(["body", name, i, "name"], "Field required", "missing"))
        elif not isinstance(tool["name"], str):
            errors.append(
                err(["body", name, i, "name"], "Input should be a valid string", "string_type")
            )
    return errors


def _check_tool_choice(name: str, value: Any) -> list[dict[str, Any]]:
    if value in _TOOL_CHOICES:
        return []
    return [err(["body", name], "Input should be 'auto', 'none' or 'tool'", "literal_error")]


_FIELD_CHECKS: Final[Mapping[str, Callable[[str, Any], list[dict[str, Any]]]]] = {
    "max_tokens": _check_int,
    "top_k": _check_int,
    "seed": _check_int,
    "temperature": _check_number,
    "top_p": _check_number,
    "presence_penalty": _check_number,
    "frequency_penalty": _check_number,
    "stream": _check_bool,
    "use_search_engine": _check_bool,
    "stop": _check_stop,
    "tools": _check_tools,
    "tool_choice": _check_tool_choice,
}

_NOT_AN_OBJECT: Final = "Input should be a valid dictionary or object to extract fields from"


def _validate_message(index: int, message: Any) -> list[dict[str, Any]]:
    loc: list[str | int] = ["body", "messages", index]
    if not isinstance(message, dict):
        return [err(loc, _NOT_AN_OBJECT, "model_attributes_type")]
    errors: list[dict[str, Any]] = []
    role = message.get("role")
    if role is None:
        errors.append(err([*loc, "role"], "Field required", "missing"))
    elif role not in _ROLES:
        errors.append(
            err(
                [*loc, "role"],
                "Input should be 'user', 'assistant', 'system' or 'tool_output'",
                "literal_error",
            )
        )
    content = message.get("content")
    if isinstance(content, list):
        errors.extend(
            err([*loc, "content", i], _NOT_AN_OBJECT, "model_attributes_type")
            for i, part in enumerate(content)
            if not isinstance(part, dict)
        )
    elif content is not None and not isinstance(content, str):
        errors.append(
            err(
                [*loc, "content"],
                "Input should be a valid string or a list of content parts",
                "union_type",
            )
        )
    return errors


def validate(body: Any) -> list[dict[str, Any]]:
    """Check a chat request body the way the real (FastAPI) server does; [] when valid."""
    if not isinstance(body, dict):
        return [err(["body"], _NOT_AN_OBJECT, "model_attributes_type")]
    errors: list[dict[str, Any]] = []
    if "model" not in body:
        errors.append(err(["body", "model"], "Field required", "missing"))
    elif not isinstance(body["model"], str):
        errors.append(err(["body", "model"], "Input should be a valid string", "string_type"))
    messages = body.get("messages")
    if messages is None:
        errors.append(err(["body", "messages"], "Field required", "missing"))
    elif not isinstance(messages, list):
        errors.append(err(["body", "messages"], "Input should be a valid list", "list_type"))
    elif not messages:
        errors.append(
            err(
                ["body", "messages"],
                "List should have at least 1 item after validation, not 0",
                "too_short",
            )
        )
    else:
        for i, message in enumerate(messages):
            if type(message) is dict and message.get("role") in _ROLES:
                content = message.get("content")
                if content is None or type(content) is str:
                    continue  # the common case, checked without building anything
            errors.extend(_validate_message(i, message))
    # Only the fields actually present are checked; unknown fields are ignored.
    for key, value in body.items():
        check = _FIELD_CHECKS.get(key)
        if check is not None and value is not None:
            errors.extend(check(key, value))
    return errors
