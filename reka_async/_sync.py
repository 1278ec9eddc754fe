"""``Client``: the blocking facade over ``AsyncClient``.

One event loop runs in a background thread, started and stopped with anyio's blocking portal;
the ``AsyncClient`` lives in that loop and does all the work. The facade only hands coroutines
to the loop and waits for them, so sync and async share one implementation.

The per-call path is deliberately thin: ``asyncio.run_coroutine_threadsafe`` into the portal's
loop costs one thread round trip, where ``BlockingPortal.call`` costs two (it first waits for the
loop to accept the task, then for the result). The portal still owns the loop's lifetime: it
starts the thread, and leaving it stops the loop and joins the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import warnings
from collections.abc import AsyncIterable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from anyio.from_thread import start_blocking_portal

from ._client import AsyncClient
from ._http import TimeoutLike
from ._models import ChatChunk, ChatResponse, Model
from ._stream import AsyncChatStream
from ._types import NOT_GIVEN, NotGiven
from .batch import BatchResult, BatchRunner, BatchStats, BatchStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._client import ClientOptions
    from ._types import ChatArgs
    from .batch import BatchOptions

__all__ = ["BatchResultIterator", "ChatStream", "Client"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: How often a waiting caller wakes up, so that a KeyboardInterrupt delivered without a real
#: signal (``_thread.interrupt_main()``, Windows consoles) is noticed while a call is blocked.
_POLL_S: Final = 0.1
_THREAD_NAME: Final = "reka-async-portal"


class _Waker:
    """A caller thread's wake-up line: a socket pair the loop thread writes one byte to.

    Why not a lock: ``lock.release()`` in the loop thread wakes the caller while the loop
    thread still holds the GIL, so the caller runs, finds the GIL taken and sleeps again, and
    the loop thread must wake it a second time: about five context switches per call instead
    of two (measured with ``getrusage``; each costs tens of µs on a small VM). ``send`` on a
    socket releases the GIL for the system call, so the woken caller can run at once.
    A socket pair, not a pipe, so that waiting with a timeout works on every platform.
    """

    __slots__ = ("reader", "writer")

    def __init__(self) -> None:
        reader, writer = socket.socketpair()
        self.reader = _ThreadSocket(fileno=reader.detach())
        self.writer = _ThreadSocket(fileno=writer.detach())
        self.reader.settimeout(_POLL_S)


class _ThreadSocket(socket.socket):
    """A wake-up socket: it lives as long as its thread's ``_Waker`` and closes itself when
    collected, in whatever order the collector finalises the two (no ResourceWarning)."""

    __slots__ = ()

    def __del__(self) -> None:
        self.close()


_wakers = threading.local()


def _thread_waker() -> _Waker:
    waker: _Waker | None = getattr(_wakers, "waker", None)
    if waker is None:
        waker = _wakers.waker = _Waker()
    return waker


class _Call:
    """One coroutine handed to the loop thread, its outcome, and how its caller is woken.

    Lighter than ``asyncio.run_coroutine_threadsafe``, which chains an ``asyncio`` future to a
    ``concurrent.futures.Future`` and its condition variable. The caller is woken from inside
    the task's last step rather than from a done callback, which would cost the loop thread one
    more iteration before the caller can go on (see ``_Waker`` for the wake-up itself).
    """

    __slots__ = ("cancelled", "error", "finished", "result", "task", "waker")

    def __init__(self, waker: _Waker) -> None:
        self.waker = waker  # held, not just its sockets: they stay open while a call may write
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None

    def start(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> None:
        """In the loop thread: run ``coro`` as a task (unless cancelled first)."""
        if self.cancelled:
            coro.close()
            self.error = asyncio.CancelledError()
            self.finish()
            return
        self.task = loop.create_task(self._run(coro))

    async def _run(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            self.result = await coro
        except BaseException as exc:  # handed to the caller, who re-raises it
            self.error = exc
        finally:
            self.task = None  # no cycle through the task (it holds this call's coroutine)
            self.finish()

    def finish(self) -> None:
        """In the loop thread: the call is over; wake the caller."""
        self.finished = True
        with contextlib.suppress(OSError):  # the caller is gone; nobody to wake
            self.waker.writer.send(b"\0")

    def cancel(self) -> None:
        """In the loop thread: cancel the task, or stop it from starting."""
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def outcome(self) -> Any:
        """In the caller's thread, once finished: the result, or raise the error."""
        if self.error is not None:
            try:
                raise self.error
            finally:
                self.error = None  # no reference cycle through the traceback
        return self.result


class _Loop:
    """The loop thread as seen by callers: submits coroutines and waits for them.

    Shared by the client and the objects it hands out (streams, batch iterators), which keeps
    them free of reference cycles back to the ``Client``.
    """

    __slots__ = ("background", "closed", "inflight", "lock", "loop", "thread_id")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        self.loop = loop
        self.thread_id = thread_id
        self.lock = threading.Lock()
        self.closed = False
        self.inflight: set[_Call] = set()
        self.background: set[asyncio.Task[Any]] = set()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result; Ctrl-C cancels it."""
        call = _Call(_thread_waker())
        with self.lock:
            if self.closed:
                coro.close()
                raise RuntimeError("this Client is closed; create a new one")
            if threading.get_ident() == self.thread_id:
                coro.close()
                raise RuntimeError(
                    "the blocking Client cannot be called from its own event loop thread "
                    "(e.g. inside a batch on_result hook); use an AsyncClient there"
                )
            self.loop.call_soon_threadsafe(call.start, self.loop, coro)
            self.inflight.add(call)
        try:
            _wait(call, self.loop)
        finally:
            with self.lock:
                self.inflight.discard(call)
        try:
            return call.outcome()  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            if self.closed:
                raise RuntimeError("the Client was closed while this call was running") from None
            raise concurrent.futures.CancelledError() from None

    def close_soon(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` on the loop without waiting (cleanup from ``__del__``)."""
        if self.closed:
            coro.close()
            return
        try:
            self.loop.call_soon_threadsafe(self._start_background, coro)
        except RuntimeError:  # the loop is already gone
            coro.close()

    def _start_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        # In the loop thread. The loop keeps only weak references to tasks: hold this one.
        task = self.loop.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def shutdown(self) -> None:
        """Refuse new calls and cancel those in flight (idempotent)."""
        with self.lock:
            self.closed = True
            pending = list(self.inflight)
        for call in pending:
            with contextlib.suppress(RuntimeError):  # the loop is already gone
                self.loop.call_soon_threadsafe(call.cancel)


def _wait(call: _Call, loop: asyncio.AbstractEventLoop) -> None:
    """Wait until ``call`` is finished; on any interruption (KeyboardInterrupt...) cancel it and
    re-raise, which abandons the request in flight and closes its connection.

    Wakes every ``_POLL_S`` so that an interrupt delivered without a real signal is noticed.
    A byte left by an earlier, interrupted call on this thread only costs one more look at
    ``call.finished``.
    """
    reader = call.waker.reader
    try:
        while not call.finished:
            with contextlib.suppress(TimeoutError):
                reader.recv(64)
    except BaseException:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(call.cancel)
        raise


def _loop_identity() -> tuple[asyncio.AbstractEventLoop, int]:
    return asyncio.get_running_loop(), threading.get_ident()


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

    def __init__(self, loop: _Loop, source: _AsyncSource[T]) -> None:
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
            self._loop.close_soon(self._source.aclose())


class ChatStream(_BlockingIterator[ChatChunk]):
    """A blocking iterator of ``ChatChunk`` for one streamed chat; also a context manager.

    Returned by ``Client.chat.create_stream()``. Leaving a ``with`` block, ``close()``, or
    dropping the iterator releases the connection.
    """

    __slots__ = ("_stream",)

    def __init__(self, loop: _Loop, stream: AsyncChatStream) -> None:
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

    def __init__(self, loop: _Loop, stream: BatchStream) -> None:
        super().__init__(loop, stream)
        self._stream = stream

    @property
    def stats(self) -> BatchStats:
        """The live statistics of this run."""
        return self._stream.stats


class Chat:
    """``client.chat``: chat completions, plain and streamed (blocking)."""

    __slots__ = ("_chat", "_loop")

    def __init__(self, client: AsyncClient, loop: _Loop) -> None:
        self._chat = client.chat
        self._loop = loop

    def create(self, **args: Unpack[ChatArgs]) -> ChatResponse:
        """Generate a reply to a conversation (blocking).

        Args:
            **args: as in ``AsyncClient.chat.create``; every key is documented on
                ``reka_async.ChatArgs``.

        Returns:
            The ``ChatResponse``; ``response.text`` is the first answer's text.

        Raises:
            InvalidRequestError: an argument is invalid (nothing was sent).
            APIStatusError: the server answered with an error (a subclass per status).
            APIConnectionError: no complete answer (``APITimeoutError`` on a timeout).
            RuntimeError: the client is closed.
            KeyboardInterrupt: re-raised after cancelling the request in flight.
        """
        return self._loop.run(self._chat.create(**args))

    def create_stream(self, **args: Unpack[ChatArgs]) -> ChatStream:
        """Stream a reply as it is generated (blocking iterator).

        Takes the same arguments as ``create``. Use ``with client.chat.create_stream(...) as
        stream: for chunk in stream: print(chunk.delta, end="")``.

        Returns:
            A ``ChatStream``; the request starts on first iteration.

        Raises:
            InvalidRequestError: at once, when an argument is invalid.
            RuntimeError: the client is closed.
        """
        if self._loop.closed:
            raise RuntimeError("this Client is closed; create a new one")
        return ChatStream(self._loop, self._chat.create_stream(**args))


class Models:
    """``client.models``: the models this key may use (blocking)."""

    __slots__ = ("_loop", "_models")

    def __init__(self, client: AsyncClient, loop: _Loop) -> None:
        self._models = client.models
        self._loop = loop

    def list(
        self,
        *,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> list[Model]:
        """List the available models.

        Args:
            timeout: a ``Timeout``, total seconds, or ``None`` (this call only).
            max_retries: retries for this call (default: the client's).
            extra_headers: headers added to this request.

        Returns:
            ``Model`` entries; ``model.id`` is the name to pass as ``model=``.

        Raises:
            APIError: the request failed.
            RuntimeError: the client is closed.
        """
        return self._loop.run(
            self._models.list(timeout=timeout, max_retries=max_retries, extra_headers=extra_headers)
        )

    get = list  # the official SDK's name


class Client:
    """Blocking client for the Reka Chat API, for scripts, notebooks and threads.

    It runs the ``AsyncClient`` on an event loop in a background thread, so it works from
    plain code, from several threads at once (share one client), and from code that already
    runs an event loop (a Jupyter cell). Ctrl-C during a call cancels the request in flight.
    Use it as ``with Client() as client: ...`` or call ``client.close()``, which stops the loop
    and joins its thread.

    Args:
        api_key: the API key; default ``REKA_API_KEY`` from the environment.
        base_url: default ``REKA_BASE_URL``, else ``https://api.reka.ai/v1``.
        **options: as in ``AsyncClient`` (``max_retries``, ``timeout``, ``max_connections``,
            ``max_retry_wait``, ``retry_policy``, ``default_headers``,
            ``allow_insecure_http``), documented on ``reka_async.ClientOptions``.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
        ValueError: an option is invalid.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        def factory() -> AsyncClient:
            return AsyncClient(api_key, base_url, **options)

        # The portal owns the loop thread; the client is entered as an async context manager
        # in a task of that loop, so that stopping the portal (close(), or the portal being
        # collected with an unclosed Client) always closes the connection pool.
        stack = contextlib.ExitStack()
        try:
            portal = stack.enter_context(start_blocking_portal(name=_THREAD_NAME))
            client = portal.call(factory)
            stack.enter_context(portal.wrap_async_context_manager(client))
            loop, thread_id = portal.call(_loop_identity)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        self._close_lock = threading.Lock()
        self._async = client
        self._loop = _Loop(loop, thread_id)
        self.chat: Final = Chat(client, self._loop)
        self.models: Final = Models(client, self._loop)

    def __repr__(self) -> str:
        state = "closed" if self._loop.closed else "open"
        return f"<Client base_url={self.base_url!r} {state}>"

    @property
    def base_url(self) -> str:
        """The API base URL this client talks to."""
        return self._async.base_url

    @property
    def max_connections(self) -> int:
        """Size of the connection pool."""
        return self._async.max_connections

    @property
    def max_retries(self) -> int:
        """Default retries per request."""
        return self._async.max_retries

    @property
    def is_closed(self) -> bool:
        """True after ``close()``."""
        return self._loop.closed

    def batch(
        self, items: Iterable[Any] | AsyncIterable[Any], **options: Unpack[BatchOptions]
    ) -> list[BatchResult]:
        """Run many chat requests at bounded concurrency and return every result, in order.

        Items are prompt strings, message lists, dicts with ``messages`` or ``prompt`` (and
        optionally ``custom_id``, ``model`` and chat parameters), or ``ChatRequest`` models;
        they are read lazily. Each item ends as exactly one ``BatchResult`` (response or error).

        Args:
            items: the requests.
            **options: as in ``BatchRunner`` (``concurrency``, ``model``, ``rpm``, ``tpm``,
                ``adaptive``, ``fail_fast``, ``max_retries``, ``timeout``, ``on_result``, chat
                parameters, ...), documented on ``reka_async.BatchOptions``. ``on_result``
                runs in the client's loop thread, so it must be quick and must not call this
                client.

        Returns:
            One ``BatchResult`` per item, in input order.

        Raises:
            InvalidRequestError: an option is invalid.
            BatchAbortedError: out of credits; ``.results`` holds the items finished.
            RuntimeError: the client is closed.
        """
        return self._loop.run(_run_batch(self._async, items, options))

    def batch_stream(
        self,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        ordered: bool = False,
        **options: Unpack[BatchOptions],
    ) -> BatchResultIterator:
        """Like ``batch``, but yield results as they complete (memory stays bounded).

        Use ``with client.batch_stream(items) as results: for r in results: ...``; leaving
        the block early cancels the requests in flight.

        Args:
            items, **options: as in ``batch``.
            ordered: yield in input order (a bounded reorder window) instead of as completed.

        Returns:
            A ``BatchResultIterator`` of ``BatchResult``.

        Raises:
            InvalidRequestError: an option is invalid.
            BatchAbortedError: (while iterating) out of credits.
            RuntimeError: the client is closed.
        """
        stream = self._loop.run(_open_batch(self._async, items, options, ordered))
        return BatchResultIterator(self._loop, stream)

    def close(self) -> None:
        """Close the connection pool, stop the loop and join its thread (idempotent).

        Calls still in flight in other threads are cancelled and raise ``RuntimeError``.

        Raises:
            RuntimeError: called from the client's own loop thread.
        """
        loop = self._loop
        if threading.get_ident() == loop.thread_id:
            raise RuntimeError("Client.close() cannot be called from its own event loop thread")
        with self._close_lock:  # a second caller returns once the first has finished
            loop.shutdown()
            self._stack.close()  # closes the AsyncClient, then stops the loop, joins its thread

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.closed:
            # Only warn: the portal, collected with this object, stops the loop thread.
            warnings.warn(
                "Client was never closed; use 'with Client() as client:' or call 'client.close()'",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )


async def _run_batch(
    client: AsyncClient, items: Iterable[Any] | AsyncIterable[Any], options: BatchOptions
) -> list[BatchResult]:
    return await BatchRunner(client, **options).run(items)


async def _open_batch(
    client: AsyncClient,
    items: Iterable[Any] | AsyncIterable[Any],
    options: BatchOptions,
    ordered: bool,
) -> BatchStream:
    # Built inside the loop: the stream's queue, lock and semaphore belong to it.
    return BatchRunner(client, **options).stream(items, ordered=ordered)
