"""What the request loop shares and hands out: the pool's state (``Pool``, ``ClientState``),
the base-URL check, bounded body reads (``read_body``), and ``StreamBody``, the byte source a
stream reads from.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from yarl import URL

from .._exceptions import ResponseTooLargeError
from .accounting import Ledger, Outcome
from .attempt import AsyncTransport, TransportResponse
from .errors import map_errors
from .network import display_url, is_loopback

if TYPE_CHECKING:
    from .._models import Usage

__all__ = [
    "ClientState",
    "Pool",
    "StreamBody",
    "check_base_url",
    "read_body",
    "too_large",
]


class ClientState(enum.Enum):
    """The lifecycle of a client: no session yet, a live session, or closed for good."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> URL:
    """The parsed base URL, or ``ValueError`` saying what to fix."""
    url = URL(base_url.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            "base_url: must be an http(s) URL such as https://api.reka.ai/v1, got "
            f"{display_url(url) if url.host else repr(base_url)}"
        )
    if url.scheme == "http" and not is_loopback(url.host) and not allow_insecure_http:
        raise ValueError(
            f"base_url: refusing to send the API key over plain http to {url.host}; use https, "
            "or pass allow_insecure_http=True if this network is trusted"
        )
    return url


def too_large(limit: int, what: str, request_id: str | None) -> ResponseTooLargeError:
    """The error for a body (``what``) over the client's ``max_response_bytes``."""
    return ResponseTooLargeError(
        f"{what} is larger than max_response_bytes ({limit} bytes); nothing more was read. "
        "Raise the client's max_response_bytes if answers this large are expected",
        limit=limit,
        request_id=request_id,
    )


async def read_body(resp: TransportResponse, limit: int | None) -> bytes:
    """The whole body, then the connection released; ``ResponseTooLargeError`` once it
    passes ``limit``.

    The connection is dropped at once when the limit is passed: a hostile or broken server
    (an endless body, a compression bomb) costs at most ``limit`` bytes of memory.
    """
    parts: list[bytes] = []
    size = 0
    while chunk := await resp.read():
        size += len(chunk)
        if limit is not None and size > limit:
            resp.close()
            raise too_large(limit, "the response body", resp.headers.get("x-request-id"))
        parts.append(chunk)
    resp.release()
    return parts[0] if len(parts) == 1 else b"".join(parts)


class StreamBody:
    """The body of a streamed response as a byte source; the stream above never sees the
    transport's types.

    ``read()`` returns the next bytes (``b""`` at the end) and raises our errors only. It
    carries the open attempt's ``Ledger``: the stream settles it by how it ends.
    """

    __slots__ = ("__weakref__", "_errors", "_resp", "headers", "ledger")

    def __init__(self, resp: TransportResponse, errors: map_errors, ledger: Ledger | None) -> None:
        self._resp = resp
        self._errors = errors
        self.headers: Mapping[str, str] = resp.headers
        #: The reservations of this attempt (``None``: no budget), closed by the stream.
        self.ledger = ledger

    @property
    def closed(self) -> bool:
        """Whether the connection was released or closed."""
        return self._resp.closed

    async def read(self) -> bytes:
        """The bytes available next (waiting for some), or ``b""`` at the end of the body."""
        with self._errors:
            return await self._resp.read()

    def release(self) -> None:
        """Hand the connection back to the pool (the body was read to the end)."""
        self._resp.release()

    def close(self) -> None:
        """Drop the connection (an unread body must not be reused). Synchronous."""
        self._resp.close()

    def settle(self, outcome: Outcome, usage: Usage | None = None) -> None:
        """Settle this attempt's reservations by how the stream ended (once)."""
        if self.ledger is not None:
            self.ledger.close(outcome, usage)


class Pool:
    """What a client shares with its ``with_options`` copies: the attempt transport, the
    lifecycle, the streams handed out and the last response headers (rate limits are per
    key)."""

    __slots__ = ("last_headers", "sender", "state", "streams")

    def __init__(self, sender: AsyncTransport) -> None:
        #: What performs each attempt (``AiohttpTransport`` unless ``transport=`` was given).
        self.sender = sender
        self.state = ClientState.UNOPENED
        #: Stream bodies handed out and not yet collected (closed on ``aclose``).
        self.streams: weakref.WeakSet[StreamBody] = weakref.WeakSet()
        #: The headers of the most recent HTTP answer (any status), read by ``rate_limit``.
        self.last_headers: Mapping[str, str] | None = None
