"""The JSON backend: orjson when installed (the ``speed`` extra), else the standard library."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads"]

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        """Serialise to compact UTF-8 JSON."""
        return orjson.dumps(obj)

    loads: Callable[[bytes | str], Any] = orjson.loads
except ImportError:  # pragma: no cover - exercised when orjson is absent
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def dumps(obj: Any) -> bytes:
        """Serialise to compact UTF-8 JSON."""
        return _encoder.encode(obj).encode()

    loads = json.loads
