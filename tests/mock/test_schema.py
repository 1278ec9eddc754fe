"""The mock's JSON Schema instance generator and validator, checked against ``jsonschema``."""

from __future__ import annotations

import enum
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from reka_async.testing._schema import errors, instance, is_valid


class Kind(enum.Enum):
    A = "a"
    B = "b"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Leaf(BaseModel):
    label: str
    weight: float = Field(gt=0, lt=1)


class Branch(BaseModel):
    leaves: list[Leaf] = Field(min_length=2)
    child: Branch | None = None


class Everything(BaseModel):
    name: str = Field(min_length=6, max_length=10)
    count: int = Field(ge=3, le=5)
    odd: int = Field(gt=-10, lt=-2)
    ratio: float
    flag: bool
    kind: Kind
    level: Level
    literal: Literal["x", "y"]
    optional: int | None
    defaulted: str = "hello"
    tags: list[str]
    pairs: dict[str, int]
    branch: Branch
    maybe_leaf: Leaf | None
    nothing: None


MODELS: list[type[BaseModel]] = [Leaf, Branch, Everything]


def _strict(schema: Any) -> Any:
    """OpenAI's strict mode: every property required, no extra properties."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema:
            schema["required"] = list(schema["properties"])
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    return schema


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("strict", [False, True], ids=["pydantic", "strict"])
def test_instances_of_pydantic_schemas_validate(model: type[BaseModel], strict: bool) -> None:
    schema = model.model_json_schema()
    if strict:
        schema = _strict(schema)
    value = instance(schema)
    jsonschema.Draft202012Validator(schema).validate(value)
    assert errors(value, schema) == []
    model.model_validate(value)
    assert instance(schema) == value  # deterministic


SCHEMAS: list[dict[str, Any]] = [
    {"type": "integer", "minimum": 3, "maximum": 5},
    {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
    {"type": "number", "maximum": -4},
    {"type": "integer", "multipleOf": 7, "minimum": 8},
    {"type": "string", "minLength": 12},
    {"type": "string", "maxLength": 2},
    {"type": "string", "format": "date-time"},
    {"enum": ["p", "q"]},
    {"const": {"k": [1, 2]}},
    {"type": ["string", "null"]},
    {"type": ["null", "integer"]},
    {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
    {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    {"allOf": [{"type": "object", "required": ["a"]}, {"required": ["b"]}]},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}]},
    {"type": "array", "maxItems": 0},
    {"type": "object", "required": ["x"], "additionalProperties": {"type": "number"}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
    {"$defs": {"N": {"type": "integer", "minimum": 10}}, "$ref": "#/$defs/N"},
    {},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_generated_instances_satisfy_jsonschema(schema: dict[str, Any]) -> None:
    value = instance(schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(value), value
    assert is_valid(value, schema)


CASES: list[tuple[dict[str, Any], Any]] = [
    ({"type": "integer"}, True),
    ({"type": "integer"}, 2.0),
    ({"type": "integer"}, 2.5),
    ({"type": "number"}, "1"),
    ({"type": "boolean"}, 0),
    ({"const": 1}, True),
    ({"enum": [False]}, 0),
    ({"type": "string", "pattern": "^a+$"}, "aab"),
    ({"type": "string", "minLength": 2}, "a"),
    ({"type": "integer", "exclusiveMaximum": 3}, 3),
    ({"type": "integer", "minimum": 3}, 3),
    ({"multipleOf": 0.5}, 1.5),
    ({"multipleOf": 0.5}, 1.25),
    ({"type": "object", "required": ["a"]}, {}),
    ({"type": "object", "additionalProperties": False}, {"a": 1}),
    ({"type": "object", "properties": {"a": {"type": "null"}}}, {"a": None}),
    ({"type": "array", "uniqueItems": True}, [1, True]),
    ({"type": "array", "uniqueItems": True}, [{"a": 1}, {"a": 1}]),
    ({"type": "array", "minItems": 1}, []),
    ({"type": "array", "items": {"type": "string"}}, ["a", 1]),
    ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1),
    ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, None),
    ({"not": {"type": "string"}}, "s"),
    ({"$defs": {"S": {"type": "string"}}, "items": {"$ref": "#/$defs/S"}}, ["a", 2]),
    ({"type": ["string", "null"]}, 3),
]


@pytest.mark.parametrize(("schema", "value"), CASES)
def test_validator_agrees_with_jsonschema(schema: dict[str, Any], value: Any) -> None:
    assert is_valid(value, schema) == jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_validator_rejects_what_pydantic_and_jsonschema_reject(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    value = instance(schema)
    broken = {**value, next(iter(value)): {"not": "right"}}
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)
    assert errors(broken, schema)
