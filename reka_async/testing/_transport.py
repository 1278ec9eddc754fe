"""``MockTransport``: answer a client's HTTP attempts in-process, from a function of the request.

``AsyncClient(transport=MockTransport(handler))`` sends every attempt to ``handler`` instead
of a socket. Retries, pacing, hooks and budgets run above the transport as they do over the
network, so a handler that answers 429 and then 200 sees two attempts, and the client's
hooks see both.

The client's side of the seam is ``reka_async._http.attempt`` (``AsyncTransport``,
``TransportRequest``, ``TransportResponse``); this module imports nothing of the package and
matches that interface by shape, so the mock stays an independent oracle.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["MockResponse", "MockTransport", "sse"]


def sse(*events: Any, done: bool = True) -> list[bytes]:
    """Server-sent event frames, one per event: a dict or list is sent as its JSON, a string
    as it is; ``data: [DONE]`` ends them unless ``done=False``. Each frame is its own read,
    so a ``MockResponse(chunks=sse(...))`` delivers one event per read."""
    frames = [
        f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode()
        for event in events
    ]
    if done:
        frames.append(b"data: [DONE]\n\n")
    return frames


class MockResponse:
    """What a handler answers one attempt with.

    Args:
        status: the HTTP status.
        json: a body to send as JSON (``content-type: application/json``).
        content: a body as bytes or text, sent as it is.
        chunks: a body in pieces, one per read (for streams: ``sse(...)`` makes them);
            ``content-type: text/event-stream`` unless ``headers`` say otherwise. An
            exception among them is raised by that read instead (``ConnectionResetError()``:
            the connection dropped there).
        headers: response headers (``x-request-id``, ``retry-after``, ``x-ratelimit-*``).

    Give at most one of ``json``, ``content`` and ``chunks``; none is an empty body.
    """

    __slots__ = ("headers", "parts", "status")

    def __init__(
        self,
        status: int = 200,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        chunks: Iterable[bytes | str | BaseException] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        given = sum(x is not None for x in (json, content, chunks))
        if given > 1:
            raise ValueError("MockResponse: give one of json=, content= and chunks=")
        found: CIMultiDict[str] = CIMultiDict()
        parts: tuple[bytes | BaseException, ...] = ()
        if json is not None:
            found["content-type"] = "application/json"
            parts = (_dumps(json),)
        elif content is not None:
            parts = (content.encode() if isinstance(content, str) else content,)
        elif chunks is not None:
            found["content-type"] = "text/event-stream"
            parts = tuple(c.encode() if isinstance(c, str) else c for c in chunks)
        found.update(headers or {})
        self.status = status
        self.headers = CIMultiDictProxy(found)
        self.parts = tuple(p for p in parts if p)

    def __repr__(self) -> str:
        size = sum(len(p) for p in self.parts if isinstance(p, bytes))
        return f"<MockResponse {self.status} {size} bytes in {len(self.parts)} reads>"


class _Answer:
    """One attempt's answer, read once (the client's ``TransportResponse``)."""

    __slots__ = ("_parts", "closed", "headers", "released", "status")

    def __init__(self, response: MockResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self._parts = list(reversed(response.parts))
        self.closed = False
        #: Whether the body was read to its end and handed back (not dropped).
        self.released = False

    async def read(self) -> bytes:
        if self.closed or not self._parts:
            return b""
        part = self._parts.pop()
        if isinstance(part, BaseException):
            raise part
        return part

    def release(self) -> None:
        self.released = not self.closed
        self.closed = True

    def close(self) -> None:
        self.closed = True


#: What a handler may be: a function of the request returning a ``MockResponse``, or a
#: coroutine function. It may raise ``OSError`` (``ConnectionResetError``: a dropped
#: connection; ``ConnectionRefusedError``: one never made) or ``TimeoutError``; the client
#: translates them as it does the network's.
Handler = Callable[[Any], MockResponse | Awaitable[MockResponse]]


class MockTransport:
    """An attempt transport that answers from ``handler(request)``, with no socket.

    ``request`` is the client's ``TransportRequest``: ``method``, ``url`` (a ``yarl.URL``:
    ``request.url.path``), ``headers`` (the key's included), ``body`` (bytes),
    ``json()`` (the body decoded) and ``stream``.

    Attributes:
        requests: every attempt received, in order.
        answers: what each attempt was answered with (the reader the client got: its
            ``closed`` and ``released`` say whether the client gave the connection back).
        closed: whether the client closed the transport.
    """

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"MockTransport: handler must be callable, got {handler!r}")
        self._handler = handler
        self.requests: list[Any] = []
        self.answers: list[_Answer] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"<MockTransport {len(self.requests)} requests{' closed' if self.closed else ''}>"

    async def send(self, request: Any) -> _Answer:
        """Answer one attempt from the handler."""
        if self.closed:
            raise RuntimeError("MockTransport: used after the client closed it")
        self.requests.append(request)
        answer = self._handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, MockResponse):
            raise TypeError(
                f"MockTransport: the handler must return a MockResponse, got {answer!r}"
            )
        reader = _Answer(answer)
        self.answers.append(reader)
        return reader

    async def aclose(self) -> None:
        """Mark the transport closed (the client calls it on ``aclose``)."""
        self.closed = True


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
