"""Compact JSON for the mock server: orjson when it is installed, else the standard library."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


dumps: Callable[[Any], bytes] = _std_dumps
loads: Callable[[bytes], Any] = json.loads

try:  # orjson is an optional speed-up; the output is the same compact JSON.
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    dumps = orjson.dumps
    loads = orjson.loads
