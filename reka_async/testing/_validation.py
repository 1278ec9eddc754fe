"""FastAPI-style request validation of ``POST /v1/chat`` bodies: the 422 ``detail`` lists.

`validate` takes the dialect's roles and field checks, so ``/v1/chat/completions`` (see
`_openai_validation`) shares the checks of the model, the messages and the plain fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._json import dumps, loads

NOT_AN_OBJECT: Final = "Input should be a valid dictionary or object to extract fields from"

Check = Callable[[str, Any], list[dict[str, Any]]]
Checks = Mapping[str, Check]

_ROLES: Final = ("user", "assistant", "system", "tool_output")
_TOOL_CHOICES: Final = frozenset({"auto", "none", "tool"})


def err(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    """One entry of a 422 ``detail`` list."""
    return {"loc": loc, "msg": msg, "type": kind}


class BodyTooDeep(ValueError):
    """A request body nested deeper than the JSON parser goes (answered 400, not 500)."""


def parse_body(raw: bytes) -> tuple[Any, list[dict[str, Any]]]:
    """The parsed JSON body (None when absent or not JSON) and the 422 entries that says.

    Raises:
        BodyTooDeep: the body is nested too deep to parse (the standard library's parser
            runs out of recursion; orjson stops at 1024 levels).
    """
    try:
        body = loads(raw) if raw else None
    except RecursionError:
        raise BodyTooDeep("the JSON body is nested too deep") from None
    except ValueError as exc:
        if "depth" in str(exc) or "recursion" in str(exc).lower():  # orjson's depth limit
            raise BodyTooDeep("the JSON body is nested too deep") from None
        return None, [err(["body", 0], "JSON decode error", "json_invalid")]
    return body, [] if body is not None else [err(["body"], "Field required", "missing")]


def detail_body(errors: list[dict[str, Any]]) -> bytes:
    """The JSON body of a 422 answer listing ``errors``."""
    return dumps({"detail": errors})


def literal_message(choices: tuple[str, ...]) -> str:
    """Pydantic's message for a value outside a Literal: ``Input should be 'a', 'b' or 'c'``."""
    quoted = [f"'{c}'" for c in choices]
    return "Input should be " + (", ".join(quoted[:-1]) + " or " + quoted[-1])


#: The values each sampling parameter may take: ``(low, low included, high, high included)``,
#: ``None`` for no bound; floats must be finite. The client keeps the same table
#: (``_wire/request.py``'s ``PARAM_RANGES``; this package imports nothing of it) and a test
#: checks that the two agree. Only values that cannot be valid are refused: the API documents
#: defaults, not limits.
PARAM_RANGES: Final[dict[str, tuple[float | None, bool, float | None, bool]]] = {
    "temperature": (0, True, None, False),
    "top_p": (0, False, 1, True),
    "top_k": (0, True, None, False),
    "max_tokens": (1, True, None, False),
    "presence_penalty": (None, False, None, False),
    "frequency_penalty": (None, False, None, False),
}


def _check_range(name: str, value: float) -> list[dict[str, Any]]:
    """pydantic's entry for a value outside ``PARAM_RANGES`` (its messages and types)."""
    bounds = PARAM_RANGES.get(name)
    if bounds is None:
        return []
    loc: list[str | int] = ["body", name]
    if not math.isfinite(value):
        return [err(loc, "Input should be a finite number", "finite_number")]
    low, low_in, high, high_in = bounds
    if low is not None and (value < low or (value == low and not low_in)):
        if low_in:
            return [
                err(loc, f"Input should be greater than or equal to {low:g}", "greater_than_equal")
            ]
        return [err(loc, f"Input should be greater than {low:g}", "greater_than")]
    if high is not None and (value > high or (value == high and not high_in)):
        if high_in:
            return [err(loc, f"Input should be less than or equal to {high:g}", "less_than_equal")]
        return [err(loc, f"Input should be less than {high:g}", "less_than")]
    return []


def check_int(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_range(name, value)
    return [err(["body", name], "Input should be a valid integer", "int_type")]


def check_number(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _check_range(name, value)
    return [err(["body", name], "Input should be a valid number", "float_type")]


def check_bool(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, bool):
        return []
    return [err(["body", name], "Input should be a valid boolean", "bool_type")]


def check_stop(name: str, value: Any) -> list[dict[str, Any]]:
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
                    NOT_AN_OBJECT,
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


def check_object(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return []
    return [err(["body", name], NOT_AN_OBJECT, "model_attributes_type")]


NATIVE_CHECKS: Final[Checks] = {
    "max_tokens": check_int,
    "top_k": check_int,
    "seed": check_int,
    "temperature": check_number,
    "top_p": check_number,
    "presence_penalty": check_number,
    "frequency_penalty": check_number,
    "stream": check_bool,
    "use_search_engine": check_bool,
    "stop": check_stop,
    "tools": _check_tools,
    "tool_choice": _check_tool_choice,
}


def _validate_message(index: int, message: Any, roles: tuple[str, ...]) -> list[dict[str, Any]]:
    loc: list[str | int] = ["body", "messages", index]
    if not isinstance(message, dict):
        return [err(loc, NOT_AN_OBJECT, "model_attributes_type")]
    errors: list[dict[str, Any]] = []
    role = message.get("role")
    if role is None:
        errors.append(err([*loc, "role"], "Field required", "missing"))
    elif role not in roles:
        errors.append(err([*loc, "role"], literal_message(roles), "literal_error"))
    content = message.get("content")
    if isinstance(content, list):
        errors.extend(
            err([*loc, "content", i], NOT_AN_OBJECT, "model_attributes_type")
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


def validate(
    body: Any, *, roles: tuple[str, ...] = _ROLES, checks: Checks = NATIVE_CHECKS
) -> list[dict[str, Any]]:
    """Check a chat request body the way the real (FastAPI) server does; [] when valid.

    Args:
        body: The parsed JSON body.
        roles: The message roles of the dialect.
        checks: The dialect's checks of its optional fields, by field name.
    """
    if not isinstance(body, dict):
        return [err(["body"], NOT_AN_OBJECT, "model_attributes_type")]
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
            if type(message) is dict and message.get("role") in roles:
                content = message.get("content")
                if content is None or type(content) is str:
                    continue  # the common case, checked without building anything
            errors.extend(_validate_message(i, message, roles))
    # Only the fields actually present are checked; unknown fields are ignored.
    for key, value in body.items():
        check = checks.get(key)
        if check is not None and value is not None:
            errors.extend(check(key, value))
    return errors
