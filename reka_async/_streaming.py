"""Streaming: a sans-I/O server-sent-events decoder, and the async chat stream over it.

``SSEDecoder`` turns arbitrary byte splits into events (CRLF/CR/LF line ends, multi-line
``data:``, ``event:``/``id:``/``retry:`` fields, comments). ``AsyncChatStream`` opens the
request (retrying while nothing has been yielded yet), parses each event into a ``ChatChunk``,
computes ``delta`` from the cumulative content, and releases the connection as soon as the
stream ends or the caller leaves early.
"""

from __future__ import annotations

import collections
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from ._converter import loads, parse_chunk_after
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    StreamError,
    body_snippet,
)
from ._models import ChatChunk, ChatResponse, ChunkResponse, Message, MessageResponse, Usage
from ._transport import _TRANSLATED, translate_exception

if TYPE_CHECKING:
    from ._transport import RequestOptions, Transport

__all__ = ["AsyncChatStream", "SSEDecoder", "ServerSentEvent"]


@attrs.frozen(kw_only=True)
class ServerSentEvent:
    """One dispatched server-sent event."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental, sans-I/O SSE decoder following the WHATWG event-stream rules."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_retry")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode more bytes; return the events completed by them."""
        buf = self._buf + chunk if self._buf else chunk
        if not buf:
            return []
        lines = buf.splitlines(keepends=True)
        last = lines[-1]
        # An unterminated line, or one ending in a lone CR (its LF may be in the next chunk),
        # waits for more bytes.
        if last[-1:] == b"\r" or last[-1:] != b"\n":
            self._buf = last
            del lines[-1]
        else:
            self._buf = b""
        events: list[ServerSentEvent] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r\n"), events)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """Finish at end of input: the pending line, then any event not yet dispatched."""
        events: list[ServerSentEvent] = []
        if self._buf:
            self._line(self._buf.rstrip(b"\r\n"), events)
            self._buf = b""
        self._line(b"", events)
        return events

    def _line(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        if not raw:
            if self._data:
                events.append(
                    ServerSentEvent(
                        event=self._event or "message",
                        data="\n".join(self._data),
                        id=self._id,
                        retry=self._retry,
                    )
                )
            self._data = []
            self._event = ""
            return
        line = raw.decode("utf-8", "replace")
        if line[0] == ":":
            return
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)


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
        path: str,
        body: bytes,
        opts: RequestOptions,
    ) -> None:
        self._transport = transport
        self._path = path
        self._body = body
        self._opts = opts
        self._resp: aiohttp.ClientResponse | None = None
        self._decoder = SSEDecoder()
        self._pending: collections.deque[ChatChunk] = collections.deque()
        self._attempt = 0
        self._yielded = False
        self._finished = False
        self._truncated = False
        self._closed = False
        self._last: ChatChunk | None = None
        self._text = ""
        self.request_id: str | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._resp is not None else "new")
        return f"<AsyncChatStream {self._path} {state} chars={len(self._text)}>"

    @property
    def text(self) -> str:
        """The assembled text of the first response so far."""
        return self._text

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
        self._drop(reuse=self._finished)

    def __del__(self) -> None:
        # Reached when a caller breaks out of ``async for`` without ``async with``: closing the
        # socket is synchronous in aiohttp, so nothing is scheduled on the loop.
        resp = getattr(self, "_resp", None)
        if resp is not None and not resp.closed:
            resp.close()

    def _drop(self, *, reuse: bool) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            if reuse:
                resp.release()  # body fully read: the connection goes back to the pool
            else:
                resp.close()  # unread body: drop the connection rather than reuse it

    async def _ensure_open(self) -> None:
        while self._resp is None:
            if self._closed:
                raise RuntimeError("this stream is closed")
            try:
                self._resp = await self._transport.open_stream(
                    self._path, body=self._body, opts=self._opts
                )
                self.request_id = self._resp.headers.get("x-request-id")
            except (APIConnectionError, APIStatusError) as error:
                await self._retry_or_raise(error)

    async def _retry_or_raise(self, error: APIError) -> None:
        await self._transport.wait_before_retry(
            "POST", self._path, error, self._attempt, self._opts
        )
        self._attempt += 1
        self._decoder = SSEDecoder()

    async def __anext__(self) -> ChatChunk:
        while True:
            if self._pending:
                self._yielded = True
                return self._pending.popleft()
            if self._finished or self._closed:
                if self._truncated:
                    self._truncated = False
                    raise StreamError(
                        "the stream ended before its final event (no finish_reason)",
                        request_id=self.request_id,
                        partial_text=self._text,
                    )
                raise StopAsyncIteration
            await self._ensure_open()
            resp = self._resp
            assert resp is not None
            try:
                data = await resp.content.readany()
                events = self._decoder.feed(data) if data else self._decoder.flush()
                for event in events:
                    self._handle(event)
            except _TRANSLATED as exc:
                self._drop(reuse=False)
                error = translate_exception(exc, f"POST {self._path} (stream)")
                if self._yielded or self._pending:
                    raise self._broken(error) from exc
                await self._retry_or_raise(error)
                continue
            except BaseException:
                self._drop(reuse=False)
                raise
            if not data:
                self._drop(reuse=True)
                self._finished = True
                self._truncated = self._last is None or self._last.finish_reason is None

    def _broken(self, error: APIError) -> APIError:
        if isinstance(error, APITimeoutError):
            return APITimeoutError(
                f"{error.message} after {len(self._text)} characters", request_id=self.request_id
            )
        return StreamError(
            f"the stream broke mid-way: {error.message}",
            request_id=self.request_id,
            partial_text=self._text,
        )

    def _handle(self, event: ServerSentEvent) -> None:
        if event.data == "[DONE]":
            return
        try:
            data = loads(event.data)
        except ValueError as exc:
            raise APIResponseValidationError(
                f"a stream event is not JSON: {body_snippet(event.data)!r}",
                status_code=200,
                body=event.data,
                request_id=self.request_id,
            ) from exc
        message = _stream_error_message(data)
        if event.event == "error" or message is not None:
            raise StreamError(
                f"the server sent an error event: {message or body_snippet(event.data)}",
                request_id=self.request_id,
                partial_text=self._text,
            )
        try:
            chunk = parse_chunk_after(data, self._text)
        except Exception as exc:
            raise APIResponseValidationError(
                f"a stream event has an unexpected shape: {body_snippet(event.data)!r}",
                status_code=200,
                body=event.data,
                request_id=self.request_id,
            ) from exc
        self._text = chunk.text
        self._last = chunk
        self._pending.append(chunk)

    async def final_response(self) -> ChatResponse:
        """Read the rest of the stream and return it assembled as a ``ChatResponse``."""
        async for _ in self:
            pass
        last = self._last
        if last is None:
            raise StreamError("the stream had no events", request_id=self.request_id)
        return ChatResponse(
            id=last.id,
            model=last.model,
            responses=[_as_message_response(r) for r in last.responses],
            usage=last.usage or Usage(),
        )


def _as_message_response(item: ChunkResponse) -> MessageResponse:
    chunk = item.chunk
    return MessageResponse(
        message=Message(role=chunk.role, content=chunk.content, tool_calls=chunk.tool_calls),
        finish_reason=item.finish_reason,
    )
