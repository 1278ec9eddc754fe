"""Plain JSON data from the models: ``Serializable`` (``to_dict()``/``to_json()`` on every
model) and ``to_jsonable`` for ``json.dumps(..., default=to_jsonable)`` and web frameworks."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = ["NOT_DATA", "Serializable", "to_jsonable"]

#: Field metadata of attributes that are not part of a model's data (``to_dict`` skips them).
NOT_DATA: Final = {"data": False}


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data: attrs models as dicts of their fields (``None`` left out,
    as the API omits them), lists, dicts with string keys, enums by value."""
    cls = type(value)
    if attrs.has(cls):
        out: dict[str, Any] = {}
        for field in attrs.fields(cls):
            if field.metadata.get("data", True):
                item = getattr(value, field.name)
                if item is not None:
                    out[field.alias or field.name] = _plain(item)
        return out
    if value is None or cls in (str, int, float, bool):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    return value


def to_jsonable(value: Any) -> Any:
    """Plain JSON data (dicts, lists, strings, numbers) from a model, a ``BatchResult``, or
    lists and dicts of them.

    Use it as ``json.dumps(response, default=to_jsonable)``, or return ``to_jsonable(x)``
    (or ``x.to_dict()``) from a web handler (FastAPI serialises dicts as they are).

    Raises:
        TypeError: ``value`` holds something that is not JSON data (as ``json.dumps`` would).
    """
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return to_dict()
    if attrs.has(type(value)) or isinstance(value, (list, tuple, Mapping, enum.Enum)):
        return _plain(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class Serializable:
    """``to_dict()`` and ``to_json()``, shared by every model."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The model's fields as plain JSON data (nested models as dicts, ``None`` left out).

        Responses come out in the native API's layout (``responses[0].message.content``,
        ``usage.input_tokens``) whichever dialect answered; the body as it was received is
        on ``chat.with_raw_response``.
        """
        data: dict[str, Any] = _plain(self)
        return data

    def to_json(self, *, indent: int | None = None) -> str:
        """``to_dict()`` as a JSON string (non-ASCII text kept as it is)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
