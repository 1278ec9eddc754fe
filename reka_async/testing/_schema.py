"""A small JSON Schema toolkit for the mock: a deterministic instance generator and a validator.

Structured outputs (``response_format: {"type": "json_schema", ...}``) and tool-call arguments
need JSON that validates against a caller's schema. This covers what pydantic and OpenAI's
strict mode emit: ``type`` (also as a list, e.g. ``["string", "null"]``), ``properties`` /
``required`` / ``additionalProperties``, ``items`` / ``prefixItems`` / ``minItems`` /
``maxItems`` / ``uniqueItems``, ``enum``, ``const``, ``anyOf`` / ``oneOf`` / ``allOf`` /
``not``, ``$ref`` into ``$defs`` (or ``definitions``), string lengths and ``pattern``, number
bounds (inclusive and exclusive) and ``multipleOf``. ``format`` is an annotation here, as in
the ``jsonschema`` package by default; the generator still writes plausible values for the
common formats.

The generator fills required properties only (optional ones are left out, which every schema
allows) and uses a ``default`` when the validator accepts it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

Schema = Mapping[str, Any]

_FORMATS: Final[Mapping[str, str]] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "email": "mock@example.com",
    "uri": "https://example.com/mock",
    "url": "https://example.com/mock",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
}
_TYPE_ORDER: Final = ("object", "array", "string", "integer", "number", "boolean", "null")


def resolve(schema: Any, root: Any) -> Any:
    """Follow ``$ref`` (local JSON pointers such as ``#/$defs/Item``) until a plain schema."""
    seen = 0
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < 32:
        target: Any = root
        for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            target = target[int(part)] if isinstance(target, list) else target[part]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **siblings} if siblings else target
        seen += 1
    return schema


# ---------------------------------------------------------------- generator


def instance(schema: Any, root: Any = None, *, index: int = 0, depth: int = 0) -> Any:
    """Return a deterministic JSON value that validates against ``schema``.

    Args:
        schema: A JSON Schema (a mapping, or a boolean schema).
        root: The document ``$ref`` pointers resolve against (default: ``schema``).
        index: A position (array items), varied into values so that unique items differ.
        depth: The nesting depth, to stop runaway recursive schemas.
    """
    if root is None:
        root = schema
    schema = resolve(schema, root)
    if not isinstance(schema, Mapping) or depth > 24:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][index % len(schema["enum"])]
    if "default" in schema and not errors(schema["default"], schema, root):
        return schema["default"]
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = resolve(part, root)
            # Every part must hold: their required names and properties add up.
            required = [*merged.get("required", []), *part.get("required", [])]
            properties = {**merged.get("properties", {}), **part.get("properties", {})}
            merged.update(part)
            if required:
                merged["required"] = list(dict.fromkeys(required))
            if properties:
                merged["properties"] = properties
        return instance(merged, root, index=index, depth=depth + 1)
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            # The first branch that is not null shows more than a bare null would.
            chosen = next(
                (b for b in branches if resolve(b, root).get("type") != "null"), branches[0]
            )
            return instance(chosen, root, index=index, depth=depth + 1)
    return _typed(schema, _pick_type(schema), root, index, depth)


def _pick_type(schema: Schema) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        return str(kinds[0]) if kinds else None
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _typed(schema: Schema, kind: str | None, root: Any, index: int, depth: int) -> Any:
    if kind == "object":
        properties: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        out: dict[str, Any] = {}
        for name in schema.get("required", []):
            sub = properties.get(name, extra if isinstance(extra, Mapping) else {})
            out[name] = instance(sub, root, depth=depth + 1)
        return out
    if kind == "array":
        prefix = list(schema.get("prefixItems", []))
        count = max(int(schema.get("minItems", 0)), 1, len(prefix))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items", {})
        return [
            instance(prefix[i] if i < len(prefix) else items, root, index=i, depth=depth + 1)
            for i in range(count)
        ]
    if kind == "string":
        return _string(schema, index)
    if kind == "integer":
        return int(_number(schema, index, integer=True))
    if kind == "number":
        return _number(schema, index, integer=False)
    if kind == "boolean":
        return index % 2 == 0
    return None


def _string(schema: Schema, index: int) -> str:
    fmt = schema.get("format")
    text = _FORMATS.get(fmt, "mock") if isinstance(fmt, str) else "mock"
    if index:
        text = f"{text}-{index}" if text == "mock" else text
    low = int(schema.get("minLength", 0))
    if len(text) < low:
        text += "x" * (low - len(text))
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def _number(schema: Schema, index: int, *, integer: bool) -> float:
    def bound(inclusive: str, exclusive: str, lower: bool) -> float | None:
        found: list[float] = []
        if isinstance(schema.get(inclusive), (int, float)):
            value = float(schema[inclusive])
            if integer:
                value = float(math.ceil(value) if lower else math.floor(value))
            found.append(value)
        if isinstance(schema.get(exclusive), (int, float)):
            value = float(schema[exclusive])
            if integer:  # the next whole number inside the bound
                value = float(math.floor(value) + 1 if lower else math.ceil(value) - 1)
            found.append(value)
        if not found:
            return None
        return max(found) if lower else min(found)

    low = bound("minimum", "exclusiveMinimum", lower=True)
    high = bound("maximum", "exclusiveMaximum", lower=False)
    if integer:
        value = (low if low is not None else 1.0) + index
        if high is not None and value > high:
            value = high if low is None else low
    elif low is not None and high is not None:
        value = low + (high - low) / (2 + index)  # strictly inside, so exclusive bounds hold
    elif low is not None:
        value = low + 0.5 + index
    elif high is not None:
        value = high - 0.5 - index
    else:
        value = 1.5 + index
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
    return value


# ---------------------------------------------------------------- validator


def errors(value: Any, schema: Any, root: Any = None, path: str = "$") -> list[str]:
    """Return what is wrong with ``value`` under ``schema`` (``path: message``); [] when valid."""
    if root is None:
        root = schema
    schema = resolve(schema, root)
    if schema is True or schema is None:
        return []
    if schema is False:
        return [f"{path}: no value is allowed here"]
    if not isinstance(schema, Mapping):
        return []
    found: list[str] = []
    if "const" in schema and not _same(value, schema["const"]):
        found.append(f"{path}: should be {schema['const']!r}")
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        found.append(f"{path}: should be one of {schema['enum']!r}")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(value, k) for k in kinds):
            return [*found, f"{path}: should be of type {kind}"]
    for sub in schema.get("allOf", []):
        found += errors(value, sub, root, path)
    if "anyOf" in schema and all(errors(value, b, root, path) for b in schema["anyOf"]):
        found.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        matches = sum(not errors(value, b, root, path) for b in schema["oneOf"])
        if matches != 1:
            found.append(f"{path}: matches {matches} branches of oneOf, not 1")
    if "not" in schema and not errors(value, schema["not"], root, path):
        found.append(f"{path}: should not match the 'not' schema")
    if isinstance(value, dict):
        found += _object_errors(value, schema, root, path)
    elif isinstance(value, list):
        found += _array_errors(value, schema, root, path)
    elif isinstance(value, str):
        found += _string_errors(value, schema, path)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found += _number_errors(value, schema, path)
    return found


def is_valid(value: Any, schema: Any) -> bool:
    """Whether ``value`` validates against ``schema``."""
    return not errors(value, schema)


def _same(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1, although Python says so.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    python_types: Mapping[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "null": type(None),
    }
    wanted = python_types.get(kind)
    return wanted is None or isinstance(value, wanted)


def _object_errors(value: dict[str, Any], schema: Schema, root: Any, path: str) -> list[str]:
    found = [f"{path}: '{n}' is required" for n in schema.get("required", []) if n not in value]
    properties: Mapping[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            found += errors(item, properties[name], root, f"{path}.{name}")
        elif extra is False:
            found.append(f"{path}: '{name}' is not allowed")
        elif isinstance(extra, Mapping):
            found += errors(item, extra, root, f"{path}.{name}")
    return found


def _array_errors(value: list[Any], schema: Schema, root: Any, path: str) -> list[str]:
    found: list[str] = []
    if len(value) < schema.get("minItems", 0):
        found.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        found.append(f"{path}: more than {schema['maxItems']} items")
    prefix = schema.get("prefixItems", [])
    items = schema.get("items")
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else items
        if sub is not None:
            found += errors(item, sub, root, f"{path}[{i}]")
    if schema.get("uniqueItems") and any(
        _same(a, b) for i, a in enumerate(value) for b in value[i + 1 :]
    ):
        found.append(f"{path}: items are not unique")
    return found


def _string_errors(value: str, schema: Schema, path: str) -> list[str]:
    found: list[str] = []
    if len(value) < schema.get("minLength", 0):
        found.append(f"{path}: shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        found.append(f"{path}: longer than {schema['maxLength']}")
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and re.search(pattern, value) is None:
        found.append(f"{path}: does not match {pattern!r}")
    return found


def _number_errors(value: float, schema: Schema, path: str) -> list[str]:
    checks: tuple[tuple[str, Callable[[float], bool]], ...] = (
        ("minimum", lambda b: value >= b),
        ("maximum", lambda b: value <= b),
        ("exclusiveMinimum", lambda b: value > b),
        ("exclusiveMaximum", lambda b: value < b),
        ("multipleOf", lambda b: b <= 0 or math.isclose(value / b, round(value / b))),
    )
    return [
        f"{path}: fails {key}={schema[key]!r}"
        for key, check in checks
        if isinstance(schema.get(key), (int, float)) and not check(schema[key])
    ]
