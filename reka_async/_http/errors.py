"""The one translation point from aiohttp and asyncio errors to ours.

``map_errors(what)`` is a context manager in the style of httpx's ``map_httpcore_exceptions``:
whatever aiohttp, asyncio timeouts or the socket raise inside it leaves as an
``APIConnectionError`` (``APITimeoutError`` for timeouts), ``raise ... from exc``. Plain
requests and streams both read through it, so nothing above ``_http/`` sees an aiohttp type.
``status_error`` builds the typed error of a non-2xx response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Final

import aiohttp

from .._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    body_snippet,
    make_status_error,
)
from .retry import parse_retry_after

__all__ = ["invalid_body", "map_errors", "stale_candidate", "status_error", "translate"]

#: What ``map_errors`` translates: aiohttp's errors, asyncio's and the builtin timeout, and
#: socket-level ``OSError`` (a reset, a refused connection outside aiohttp's wrappers).
_THIRD_PARTY: Final = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError)


def translate(exc: BaseException, what: str) -> APIError:
    """Our error for an aiohttp/asyncio exception; ``what`` names the request in the message."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return APITimeoutError(f"{what}: timed out ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(f"{what}: the connection broke while reading the body")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return _unanswered(
            APIConnectionError(f"{what}: the server closed the connection without answering")
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(f"{what}: cannot connect ({exc.os_error.strerror or exc})")
    error = APIConnectionError(f"{what}: {type(exc).__name__}: {exc}")
    return _unanswered(error) if isinstance(exc, aiohttp.ClientOSError) else error


def _unanswered(error: APIConnectionError) -> APIConnectionError:
    """Mark a connection that failed while the request was written or before any response
    byte: on a reused keep-alive connection, the stale-connection case (``_http/retry.py``)."""
    error._unanswered = True  # type: ignore[attr-defined]
    return error


def stale_candidate(error: APIError) -> bool:
    """Whether ``error`` may be a stale pooled connection (see ``_unanswered``)."""
    return getattr(error, "_unanswered", False) is True


class map_errors:
    """Translate third-party exceptions raised inside the block into ours.

    A class rather than ``@contextmanager``: entering it costs no generator, and one instance
    per endpoint is reused by every request on the hot path.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, _THIRD_PARTY):
            raise translate(exc, self.what) from exc


def status_error(status: int, headers: Mapping[str, str], raw: bytes) -> APIStatusError:
    """The typed error for a non-2xx response (a 3xx is never followed: it says why)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after = None
    if status == 429 or status >= 500 or status in (408, 409):
        retry_after = parse_retry_after(lowered, time.time())
    if 300 <= status < 400:
        location = lowered.get("location", "?")
        return APIStatusError(
            f"HTTP {status}: the server redirected to {location}; redirects are not "
            "followed so the API key is never sent elsewhere. Check base_url.",
            status_code=status,
            body=raw.decode("utf-8", "replace"),
            headers=lowered,
            request_id=lowered.get("x-request-id"),
        )
    return make_status_error(status, raw, lowered, retry_after=retry_after)


def invalid_body(
    status: int, request_id: str | None, raw: bytes, exc: Exception
) -> APIResponseValidationError:
    """The error for a 2xx body that does not decode into the expected shape."""
    return APIResponseValidationError(
        f"HTTP {status}: the response is not valid JSON of the expected shape "
        f"({type(exc).__name__}); body starts: {body_snippet(raw)!r}",
        status_code=status,
        body=raw.decode("utf-8", "replace"),
        request_id=request_id,
    )
