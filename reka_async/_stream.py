"""``AsyncChatStream``: the async chat stream over a byte source.

It opens the request through the transport (retrying while nothing has been yielded yet),
feeds the bytes to the sans-I/O ``SSEDecoder``, parses each event into a ``ChatChunk`` with
its ``delta``, and releases the connection as soon as the stream ends or the caller leaves
early. It never sees aiohttp: the transport hands it a ``StreamBody`` whose reads raise our
errors only.
"""

from __future__ import annotations

import collections
from types import TracebackType
from typing import TYPE_CHECKING, Any

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
from ._sse import ServerSentEvent, SSEDecoder
from ._wire import loads, parse_chunk

if TYPE_CHECKING:
    from ._http import RequestOptions, StreamBody, Transport

__all__ = ["AsyncChatStream"]


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
        self._resp: StreamBody | None = None
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
        # socket is synchronous, so nothing is scheduled on the loop.
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
                data = await resp.read()
                events = self._decoder.feed(data) if data else self._decoder.flush()
                for event in events:
                    self._handle(event)
            except APIConnectionError as error:  # the read broke: translated by the transport
                self._drop(reuse=False)
                if self._yielded or self._pending:
                    raise self._broken(error) from error.__cause__
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

    def _invalid(self, problem: str, data: str) -> APIResponseValidationError:
        return APIResponseValidationError(
            f"a stream event {problem}: {body_snippet(data)!r}",
            status_code=200,
            body=data,
            request_id=self.request_id,
        )

    def _handle(self, event: ServerSentEvent) -> None:
        if event.data == "[DONE]":
            return
        try:
            data = loads(event.data)
        except ValueError as exc:
            raise self._invalid("is not JSON", event.data) from exc
        message = _stream_error_message(data)
        if event.event == "error" or message is not None:
            raise StreamError(
                f"the server sent an error event: {message or body_snippet(event.data)}",
                request_id=self.request_id,
                partial_text=self._text,
            )
        try:
            chunk = parse_chunk(data, self._text)
        except Exception as exc:
            raise self._invalid("has an unexpected shape", event.data) from exc
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
