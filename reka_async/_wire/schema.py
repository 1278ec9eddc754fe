"""Structured outputs from attrs classes: the JSON schema of a class, and the answer
structured back into it (``chat.parse``).

The schema follows what strict structured-output endpoints accept: every field is listed in
``required`` (a field with a default is still required, its type made nullable when the
default is ``None``), ``additionalProperties`` is false, nested attrs classes go to ``$defs``
and are referenced with ``$ref``. Supported field types: ``str``, ``int``, ``float``, ``bool``,
``None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``, ``X | None`` and other unions,
``Literal[...]``, ``enum.Enum`` subclasses, ``typing.Any`` and nested attrs classes.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import attrs
import cattrs

from .._exceptions import InvalidRequestError

__all__ = ["json_schema_of", "response_format_for", "schema_of_type", "structure_answer"]

T = TypeVar("T")

_NAME: Final = re.compile(r"[^a-zA-Z0-9_-]")
_PRIMITIVES: Final[dict[Any, dict[str, Any]]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    Any: {},
}

# Unknown keys are an error (the schema forbids them); cattrs' usual coercions apply.
_converter: Final = cattrs.Converter(forbid_extra_keys=True)


def _schema(tp: Any, defs: dict[str, Any], owner: str) -> dict[str, Any]:
    if tp in _PRIMITIVES:
        return dict(_PRIMITIVES[tp])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [_schema(a, defs, owner) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple) or tp in (list, tuple):
        item = args[0] if args else Any
        return {"type": "array", "items": _schema(item, defs, owner)}
    if origin is dict or tp is dict:
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": _schema(value, defs, owner)}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    if isinstance(tp, type) and attrs.has(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: a class that refers to itself terminates
            defs[name] = _object(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    raise InvalidRequestError(
        f"response_format: {owner} has a field of type {tp!r}, which has no JSON schema here; "
        "use str, int, float, bool, lists, dicts, Literal, Enum, unions or attrs classes"
    )


def _object(cls: type[Any], defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    for field in attrs.fields(cls):
        tp = hints.get(field.name, field.type)
        schema = _schema(tp, defs, cls.__name__)
        if field.default is None and "anyOf" not in schema:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[field.alias or field.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def json_schema_of(cls: type[Any]) -> dict[str, Any]:
    """The JSON schema of an attrs class (nested classes in ``$defs``).

    Raises:
        InvalidRequestError: ``cls`` is not an attrs class, or a field has a type with no
            schema here.
    """
    if not (isinstance(cls, type) and attrs.has(cls)):
        raise InvalidRequestError(
            f"response_format: expected an attrs class or a JSON schema dict, got {cls!r}"
        )
    defs: dict[str, Any] = {}
    schema = _object(cls, defs)
    defs.pop(cls.__name__, None)
    if defs:
        schema["$defs"] = defs
    return schema


def schema_of_type(tp: Any, owner: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON schema of one Python type (a function parameter's, for tools) and the
    ``$defs`` of the attrs classes it refers to.

    Raises:
        InvalidRequestError: a type with no schema here (``owner`` names where it was).
    """
    defs: dict[str, Any] = {}
    return _schema(tp, defs, owner), defs


def response_format_for(target: type[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """The ``response_format`` wire dict for an attrs class or a plain JSON schema dict.

    A dict that already has ``"type"`` (a whole ``response_format``) is passed on as it is.
    """
    if isinstance(target, Mapping):
        if "type" in target and "json_schema" in target:
            return dict(target)
        return {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": dict(target), "strict": True},
        }
    name = _NAME.sub("_", target.__name__)[:64] or "response"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": json_schema_of(target), "strict": True},
    }


def structure_answer(data: Any, cls: type[T]) -> T:
    """Structure a decoded answer into ``cls``; raises ``ValueError`` when it does not fit."""
    try:
        return _converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else f"{type(exc).__name__}: {exc}"
        )
        raise ValueError(f"the answer does not fit {cls.__name__}: {detail}") from exc
