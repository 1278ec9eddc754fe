"""Typed request options of the OpenAI-compatible dialect: Research and structured outputs.

``research=`` (web search, parallel thinking; for ``reka-flash-research``) and
``response_format=`` (a JSON schema the answer must follow) are given as the models below or as
plain dicts of the same keys. ``research_body`` and ``response_format_body`` validate either form
(``InvalidRequestError`` naming the field and what to fix) and return the wire dict; nothing is
sent before they pass. The models hold no logic: validation is done once, here, on the way out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from ._exceptions import InvalidRequestError
from ._serial import Serializable

__all__ = [
    "JsonSchemaFormat",
    "ParallelThinking",
    "Research",
    "ResearchLike",
    "ResponseFormat",
    "UserLocation",
    "WebSearch",
    "research_body",
    "response_format_body",
]


@attrs.frozen(kw_only=True)
class UserLocation(Serializable):
    """Where the user roughly is, to localise web search results.

    On the wire: ``{"type": "approximate", "approximate": {"city", "region", "country",
    "timezone"}}``; a dict may be given in that form or flat (``{"city": "Paris"}``).
    """

    city: str | None = None
    region: str | None = None
    country: str | None = None
    timezone: str | None = None


@attrs.frozen(kw_only=True)
class WebSearch(Serializable):
    """Web search for a Research answer.

    Attributes:
        enabled: let the model search.
        max_uses: the most searches for one answer (at least 1).
        allowed_domains: search only these domains (not with ``blocked_domains``).
        blocked_domains: never search these domains (not with ``allowed_domains``).
        user_location: to localise results.
    """

    enabled: bool = True
    max_uses: int | None = None
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None
    user_location: UserLocation | None = None


@attrs.frozen(kw_only=True)
class ParallelThinking(Serializable):
    """Parallel thinking for a Research answer; not allowed with streaming (unless ``"none"``)."""

    mode: Literal["none", "low", "high"]


@attrs.frozen(kw_only=True)
class Research(Serializable):
    """The ``research`` option of ``/chat/completions`` (model ``reka-flash-research``)."""

    web_search: WebSearch | None = None
    parallel_thinking: ParallelThinking | None = None


@attrs.frozen(kw_only=True)
class JsonSchemaFormat(Serializable):
    """Structured outputs: the answer is JSON that follows ``schema``.

    Attributes:
        name: the schema's name, 1 to 64 of ``a-z A-Z 0-9 _ -``.
        schema: a JSON schema (a dict).
        description: what the answer is, for the model.
        strict: ask for strict schema adherence.
    """

    name: str
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


#: What ``response_format=`` accepts: a ``JsonSchemaFormat``, or a dict in the wire form
#: (``{"type": "json_schema", "json_schema": {...}}``, ``{"type": "json_object"}``,
#: ``{"type": "text"}``).
ResponseFormat = JsonSchemaFormat | Mapping[str, Any]
#: What ``research=`` accepts: a ``Research`` or a dict of the same keys.
ResearchLike = Research | Mapping[str, Any]

_SCHEMA_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MODES: Final = ("none", "low", "high")


def _fail(path: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"{path}: {problem}")


def _fields(cls: type[Any], value: Any, path: str) -> dict[str, Any]:
    """The fields of an options model given as the model or a dict (unknown keys rejected)."""
    names = attrs.fields_dict(cls)
    if isinstance(value, cls):
        return {name: getattr(value, name) for name in names}
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a {cls.__name__} or a dict, got {type(value).__name__}")
    for key in value:
        if key not in names:
            raise _fail(f"{path}.{key}", f"unknown key; use one of {', '.join(names)}")
    return dict(value)


def _check(path: str, value: Any, kind: type, kind_name: str) -> Any:
    """``value`` when it is ``None`` or of ``kind`` (``bool`` is no ``int`` here)."""
    if value is not None and (
        not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
    ):
        raise _fail(path, f"must be {kind_name}, got {value!r}")
    return value


def _domains(path: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _fail(path, f"must be a list of domain names such as ['reka.ai'], got {value!r}")
    if not value or not all(isinstance(d, str) and d for d in value):
        raise _fail(path, "must be a non-empty list of non-empty domain names")
    for domain in value:
        # A domain, optionally path-scoped ("reka.ai/docs"): never a URL with a scheme, a
        # query or a fragment, and no whitespace (the API would match nothing, silently).
        if "://" in domain or any(c in domain for c in "?#") or any(c.isspace() for c in domain):
            raise _fail(
                path,
                f"{domain!r} is not a domain name: give the host (and an optional path), "
                f"such as 'reka.ai' or 'reka.ai/docs', without a scheme, query or spaces",
            )
    return list(value)


def _user_location(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, Mapping) and "approximate" in value:  # the wire form
        if value.get("type", "approximate") != "approximate" or set(value) - {
            "type",
            "approximate",
        }:
            raise _fail(path, "use {'type': 'approximate', 'approximate': {...}} or a flat dict")
        value, path = value["approximate"], f"{path}.approximate"
    fields = _fields(UserLocation, value, path)
    approximate = {
        name: _check(f"{path}.{name}", given, str, "a string")
        for name, given in fields.items()
        if given is not None
    }
    return {"type": "approximate", "approximate": approximate}


def _web_search(value: Any, path: str) -> dict[str, Any]:
    fields = _fields(WebSearch, value, path)
    enabled = _check(f"{path}.enabled", fields.get("enabled", True), bool, "a bool")
    out: dict[str, Any] = {"enabled": True if enabled is None else enabled}
    max_uses = _check(f"{path}.max_uses", fields.get("max_uses"), int, "an integer")
    if max_uses is not None:
        if max_uses < 1:
            raise _fail(f"{path}.max_uses", f"must be at least 1, got {max_uses}")
        out["max_uses"] = max_uses
    allowed = _domains(f"{path}.allowed_domains", fields.get("allowed_domains"))
    blocked = _domains(f"{path}.blocked_domains", fields.get("blocked_domains"))
    if allowed is not None and blocked is not None:
        raise _fail(
            f"{path}.allowed_domains",
            "give allowed_domains or blocked_domains, not both (the API rejects the pair)",
        )
    if allowed is not None:
        out["allowed_domains"] = allowed
    if blocked is not None:
        out["blocked_domains"] = blocked
    location = fields.get("user_location")
    if location is not None:
        out["user_location"] = _user_location(location, f"{path}.user_location")
    return out


def research_body(value: Any, *, stream: bool) -> dict[str, Any]:
    """Validate a ``research=`` option and return its wire dict.

    Args:
        value: a ``Research`` or a dict of its keys (``web_search``, ``parallel_thinking``,
            each a model or a dict).
        stream: whether the request streams (parallel thinking is not allowed then).

    Returns:
        The ``research`` object of the ``/chat/completions`` body, ``None`` fields omitted.

    Raises:
        InvalidRequestError: naming the field and what to fix.
    """
    fields = _fields(Research, value, "research")
    out: dict[str, Any] = {}
    web_search = fields.get("web_search")
    if web_search is not None:
        out["web_search"] = _web_search(web_search, "research.web_search")
    thinking = fields.get("parallel_thinking")
    if thinking is not None:
        path = "research.parallel_thinking"
        mode = _fields(ParallelThinking, thinking, path).get("mode")
        if not isinstance(mode, str) or mode not in _MODES:
            raise _fail(f"{path}.mode", f"must be 'none', 'low' or 'high', got {mode!r}")
        if stream and mode != "none":
            raise _fail(
                path, "parallel thinking is not allowed with streaming; use chat.create instead"
            )
        out["parallel_thinking"] = {"mode": mode}
    return out


def _json_schema(value: Any, path: str) -> dict[str, Any]:
    fields = _fields(JsonSchemaFormat, value, path)
    name = fields.get("name")
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        raise _fail(f"{path}.name", f"must be 1 to 64 of a-z A-Z 0-9 _ -, got {name!r}")
    schema = fields.get("schema")
    if not isinstance(schema, Mapping):
        raise _fail(f"{path}.schema", f"must be a JSON schema (a dict), got {schema!r}")
    out: dict[str, Any] = {"name": name, "schema": dict(schema)}
    description = _check(f"{path}.description", fields.get("description"), str, "a string")
    if description is not None:
        out["description"] = description
    strict = _check(f"{path}.strict", fields.get("strict"), bool, "a bool")
    if strict is not None:
        out["strict"] = strict
    return out


def response_format_body(value: Any) -> dict[str, Any]:
    """Validate a ``response_format=`` option and return its wire dict.

    ``{"type": "json_object"}`` and ``{"type": "text"}`` are passed on as they are (the
    contract documents only ``json_schema``; the server decides whether it supports them).

    Args:
        value: a ``JsonSchemaFormat`` or a dict in the wire form.

    Raises:
        InvalidRequestError: naming the field and what to fix.
    """
    path = "response_format"
    if isinstance(value, JsonSchemaFormat):
        return {"type": "json_schema", "json_schema": _json_schema(value, f"{path}.json_schema")}
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a JsonSchemaFormat or a dict, got {type(value).__name__}")
    kind = value.get("type")
    if kind in ("json_object", "text"):
        if len(value) > 1:
            extra = next(k for k in value if k != "type")
            raise _fail(f"{path}.{extra}", f"unknown key for type {kind!r}")
        return {"type": kind}
    if kind != "json_schema":
        raise _fail(f"{path}.type", f"must be 'json_schema', 'json_object' or 'text', got {kind!r}")
    extra_keys = [k for k in value if k not in ("type", "json_schema")]
    if extra_keys:
        raise _fail(f"{path}.{extra_keys[0]}", "unknown key; use 'type' and 'json_schema'")
    return {
        "type": "json_schema",
        "json_schema": _json_schema(value.get("json_schema"), path + ".json_schema"),
    }
