"""The mock server's bookkeeping: request records, ids, and a clock for window tests
(the limiters are in ``_limiters.py``)."""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

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
