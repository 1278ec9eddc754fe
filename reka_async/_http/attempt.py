"""The attempt-level seam: one HTTP attempt over the network, and nothing else.

The request loop (``transport.py``) decides everything around an attempt: pacing, budgets,
hooks, the retry decision and its wait, error translation. Below it sits an
``AsyncTransport``, which only sends one ``TransportRequest`` and hands back a
``TransportResponse`` (status, headers, a body reader). ``AsyncClient(transport=...)``
accepts any object of that shape; the default is ``AiohttpTransport``
(``aiohttp_transport.py``), and ``reka_async.testing.MockTransport`` answers attempts
in-process from a function of the request, with no socket.

Why a ``Protocol`` and not a base class: ``reka_async.testing`` imports nothing of the
package (it is the independent oracle the client is tested against), so ``MockTransport``
matches this interface by shape. Anything with these methods works.

What a transport may raise: any exception of aiohttp, ``OSError`` (``ConnectionResetError``
and friends) or ``TimeoutError``; the loop translates them, once, into ``APIConnectionError``
(``APITimeoutError`` for a timeout), exactly as for the network transport. An
``OSError`` that says the connection could not be made (``ConnectionRefusedError``) is a
failure before the request was sent; any other may have reached the server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from yarl import URL

    from .options import Timeout

__all__ = ["AsyncTransport", "TransportRequest", "TransportResponse"]


class TransportRequest:
    """One HTTP attempt as the request loop hands it to an ``AsyncTransport``.

    A new object for every attempt (a retry is a new attempt). The headers are complete:
    the API key is in them, so never log them.

    Attributes:
        method: ``"POST"`` or ``"GET"``.
        url: the absolute URL (a ``yarl.URL``; ``str(request.url)`` for text).
        headers: every request header, the key's included.
        body: the JSON body as bytes, or ``None``.
        stream: whether the answer is read as a server-sent event stream (the loop then
            returns as soon as the headers are in; the body is read by the stream).
        timeout: the attempt's ``Timeout``.
        reused: set by the transport when it sends over a keep-alive connection that was
            idle in its pool: a failure before any answer is then retried once at once
            (a connection the server had closed; ``_http/retry.py``). ``False`` otherwise.
    """

    __slots__ = ("body", "headers", "method", "reused", "stream", "timeout", "url")

    def __init__(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        stream: bool,
        timeout: Timeout,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.stream = stream
        self.timeout = timeout
        self.reused = False

    def __repr__(self) -> str:
        kind = " (stream)" if self.stream else ""
        return f"<TransportRequest {self.method} {self.url.path}{kind}>"

    def json(self) -> Any:
        """The body decoded from JSON (``None`` when there is none)."""
        return None if self.body is None else json.loads(self.body)


@runtime_checkable
class TransportResponse(Protocol):
    """The answer to one attempt: status and headers at once, the body read on demand.

    ``read()`` returns the next bytes of the body (``b""`` at its end). The loop calls
    ``release()`` once the body was read to its end (the connection may be reused) and
    ``close()`` otherwise (drop it); either may be called more than once.
    """

    @property
    def status(self) -> int:
        """The HTTP status code."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (looked up case-insensitively by the loop's readers:
        provide a case-insensitive mapping, or lower-case names)."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the body's connection was released or closed."""
        ...

    async def read(self) -> bytes:
        """The next bytes of the body, waiting for some; ``b""`` at the end."""
        ...

    def release(self) -> None:
        """The body was read to its end: give the connection back."""
        ...

    def close(self) -> None:
        """Drop the connection (an unread body must not be reused). Synchronous."""
        ...


@runtime_checkable
class AsyncTransport(Protocol):
    """What performs one HTTP attempt; ``AsyncClient(transport=...)`` takes any of these.

    The client owns the transport it is given: ``AsyncClient.aclose()`` closes it.
    """

    async def send(self, request: TransportRequest) -> TransportResponse:
        """Send ``request`` and return once the response's status and headers are in."""
        ...

    async def aclose(self) -> None:
        """Release whatever the transport holds (connections). Called once, on close."""
        ...
