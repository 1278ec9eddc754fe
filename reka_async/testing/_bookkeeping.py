"""The mock server's bookkeeping: request records and the fixed-window rate limiter."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

_JSON: Final = "application/json"
_NOMINAL_RPM: Final = 1_000_000  # advertised when no rpm_limit is set; never reached
_WINDOW_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request received by `MockRekaServer`.

    Args:
        method: The HTTP method.
        path: The URL path, e.g. ``/v1/chat``.
        headers: The request headers (case-insensitive mapping).
        body: The parsed JSON body, or None when absent or not JSON.
        received_at: ``time.monotonic()`` when the request reached the handler.
        fault: The fault applied to this request, or None.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    received_at: float
    fault: str | None


def record(
    request: web.Request, body: Any, received_at: float, fault: str | None
) -> RecordedRequest:
    """The record of a request with its parsed body and the fault it suffered."""
    return RecordedRequest(request.method, request.path, request.headers, body, received_at, fault)


class Ids:
    """The ids a server hands out: request ids, chat ids (UUID-like) and tool call ids."""

    __slots__ = ("_call_ids", "_chat_id_prefix", "_chat_ids", "_request_id_prefix", "_request_ids")

    def __init__(self) -> None:
        tag = os.urandom(10).hex()
        self._request_ids = itertools.count(1)
        self._request_id_prefix = f"req_{tag[:8]}"
        self._chat_ids = itertools.count(1)
        self._chat_id_prefix = f"{tag[:8]}-{tag[8:12]}-4{tag[12:15]}-8{tag[15:18]}-"
        self._call_ids = itertools.count(1)

    def request_id(self) -> str:
        """The next ``x-request-id``."""
        return self._request_id_prefix + format(next(self._request_ids), "08x")

    def chat_id(self) -> str:
        """The next chat response ``id``."""
        return self._chat_id_prefix + format(next(self._chat_ids), "012x")

    def call_id(self) -> str:
        """The next tool call ``id``."""
        return f"call_{next(self._call_ids)}"


class RateWindow:
    """Fixed one-minute window accounting behind the x-ratelimit-* headers (and rpm_limit).

    Args:
        rpm_limit: Requests admitted per window; None advertises a limit never reached.
    """

    __slots__ = ("count", "end", "end_str", "limit", "limit_str")

    def __init__(self, rpm_limit: int | None) -> None:
        self.limit = rpm_limit if rpm_limit is not None else _NOMINAL_RPM
        self.limit_str = str(self.limit)
        self.end = 0.0
        self.end_str = "0"
        self.count = 0

    def roll(self, now: float) -> None:
        """Start a new window when ``now`` (``time.time()``) is past the current one."""
        if now >= self.end:
            self.end = now + _WINDOW_S
            self.end_str = f"{self.end:.3f}"
            self.count = 0

    def admit(self) -> bool:
        """Count one request in the window; False when the window is full."""
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def headers(self, request_id: str) -> dict[str, str]:
        """The headers of every response: JSON content, request id and rate-limit state."""
        return {
            "Content-Type": _JSON,
            "x-request-id": request_id,
            "x-ratelimit-limit": self.limit_str,
            "x-ratelimit-remaining": str(max(self.limit - self.count, 0)),
            "x-ratelimit-reset": self.end_str,
        }
