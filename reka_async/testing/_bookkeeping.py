"""The mock server's bookkeeping: request records and the fixed-window rate limiter."""

from __future__ import annotations

import itertools
import math
import os
import re
import time
from collections.abc import Callable, Mapping
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


_RATE_RE: Final = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|min|m|h)\s*$")
_UNIT_S: Final = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_rate_limit(spec: str) -> tuple[int, float]:
    """``"50/s"``, ``"600/min"``, ``"10/5s"`` -> (requests, window seconds).

    Raises:
        ValueError: naming the accepted forms.
    """
    match = _RATE_RE.match(spec)
    if match is None or int(match.group(1)) < 1 or float(match.group(2) or 1) <= 0:
        raise ValueError(
            f"rate limit {spec!r}: expected REQUESTS/WINDOW such as 50/s, 600/min or 10/5s"
        )
    return int(match.group(1)), float(match.group(2) or 1) * _UNIT_S[match.group(3)]


def window_start_clock(window_s: float = _WINDOW_S) -> Callable[[], float]:
    """A Unix clock that reads the start of a rate-limit window now, and runs at real speed.

    For ``MockRekaServer(clock=...)`` in tests that count on one window lasting the whole
    test: the real clock may be a moment before a window's end (and a client told to wait
    under a second for it may rightly wait). This one is ``window_s`` from the next end,
    ahead of the real clock by less than a window, so the resets it advertises are never past.
    """
    start = time.time()
    offset = (math.floor(start / window_s) + 1) * window_s - start + 1e-3
    return lambda: time.time() + offset


class RateWindow:
    """Fixed-window accounting behind the x-ratelimit-* headers (and the limiter).

    The headers tell the truth about it: ``x-ratelimit-limit`` is the window's allowance,
    ``x-ratelimit-remaining`` what is left of it when the answer is sent, and
    ``x-ratelimit-reset`` the Unix time the window ends.

    Args:
        limit: Requests admitted per window; None advertises a limit never reached.
        window_s: The window's length in seconds (a minute by default).
        clock: The Unix time the window reads (`time.time` unless a test fixes it).
    """

    __slots__ = ("clock", "count", "end", "end_str", "limit", "limit_str", "window_s")

    def __init__(
        self,
        limit: int | None,
        window_s: float = _WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.limit = limit if limit is not None else _NOMINAL_RPM
        self.limit_str = str(self.limit)
        self.window_s = window_s
        self.end = 0.0
        self.end_str = "0"
        self.count = 0

    @classmethod
    def of(
        cls, rpm_limit: int | None, rate_limit: str | None, clock: Callable[[], float]
    ) -> RateWindow:
        """The window of `MockRekaServer`'s options: ``rpm_limit`` (per minute) or
        ``rate_limit`` (``"50/s"``...), at most one of them; neither: no limit.

        Raises:
            ValueError: Both are given, ``rpm_limit`` is under 1 or ``rate_limit`` is malformed.
        """
        if rpm_limit is not None and rpm_limit < 1:
            raise ValueError("rpm_limit must be at least 1")
        if rpm_limit is not None and rate_limit is not None:
            raise ValueError("pass rpm_limit or rate_limit, not both")
        if rate_limit is not None:
            return cls(*parse_rate_limit(rate_limit), clock)
        return cls(rpm_limit, _WINDOW_S, clock)

    def roll(self) -> None:
        """Start a new window when the clock is past the current one.

        Windows are aligned to multiples of their length since the epoch (as per-minute
        limits aligned to clock minutes are), so the reset times a client sees are a window
        length apart however long it paused. The header is the end rounded up to the
        millisecond: a client that waits until the time it says is never early.
        """
        now = self.clock()
        if now >= self.end:
            self.end = (math.floor(now / self.window_s) + 1) * self.window_s
            self.end_str = f"{math.ceil(self.end * 1000) / 1000:.3f}"
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
