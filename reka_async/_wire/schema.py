"""Structured outputs from Python classes: the JSON schema of a class, and the answer
structured back into it (``chat.parse``).

Accepted: attrs classes, dataclasses and TypedDicts (the schema built here, the answer
structured by cattrs) and pydantic v2 models (the schema is the model's own
``model_json_schema()`` with ``additionalProperties: false`` added where absent, and pydantic
validates the answer). pydantic is optional: it is imported only when ``sys.modules`` already
holds it, which it does whenever a pydantic class exists.

The schema built here follows what strict structured-output endpoints accept: every field is
listed in ``required`` (a field with a default is still required, its type made nullable when the
default is ``None``), ``additionalProperties`` is false, nested attrs classes go to ``$defs``
and are referenced with ``$ref``. Supported field types: ``str``, ``int``, ``float``, ``bool``,
``None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``, ``X | None`` and other unions,
``Literal[...]``, ``enum.Enum`` subclasses, ``typing.Any`` and nested attrs classes,
dataclasses and TypedDicts.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import attrs
import cattrs

from .._exceptions import InvalidRequestError

__all__ = [
    "is_schema_class",
    "json_schema_of",
    "response_format_for",
    "schema_of_type",
    "structure_answer",
]

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
    if _is_record(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: a class that refers to itself terminates
            defs[name] = _object(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    raise InvalidRequestError(
        f"response_format: {owner} has a field of type {tp!r}, which has no JSON schema here; "
        "use str, int, float, bool, lists, dicts, Literal, Enum, unions, attrs classes, "
        "dataclasses or TypedDicts"
    )


def _is_typeddict(tp: Any) -> bool:
    # typing.is_typeddict misses typing_extensions' TypedDict on 3.10; the attributes do not.
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _is_record(tp: Any) -> bool:
    """A class whose schema is built here: attrs, dataclass or TypedDict."""
    return isinstance(tp, type) and (
        attrs.has(tp) or dataclasses.is_dataclass(tp) or _is_typeddict(tp)
    )


def _pydantic_model(tp: Any) -> Any:
    """pydantic's ``BaseModel`` when ``tp`` is a subclass of it, else ``None``.

    pydantic is never imported here: a pydantic class cannot exist unless it already is.
    """
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None)
    if base is not None and isinstance(tp, type) and issubclass(tp, base):
        return base
    return None


def _fields(cls: type[Any]) -> list[tuple[str, Any, bool]]:
    """``(wire name, type, defaults to None)`` for each field of an attrs class, dataclass or
    TypedDict."""
    hints = typing.get_type_hints(cls)
    if attrs.has(cls):
        return [
            (f.alias or f.name, hints.get(f.name, f.type), f.default is None)
            for f in attrs.fields(cls)
        ]
    if dataclasses.is_dataclass(cls):
        return [
            (f.name, hints.get(f.name, f.type), f.default is None) for f in dataclasses.fields(cls)
        ]
    return [(name, tp, False) for name, tp in hints.items()]


def _object(cls: type[Any], defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, tp, defaults_to_none in _fields(cls):
        schema = _schema(tp, defs, cls.__name__)
        if defaults_to_none and "anyOf" not in schema:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _closed(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object schema that leaves it
    unsaid (pydantic's default), so extra keys are refused as by the schemas built here."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def json_schema_of(cls: type[Any]) -> dict[str, Any]:
    """The JSON schema of a class (nested classes in ``$defs``).

    Args:
        cls: an attrs class, a dataclass, a TypedDict or a pydantic v2 model (its
            ``model_json_schema()``, with ``additionalProperties: false`` added where absent).

    Returns:
        The JSON schema dict.

    Raises:
        InvalidRequestError: ``cls`` is none of those, or a field has a type with no schema
            here.
    """
    if _pydantic_model(cls) is not None:
        return typing.cast("dict[str, Any]", _closed(cls.model_json_schema()))
    if not _is_record(cls):
        raise InvalidRequestError(
            "response_format: expected an attrs class, a dataclass, a TypedDict, a pydantic "
            f"model or a JSON schema dict, got {cls!r}"
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
    """The ``response_format`` wire dict for a class (as ``json_schema_of``) or a plain JSON
    schema dict.

    A dict that already has ``"type"`` (a whole ``response_format``) is passed on as it is. The
    schemas built here are strict-compatible (every field required) and sent with ``strict``;
    a pydantic model's schema leaves fields with defaults optional, so ``strict`` is not
    asked for it.

    Raises:
        InvalidRequestError: ``target`` has no JSON schema here.
    """
    if isinstance(target, Mapping):
        if "type" in target and "json_schema" in target:
            return dict(target)
        return {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": dict(target), "strict": True},
        }
    name = _NAME.sub("_", getattr(target, "__name__", ""))[:64] or "response"
    schema = json_schema_of(target)
    spec: dict[str, Any] = {"name": name, "schema": schema}
    if _pydantic_model(target) is None:
        spec["strict"] = True
    return {"type": "json_schema", "json_schema": spec}


def is_schema_class(target: Any) -> bool:
    """Whether ``target`` is a class ``response_format_for`` builds a schema for."""
    return _is_record(target) or _pydantic_model(target) is not None


def structure_answer(data: Any, cls: type[T]) -> T:
    """Structure a decoded answer into ``cls``; raises ``ValueError`` when it does not fit.

    A pydantic model validates the answer itself (``model_validate``); the message then names
    each failing field's path as pydantic gives it.
    """
    base = _pydantic_model(cls)
    if base is not None:
        pydantic = sys.modules["pydantic"]
        try:
            return typing.cast("T", cls.model_validate(data))  # type: ignore[attr-defined]
        except pydantic.ValidationError as exc:
            detail = "; ".join(
                f"{err['msg']} @ $.{'.'.join(str(p) for p in err['loc'])}" for err in exc.errors()
            )
            raise ValueError(f"the answer does not fit {cls.__name__}: {detail}") from exc
    try:
        return _converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else f"{type(exc).__name__}: {exc}"
        )
        raise ValueError(f"the answer does not fit {cls.__name__}: {detail}") from exc
