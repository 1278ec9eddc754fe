"""Validation of ``POST /v1/chat/completions`` bodies, as a FastAPI server answers it (422).

Wrong types get the same ``detail`` list as ``/v1/chat`` (see `_validation`). The rules the
contract states for Research and structured outputs are 422s too, in the shape pydantic's
model validators give (``type: "value_error"``, ``msg: "Value error, ..."``) or, for the
schema name, its pattern check (``type: "string_pattern_mismatch"``):

* ``research.web_search`` with both ``allowed_domains`` and ``blocked_domains``
  (``loc: ["body", "research", "web_search"]``);
* ``research.parallel_thinking.mode`` other than ``"none"`` with ``stream: true``
  (``loc: ["body", "research", "parallel_thinking"]``);
* ``response_format.json_schema.name`` outside ``[a-zA-Z0-9_-]{1,64}``
  (``loc: ["body", "response_format", "json_schema", "name"]``), or no ``json_schema``
  object for ``type: "json_schema"``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ._validation import (
    NATIVE_CHECKS,
    NOT_AN_OBJECT,
    Check,
    Checks,
    check_bool,
    check_int,
    check_object,
    check_stop,
    err,
    literal_message,
    validate,
)

Errors = list[dict[str, Any]]

_ROLES: Final = ("system", "user", "assistant", "tool", "developer")
_TOOL_CHOICES: Final = ("none", "auto", "required")
_FORMATS: Final = ("text", "json_object", "json_schema")
_THINKING: Final = ("none", "low", "high")
_NAME_PATTERN: Final = "^[a-zA-Z0-9_-]{1,64}$"
_NAME_RE: Final = re.compile(_NAME_PATTERN)


def _check_stop(name: str, value: Any) -> Errors:
    return [] if isinstance(value, str) else check_stop(name, value)


def _check_tools(name: str, value: Any) -> Errors:
    if not isinstance(value, list):
        return [err(["body", name], "Input should be a valid list", "list_type")]
    errors: Errors = []
    for i, tool in enumerate(value):
        loc: list[str | int] = ["body", name, i]
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict):
            errors.append(err(loc, NOT_AN_OBJECT, "model_attributes_type"))
        elif tool.get("type", "function") != "function":
            errors.append(err([*loc, "type"], "Input should be 'function'", "literal_error"))
        elif not isinstance(function, dict):
            errors.append(err([*loc, "function"], "Field required", "missing"))
        elif not isinstance(function.get("name"), str):
            errors.append(
                err([*loc, "function", "name"], "Input should be a valid string", "string_type")
            )
    return errors


def _check_tool_choice(name: str, value: Any) -> Errors:
    if value in _TOOL_CHOICES:
        return []
    if isinstance(value, dict) and isinstance((value.get("function") or {}).get("name"), str):
        return []
    return [err(["body", name], literal_message(_TOOL_CHOICES), "literal_error")]


def _nested(loc: list[str | int], parent: dict[str, Any], key: str, check: Check) -> Errors:
    """Run a field check on ``parent[key]`` (when set), located below ``loc``."""
    value = parent.get(key)
    if value is None:
        return []
    return [{**e, "loc": [*loc, key]} for e in check(key, value)]


def _value_error(loc: list[str | int], message: str) -> dict[str, Any]:
    return err(loc, "Value error, " + message, "value_error")


def _check_research(name: str, value: Any) -> Errors:
    if not isinstance(value, dict):
        return check_object(name, value)
    errors: Errors = []
    search = value.get("web_search")
    if search is not None:
        loc: list[str | int] = ["body", name, "web_search"]
        if not isinstance(search, dict):
            errors.append(err(loc, NOT_AN_OBJECT, "model_attributes_type"))
        else:
            errors += _nested(loc, search, "enabled", check_bool)
            errors += _nested(loc, search, "max_uses", check_int)
            if search.get("allowed_domains") and search.get("blocked_domains"):
                errors.append(
                    _value_error(loc, "allowed_domains and blocked_domains cannot both be set")
                )
    thinking = value.get("parallel_thinking")
    if thinking is not None:
        loc = ["body", name, "parallel_thinking"]
        if not isinstance(thinking, dict):
            errors.append(err(loc, NOT_AN_OBJECT, "model_attributes_type"))
        elif thinking.get("mode", "none") not in _THINKING:
            errors.append(err([*loc, "mode"], literal_message(_THINKING), "literal_error"))
    return errors


def _check_response_format(name: str, value: Any) -> Errors:
    if not isinstance(value, dict):
        return check_object(name, value)
    kind = value.get("type")
    if kind not in _FORMATS:
        return [err(["body", name, "type"], literal_message(_FORMATS), "literal_error")]
    if kind != "json_schema":
        return []
    spec = value.get("json_schema")
    loc: list[str | int] = ["body", name, "json_schema"]
    if not isinstance(spec, dict):
        return [err(loc, "Field required", "missing")]
    errors: Errors = []
    schema_name = spec.get("name")
    if not isinstance(schema_name, str):
        errors.append(err([*loc, "name"], "Field required", "missing"))
    elif not _NAME_RE.match(schema_name):
        message = f"String should match pattern '{_NAME_PATTERN}'"
        errors.append(err([*loc, "name"], message, "string_pattern_mismatch"))
    if "schema" in spec and not isinstance(spec["schema"], dict):
        errors.append(err([*loc, "schema"], NOT_AN_OBJECT, "model_attributes_type"))
    errors += _nested(loc, spec, "strict", check_bool)
    return errors


OPENAI_CHECKS: Final[Checks] = {
    **{k: v for k, v in NATIVE_CHECKS.items() if k not in ("use_search_engine",)},
    "max_completion_tokens": check_int,
    "n": check_int,
    "stop": _check_stop,
    "tools": _check_tools,
    "tool_choice": _check_tool_choice,
    "research": _check_research,
    "response_format": _check_response_format,
    "stream_options": check_object,
}


def validate_openai(body: Any) -> Errors:
    """Check a ``/v1/chat/completions`` body; [] when valid."""
    errors = validate(body, roles=_ROLES, checks=OPENAI_CHECKS)
    if errors or not isinstance(body, dict):
        return errors
    research = body.get("research")
    thinking = research.get("parallel_thinking") if isinstance(research, dict) else None
    thinks = isinstance(thinking, dict) and thinking.get("mode", "none") != "none"
    if body.get("stream") is True and thinks:
        loc: list[str | int] = ["body", "research", "parallel_thinking"]
        errors.append(_value_error(loc, "parallel thinking is not supported with streaming"))
    return errors
