"""What a ``Transport`` shares and hands out: the pool's state (``_Pool``, ``ClientState``),
the base-URL check, bounded body reads (``read_body``), and ``StreamBody``, the byte source a
stream reads from. Split from ``transport.py``, which keeps the request loop.
"""

from __future__ import annotations

import asyncio
import enum
import weakref
from collections.abc import Mapping
from ssl import SSLContext

import aiohttp
from yarl import URL

from .._exceptions import ResponseTooLargeError
from .errors import map_errors
from .network import ConnectorFactory, display_url, is_loopback

__all__ = [
    "ClientState",
    "Pool",
    "StreamBody",
    "check_base_url",
    "has_idle",
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


async def read_body(resp: aiohttp.ClientResponse, limit: int | None) -> bytes:
    """The whole body (decompressed), or ``ResponseTooLargeError`` once it passes ``limit``.

    The connection is dropped at once when the limit is passed: a hostile or broken server
    (an endless body, a compression bomb) costs at most ``limit`` bytes of memory.
    """
    if limit is None:
        return await resp.read()
    content = resp.content
    parts: list[bytes] = []
    size = 0
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            resp.close()
            raise too_large(limit, "the response body", resp.headers.get("x-request-id"))
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class StreamBody:
    """The body of a streamed response as a byte source; the stream above never sees aiohttp.

    ``read()`` returns the next bytes (``b""`` at the end) and raises our errors only.
    """

    __slots__ = ("__weakref__", "_errors", "_resp", "headers")

    def __init__(self, resp: aiohttp.ClientResponse, errors: map_errors) -> None:
        self._resp = resp
        self._errors = errors
        self.headers: Mapping[str, str] = resp.headers

    @property
    def closed(self) -> bool:
        """Whether the connection was released or closed."""
        return self._resp.closed

    async def read(self) -> bytes:
        """The bytes available next (waiting for some), or ``b""`` at the end of the body."""
        with self._errors:
            return await self._resp.content.readany()

    def release(self) -> None:
        """Hand the connection back to the pool (the body was read to the end)."""
        self._resp.release()

    def close(self) -> None:
        """Drop the connection (an unread body must not be reused). Synchronous."""
        self._resp.close()


def has_idle(session: aiohttp.ClientSession) -> bool:
    """Whether the pool holds an idle keep-alive connection (the next request reuses one).

    aiohttp keeps no public count; its connector's ``_conns`` holds the idle ones, keyed by
    host and dropped when empty. Without it (another connector), assume a reuse, as aiohttp's
    own retry of idempotent requests does.
    """
    return bool(getattr(session.connector, "_conns", True))


class Pool:
    """What a client shares with its ``with_options`` copies: the session and its loop, the
    pool's lifecycle, how it connects, and the last response headers (rate limits are per key).
    """

    __slots__ = (
        "connector_factory",
        "headers",
        "last_headers",
        "loop",
        "pid",
        "proxy",
        "session",
        "ssl",
        "state",
        "streams",
    )

    def __init__(
        self,
        *,
        headers: dict[str, str],
        proxy: URL | None,
        ssl: SSLContext | None,
        connector_factory: ConnectorFactory | None,
    ) -> None:
        self.headers = headers
        self.proxy = proxy
        self.ssl = ssl
        self.connector_factory = connector_factory
        self.session: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0  # the process that opened the session (a fork's child may not use it)
        self.state = ClientState.UNOPENED
        #: Stream bodies handed out and not yet collected (closed on ``aclose``).
        self.streams: weakref.WeakSet[StreamBody] = weakref.WeakSet()
        #: The headers of the most recent HTTP answer (any status), read by ``rate_limit``.
        self.last_headers: Mapping[str, str] | None = None
