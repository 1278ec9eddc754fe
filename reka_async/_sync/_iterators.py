"""Blocking iterators over the async ones: ``ChatStream`` and ``BatchResultIterator``.

Each item is one ``LoopThread.run`` of the async iterator's ``__anext__``; closing (or
collecting) the blocking side closes the async side in its own loop.
"""

from __future__ import annotations

from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from .._models import ChatChunk, ChatResponse
from .._stream import AsyncChatStream
from ..batch import BatchResult, BatchStats, BatchStream
from ._bridge import LoopThread

__all__ = ["BatchResultIterator", "ChatStream"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class _AsyncSource(Protocol[T_co]):
    def __anext__(self) -> Coroutine[Any, Any, T_co]: ...
    def aclose(self) -> Coroutine[Any, Any, None]: ...


_B = TypeVar("_B", bound="_BlockingIterator[Any]")


class _BlockingIterator(Generic[T]):
    """Drive an async iterator from blocking code, one item per round trip to the loop.

    Leaving a ``with`` block (or ``close()``) closes the async side on its own loop; a
    forgotten iterator is handed to the loop to close when it is collected.
    """

    __slots__ = ("_closed", "_loop", "_source")

    def __init__(self, loop: LoopThread, source: _AsyncSource[T]) -> None:
        self._loop = loop
        self._source = source
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._source!r}>"

    def __iter__(self: _B) -> _B:
        return self

    def __next__(self) -> T:
        try:
            return self._loop.run(self._source.__anext__())
        except StopAsyncIteration:
            self._closed = True
            raise StopIteration from None

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop early: close the async side and wait until it has stopped (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if not self._loop.closed:
            self._loop.run(self._source.aclose())

    def __del__(self) -> None:
        # The async side must be closed in its own loop: hand it over rather than touching
        # its sockets or tasks from this thread.
        if not getattr(self, "_closed", True):
            self._loop.start_background(self._source.aclose())


class ChatStream(_BlockingIterator[ChatChunk]):
    """A blocking iterator of ``ChatChunk`` for one streamed chat; also a context manager.

    Returned by ``Client.chat.create_stream()``. Leaving a ``with`` block, ``close()``, or
    dropping the iterator releases the connection.
    """

    __slots__ = ("_stream",)

    def __init__(self, loop: LoopThread, stream: AsyncChatStream) -> None:
        super().__init__(loop, stream)
        self._stream = stream

    @property
    def text(self) -> str:
        """The assembled text of the first response so far."""
        return self._stream.text

    @property
    def request_id(self) -> str | None:
        """The server's ``x-request-id`` once the stream is open."""
        return self._stream.request_id

    def final_response(self) -> ChatResponse:
        """Read the rest of the stream and return it assembled as a ``ChatResponse``.

        Raises:
            StreamError: the stream broke, or had no events.
        """
        response = self._loop.run(self._stream.final_response())
        self._closed = True
        return response


class BatchResultIterator(_BlockingIterator[BatchResult]):
    """A blocking iterator of ``BatchResult`` as they complete; also a context manager.

    Returned by ``Client.batch_stream()``. Leaving a ``with`` block early cancels the requests
    in flight and waits for them to stop. ``stats`` holds the live ``BatchStats``.
    """

    __slots__ = ("_stream",)

    def __init__(self, loop: LoopThread, stream: BatchStream) -> None:
        super().__init__(loop, stream)
        self._stream = stream

    @property
    def stats(self) -> BatchStats:
        """The live statistics of this run."""
        return self._stream.stats
