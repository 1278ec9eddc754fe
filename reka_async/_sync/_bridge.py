"""``LoopThread``: an event loop in a background thread, and blocking calls into it.

This is all the sync facade knows of threads. anyio's blocking portal owns the loop's lifetime:
it starts the thread, and closing it stops the loop and joins the thread. Async context
managers entered through ``enter`` live in that loop and are exited before it stops.

The per-call path does not use ``BlockingPortal.call``, which costs two thread round trips (it
first waits for the loop to accept the task, then for the result), nor
``asyncio.run_coroutine_threadsafe``, which chains an ``asyncio`` future to a
``concurrent.futures.Future`` and its condition variable: a call is handed to the loop with one
``call_soon_threadsafe`` and its caller is woken from inside the task's last step, through a
per-thread socket pair (see ``_Waker`` for why a socket and not a lock). What it buys, in the
paired benchmark (``python -m benchmarks.run --only paired --clients reka_async_sync``, time
per call against ``AsyncClient``): median 1.22x, where ``run_coroutine_threadsafe(...).result()``
measured 1.36x in runs alternating with it (target: 1.3x or less).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, TypeVar

from anyio.from_thread import start_blocking_portal

__all__ = ["LoopThread"]

T = TypeVar("T")

#: How often a waiting caller wakes up, so that a KeyboardInterrupt delivered without a real
#: signal (``_thread.interrupt_main()``, Windows consoles) is noticed while a call is blocked.
_POLL_S: Final = 0.1


class LoopThread:
    """An event loop in a background thread, as seen by the threads that call into it.

    Shared by the ``Client`` and the objects it hands out (streams, batch iterators), which
    keeps them free of reference cycles back to the ``Client``.

    Args:
        name: the loop thread's name.
    """

    __slots__ = (
        "_background",
        "_close_lock",
        "_closed",
        "_inflight",
        "_lock",
        "_loop",
        "_portal",
        "_stack",
        "thread_id",
    )

    def __init__(self, *, name: str) -> None:
        stack = contextlib.ExitStack()
        try:
            portal = stack.enter_context(start_blocking_portal(name=name))
            loop, thread_id = portal.call(_loop_identity)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        self._portal = portal
        self._loop = loop
        #: The loop thread's ``threading.get_ident()``.
        self.thread_id: Final[int] = thread_id
        self._lock = threading.Lock()  # guards _closed and _inflight
        self._close_lock = threading.Lock()  # a second close() returns once the first is done
        self._closed = False
        self._inflight: set[_Call] = set()
        self._background: set[asyncio.Task[Any]] = set()  # touched in the loop thread only

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<LoopThread {state}, {len(self._inflight)} call(s) in flight>"

    @property
    def closed(self) -> bool:
        """True once ``close()`` has begun: new calls are refused."""
        return self._closed

    @property
    def in_flight(self) -> int:
        """How many ``run`` calls are waiting for the loop right now."""
        return len(self._inflight)

    def enter(self, factory: Callable[[], AbstractAsyncContextManager[T]]) -> T:
        """Build an async context manager in the loop thread and enter it there.

        It is exited by ``close()``, or cancelled and exited if this object is collected
        unclosed (the portal stops then).

        Returns:
            What its ``__aenter__`` returned.
        """
        manager = self._portal.call(factory)
        return self._stack.enter_context(self._portal.wrap_async_context_manager(manager))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result; Ctrl-C cancels it.

        Raises:
            RuntimeError: closed, called from the loop thread itself, or closed while waiting.
            concurrent.futures.CancelledError: the call was cancelled some other way.
            BaseException: whatever ``coro`` raised, or the interruption that cancelled it.
        """
        call = _Call(_thread_waker())
        with self._lock:
            if self._closed:
                coro.close()
                raise RuntimeError("this Client is closed; create a new one")
            if threading.get_ident() == self.thread_id:
                coro.close()
                raise RuntimeError(
                    "the blocking Client cannot be called from its own event loop thread "
                    "(e.g. inside a batch on_result hook); use an AsyncClient there"
                )
            self._loop.call_soon_threadsafe(call.start, self._loop, coro)
            self._inflight.add(call)
        try:
            call.wait(self._loop)
        finally:
            with self._lock:
                self._inflight.discard(call)
        try:
            return call.outcome()  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            if self._closed:
                raise RuntimeError("the Client was closed while this call was running") from None
            raise concurrent.futures.CancelledError() from None

    def start_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` on the loop without waiting (cleanup from ``__del__``); once closed,
        ``coro`` is closed unrun."""
        if self._closed:
            coro.close()
            return
        try:
            self._loop.call_soon_threadsafe(self._start_task, coro)
        except RuntimeError:  # the loop is already gone
            coro.close()

    def _start_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        # In the loop thread. The loop keeps only weak references to tasks: hold this one.
        task = self._loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def close(self) -> None:
        """Refuse new calls, cancel those in flight (they raise ``RuntimeError``), exit what
        ``enter`` entered, stop the loop and join its thread (idempotent).

        Raises:
            RuntimeError: called from the loop thread itself.
        """
        if threading.get_ident() == self.thread_id:
            raise RuntimeError("Client.close() cannot be called from its own event loop thread")
        with self._close_lock:
            with self._lock:
                self._closed = True
                pending = list(self._inflight)
            for call in pending:
                with contextlib.suppress(RuntimeError):  # the loop is already gone
                    self._loop.call_soon_threadsafe(call.cancel)
            self._stack.close()


def _loop_identity() -> tuple[asyncio.AbstractEventLoop, int]:
    return asyncio.get_running_loop(), threading.get_ident()


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

    The caller is woken from inside the task's last step rather than from a done callback,
    which would cost the loop thread one more iteration before the caller can go on.
    """

    __slots__ = ("cancelled", "error", "finished", "result", "task", "waker")

    def __init__(self, waker: _Waker) -> None:
        self.waker = waker  # held, not just its sockets: they stay open while a call may write
        self.task: asyncio.Task[Any] | None = None  # set while the coroutine runs
        self.cancelled = False
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None

    def start(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> None:
        """In the loop thread: run ``coro`` in a task, unless cancelled before its first step."""
        loop.create_task(self._run(coro))

    async def _run(self, coro: Coroutine[Any, Any, Any]) -> None:
        # Cancelling the task itself before this first step would skip the ``finally`` and
        # leave the caller waiting: ``cancel`` only flags a call whose task has not begun.
        try:
            if self.cancelled:
                coro.close()
                raise asyncio.CancelledError
            self.task = asyncio.current_task()
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
        """In the loop thread: cancel the running coroutine, or stop it from starting."""
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def wait(self, loop: asyncio.AbstractEventLoop) -> None:
        """In the caller's thread: wait until finished; on any interruption (KeyboardInterrupt...)
        cancel the call and re-raise, which abandons the request in flight and closes its
        connection.

        Wakes every ``_POLL_S`` so that an interrupt delivered without a real signal is noticed.
        A byte left by an earlier, interrupted call on this thread only costs one more look at
        ``finished``.
        """
        reader = self.waker.reader
        try:
            while not self.finished:
                with contextlib.suppress(TimeoutError):
                    reader.recv(64)
        except BaseException:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.cancel)
            raise

    def outcome(self) -> Any:
        """In the caller's thread, once finished: the result, or raise the error."""
        if self.error is not None:
            try:
                raise self.error
            finally:
                self.error = None  # no reference cycle through the traceback
        return self.result
