"""``AsyncChatStream``: the async chat stream over a byte source.

It opens the request through the transport's one request loop (``Transport.send``: pacing,
budgets, hooks, retries), feeds the bytes to the sans-I/O ``SSEDecoder``, decodes each event
with the dialect's decoder into a ``StreamEvent`` and hands it to the ``Assembler``
(``_assemble.py``: cumulative or delta, the finish, tool-call fragments), and releases the
connection as soon as the stream ends or the caller leaves early. It never sees aiohttp:
the transport hands it a ``StreamBody`` whose reads raise our errors only.

What the stream itself decides is only what happens mid-stream: a body that breaks before
its first event goes back to the request loop (``send(call, failed=error)``, which decides
whether to retry); one that breaks after it is a ``StreamError``; a body that ends without
its final event is a ``StreamError``. It settles the open attempt's budget reservations by
how the body ended (``accounting.py``): the usage when the stream finished, kept in full
otherwise.

An error is final: chunks received before it are handed out first, then the error is raised
once, and the stream is over (no request is sent again after it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._assemble import Assembler
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    StreamError,
    body_snippet,
)
from ._http.accounting import Outcome
from ._models import ChatChunk, ChatResponse, Usage
from ._sse import ServerSentEvent, SSEDecoder
from ._types import StreamMode
from ._wire import loads
from ._wire._json import too_deep
from ._wire.events import StreamEvent, TextEvent

if TYPE_CHECKING:
    from ._http import Call, StreamBody, Transport

__all__ = ["AsyncChatStream"]

_NO_HEADERS: Final[Mapping[str, str]] = {}

#: A dialect's decoder of one event's JSON.
EventDecoder = Callable[[Any], StreamEvent]
#: A dialect's reader of the usual event's fields (``None``: not the usual event).
TextDecoder = Callable[[Any], TextEvent | None]


def _stream_error_message(data: Any) -> str | None:
    """The error message of an error event body, or ``None`` when it is not one."""
    if isinstance(data, dict) and "error" in data:
        err = data["error"]
        if isinstance(err, dict):
            return f"{err.get('type', 'error')}: {err.get('message', '')}".strip()
        return str(err)
    return None


class AsyncChatStream:
    """An async iterator of ``ChatChunk`` for one streamed chat; also an async context manager.

    The request starts on first iteration (or on ``async with``). Leaving early, by ``break``,
    an exception or cancellation, closes the connection at once. ``text`` holds the text so far;
    ``final_response()`` reads to the end and returns the assembled ``ChatResponse``.
    """

    def __init__(
        self,
        *,
        transport: Transport,
        call: Call[Any],
        decode: EventDecoder,
        text_event: TextDecoder,
        mode: StreamMode = "auto",
    ) -> None:
        self._transport = transport
        self._call = call
        self._path = call.path
        self._decode = decode
        self._text_event = text_event
        self._resp: StreamBody | None = None
        self._decoder = SSEDecoder(max_event_bytes=transport.max_response_bytes)
        self._assembler = Assembler(mode)
        # The last read's events, handled one per chunk handed out (see ``__anext__``).
        self._events: list[ServerSentEvent] = []
        self._next = 0
        self._ended = False  # the body has ended: the end is checked once its events are out
        self._finished = False  # the body was read to its end
        self._closed = False
        self._error: BaseException | None = None  # raised once the chunks before it are out
        self.request_id: str | None = None
        #: The response headers once the stream is open (rate limits included).
        self.headers: Mapping[str, str] = _NO_HEADERS

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._resp is not None else "new")
        return f"<AsyncChatStream {self._path} {state} chars={len(self.text)}>"

    @property
    def text(self) -> str:
        """The assembled text of the first response so far."""
        return self._assembler.text

    @property
    def usage(self) -> Usage | None:
        """Token counts, once an event carried them (often the last one)."""
        return self._assembler.usage

    async def __aenter__(self) -> AsyncChatStream:
        await self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def aclose(self) -> None:
        """Close the stream and its connection (idempotent)."""
        self._closed = True
        self._events, self._ended = [], False  # what was read and not handed out is dropped
        self._drop(reuse=self._finished)

    def __del__(self) -> None:
        # Reached when a caller breaks out of ``async for`` without ``async with``: closing the
        # socket is synchronous, so nothing is scheduled on the loop.
        # Its reservations are kept (it was sent and may have been generated).
        resp = getattr(self, "_resp", None)
        if resp is not None:
            if not resp.closed:
                resp.close()
            resp.settle(Outcome.UNKNOWN)

    def _drop(self, *, reuse: bool) -> None:
        """Give the connection back (``reuse``: the body was read to its end) or drop it;
        an attempt not settled by then (broken, cancelled, left early) keeps its
        reservations."""
        resp, self._resp = self._resp, None
        if resp is not None:
            if reuse:
                resp.release()  # body fully read: the connection goes back to the pool
            else:
                resp.close()  # unread body: drop the connection rather than reuse it
            resp.settle(Outcome.UNKNOWN)

    async def _ensure_open(self) -> None:
        if self._resp is None:
            if self._closed:
                raise RuntimeError("this stream is closed")
            self._opened(await self._transport.send(self._call))

    def _opened(self, resp: StreamBody) -> None:
        self._resp = resp
        self.headers = resp.headers
        self.request_id = resp.headers.get("x-request-id")

    async def _reopen(self, error: APIError) -> None:
        """The body broke before its first event: the request loop decides whether to try
        again (and waits), or raises ``error``."""
        self._decoder = SSEDecoder(max_event_bytes=self._transport.max_response_bytes)
        self._opened(await self._transport.send(self._call, failed=error))

    async def __anext__(self) -> ChatChunk:
        while True:
            # One read may hold a thousand events: they are handled one chunk at a time, as
            # the caller asks, not all at once. Chunks made ahead would all be alive together
            # (each with the text so far), and the garbage collector would walk them again and
            # again: 13-16 % more CPU per chunk in a 1,000-chunk delta stream read 256 kB at a
            # time (``python -m benchmarks.chunks_ahead`` measures both ways).
            events = self._events
            if self._next < len(events):
                event = events[self._next]
                self._next += 1
                try:
                    chunk = self._handle(event)
                except APIError as exc:  # an error event, an unreadable event
                    self._fail(exc)
                    continue
                if chunk is not None:
                    return chunk
                continue
            if self._ended:  # the body has ended and its last events are out
                self._ended = False
                self._end()
                continue
            if self._error is not None:
                error, self._error = self._error, None
                self._closed = True  # final: nothing is sent again after an error
                raise error
            if self._finished or self._closed:
                raise StopAsyncIteration
            resp = self._resp
            if resp is None:  # not open yet: no coroutine per read once it is
                await self._ensure_open()
                resp = self._resp
                assert resp is not None
            try:
                data = await resp.read()
            except APIConnectionError as error:  # the read broke: translated by the transport
                self._drop(reuse=False)
                if self._assembler.started:
                    self._error = self._broken(error)
                    self._error.__cause__ = error.__cause__
                    continue
                await self._reopen(error)
                continue
            except BaseException:
                self._drop(reuse=False)
                raise
            self._next = 0
            try:
                if data:
                    self._events = self._decoder.feed(data)
                else:
                    self._events, self._ended = self._decoder.flush(), True
            except APIError as exc:  # an event over the size limit
                self._fail(exc)

    def _fail(self, error: APIError) -> None:
        """An error found in the body: the connection is dropped, the error raised next."""
        self._events, self._ended = [], False
        self._drop(reuse=False)
        if error.request_id is None:
            error.request_id = self.request_id
        self._error = error

    def _end(self) -> None:
        """The body was read to its end: settle, release the connection, check the finish."""
        resp = self._resp
        if resp is not None:
            resp.settle(Outcome.ANSWERED, self._assembler.usage)
        self._drop(reuse=True)
        self._finished = True
        if not self._assembler.finished:
            self._error = StreamError(
                "the stream ended before its final event (no finish_reason)",
                request_id=self.request_id,
                partial_text=self.text,
            )

    def _broken(self, error: APIError) -> APIError:
        if isinstance(error, APITimeoutError):
            return APITimeoutError(
                f"{error.message} after {len(self.text)} characters", request_id=self.request_id
            )
        return StreamError(
            f"the stream broke mid-way: {error.message}",
            request_id=self.request_id,
            partial_text=self.text,
        )

    def _invalid(self, problem: str, data: str) -> APIResponseValidationError:
        return APIResponseValidationError(
            f"a stream event {problem}: {body_snippet(data)!r}",
            status_code=200,
            body=data,
            request_id=self.request_id,
        )

    def _handle(self, event: ServerSentEvent) -> ChatChunk | None:
        """One event: its chunk, or None (``[DONE]``, or an event that makes none)."""
        if event.data == "[DONE]":
            return None
        try:
            data = loads(event.data)
        except ValueError as exc:
            if too_deep(exc):  # hostile nesting mid-stream: the text so far is kept
                raise StreamError(
                    "a stream event is JSON nested too deep to parse: "
                    f"{body_snippet(event.data)!r}",
                    request_id=self.request_id,
                    partial_text=self.text,
                ) from None
            raise self._invalid("is not JSON", event.data) from exc
        # An error event is an object with "error" (or any event named "error"); the check is
        # inline for the usual event, which is a dict without it.
        message = (
            None if type(data) is dict and "error" not in data else _stream_error_message(data)
        )
        if message is not None or event.event == "error":
            raise StreamError(
                f"the server sent an error event: {message or body_snippet(event.data)}",
                request_id=self.request_id,
                partial_text=self.text,
            )
        try:
            # The usual event's fields go to the assembler directly; any other event is
            # decoded into a StreamEvent first (the two ways give the same chunk).
            fields = self._text_event(data)
            decoded = self._decode(data) if fields is None else None
        except Exception as exc:
            raise self._invalid("has an unexpected shape", event.data) from exc
        if fields is not None:
            return self._assembler.feed_text(fields)
        assert decoded is not None
        return self._assembler.feed(decoded)

    async def final_response(self) -> ChatResponse:
        """Read the rest of the stream and return it assembled as a ``ChatResponse``."""
        async for _ in self:
            pass
        response = self._assembler.response()
        if response is None:
            raise StreamError("the stream had no events", request_id=self.request_id)
        return attrs.evolve(response, request_id=self.request_id)
