"""`Secret`: the API key on its way to the actors, never shown in a ``repr``."""

from __future__ import annotations

import os
from typing import Any

from ..._exceptions import MissingAPIKeyError

__all__ = ["Secret", "resolve_key"]


class Secret:
    """A string (the API key) that never shows in ``repr``, ``str`` or logs.

    `map_chat` and `run_ray_job` wrap the key in one before handing it to Ray, so that a
    printed ``fn_constructor_kwargs`` or dataset plan shows ``Secret('**********')``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("Secret: the value must be a non-empty string")
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def resolve_key(api_key: str | Secret | None) -> Secret:
    if isinstance(api_key, Secret):
        return api_key
    key = api_key if api_key is not None else os.environ.get("REKA_API_KEY")
    if not key:
        raise MissingAPIKeyError(
            "no API key: pass api_key=... or set the REKA_API_KEY environment variable"
        )
    return Secret(key)
