"""``LoopThread``: an event loop in a background thread, and blocking calls into it.

This is all the sync facade knows of threads. The loop runs in a daemon thread of its own;
``close()`` exits what ``enter`` entered (in the loop), stops the loop and joins the thread.

A loop thread can outlive its use in three ways; none of them may hang the process:

* collected unclosed (a ``Client`` dropped without ``close()``): the finalizer only asks the
  loop to stop, with one ``call_soon_threadsafe``, and returns; the loop exits what was
  entered (the ``AsyncClient`` closes its pool) and its thread ends by itself. A finalizer
  never waits for the loop: it may run in the loop thread itself, or at interpreter shutdown
  when that thread can no longer run. (anyio's ``start_blocking_portal``, used before, ends
  the loop in a context manager that joins the thread; collected or left open at exit, that
  join waited forever.)
* still open at interpreter exit (a module-level ``Client``): an ``atexit`` hook closes it.
  It runs after the interpreter has joined the program's own threads, so one still using the
  client finishes first, and while the loop thread, a daemon, still runs. It warns with a
  ``ResourceWarning`` and waits at most ``_EXIT_WAIT_S`` for the loop.
* inherited by a child of ``fork()``: the child has no loop thread (fork copies only the
  calling thread), so a call would wait forever. An at-fork hook marks every loop thread as
  forked in the child (with fresh locks, as one may have been held at the fork): calls raise
  ``RuntimeError`` at once, closing does nothing, and nothing of the parent's loop is touched.

The per-call path does not use ``asyncio.run_coroutine_threadsafe``, which chains an
``asyncio`` future to a ``concurrent.futures.Future`` and its condition variable: a call is
handed to the loop with one ``call_soon_threadsafe`` and its caller is woken from inside the
task's last step, through a per-thread socket pair (``_calls.py``; its ``Waker`` says why a
socket and not a lock). What it buys, in the paired benchmark (``python -m benchmarks.run
--only paired --clients reka_async_sync``, time per call against ``AsyncClient``): median
1.22x, where ``run_coroutine_threadsafe(...).result()`` measured 1.36x in runs alternating
with it (target: 1.3x or less).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, TypeVar

from ._calls import Call, thread_waker

__all__ = ["LoopThread"]

T = TypeVar("T")

#: The longest the exit hook waits for a loop to shut down (closing a pool takes
#: milliseconds; a loop stuck in user code must not hold the interpreter's exit).
_EXIT_WAIT_S: Final = 5.0

#: Every open loop thread of this process, for the exit and fork hooks.
_live: weakref.WeakSet[LoopThread] = weakref.WeakSet()


class _LoopSide:
    """What the loop thread itself holds: its loop, the event that stops it, the managers
    entered through ``LoopThread.enter`` and the background tasks. Never the ``LoopThread``,
    so that it can be collected (and its finalizer run) while the loop runs."""

    __slots__ = ("background", "loop", "stack", "stop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        self.stack = contextlib.AsyncExitStack()
        self.background: set[asyncio.Task[Any]] = set()


class LoopThread:
    """An event loop in a background thread, as seen by the threads that call into it.

    Shared by the ``Client`` and the objects it hands out (streams, batch iterators), which
    keeps them free of reference cycles back to the ``Client``.

    Args:
        name: the loop thread's name.
    """

    __slots__ = (
        "__weakref__",
        "_close_lock",
        "_closed",
        "_errors",
        "_forked",
        "_inflight",
        "_lock",
        "_loop",
        "_side",
        "_thread",
        "thread_id",
    )

    def __init__(self, *, name: str) -> None:
        started: concurrent.futures.Future[_LoopSide] = concurrent.futures.Future()
        errors: list[BaseException] = []
        thread = threading.Thread(target=_serve, args=(started, errors), name=name, daemon=True)
        thread.start()
        side = started.result()
        self._side = side
        self._loop = side.loop
        self._thread = thread
        self._errors = errors  # what exiting the entered managers raised, for close()
        #: The loop thread's ``threading.get_ident()``.
        self.thread_id: Final[int] = thread.ident or 0
        self._lock = threading.Lock()  # guards _closed and _inflight
        self._close_lock = threading.Lock()  # a second close() returns once the first is done
        self._closed = False
        self._forked = False
        self._inflight: set[Call] = set()
        _live.add(self)

    def __repr__(self) -> str:
        state = "forked" if self._forked else "closed" if self._closed else "open"
        return f"<LoopThread {state}, {len(self._inflight)} call(s) in flight>"

    @property
    def closed(self) -> bool:
        """True once ``close()`` has begun (or in a child of ``fork()``): calls are refused."""
        return self._closed

    @property
    def in_flight(self) -> int:
        """How many ``run`` calls are waiting for the loop right now."""
        return len(self._inflight)

    def check_open(self) -> None:
        """Raise the ``RuntimeError`` that ``run`` would raise now, if it would.

        Raises:
            RuntimeError: closed, or inherited by a child of ``fork()``.
        """
        if self._closed:
            raise RuntimeError(self._refusal())

    def _refusal(self) -> str:
        if self._forked:
            return (
                "this Client was created before fork() and cannot be used in the child "
                f"process {os.getpid()} (its event loop thread stayed in the parent): create a "
                "new Client in the child, or use the 'spawn' start method"
            )
        return "this Client is closed; create a new one"

    def enter(self, factory: Callable[[], AbstractAsyncContextManager[T]]) -> T:
        """Build an async context manager in the loop thread and enter it there.

        It is exited in the loop when the loop stops: by ``close()``, or when this object is
        collected unclosed.

        Returns:
            What its ``__aenter__`` returned.
        """
        return self.run(_enter(self._side.stack, factory))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result; Ctrl-C cancels it.

        Raises:
            RuntimeError: closed, inherited by a child of ``fork()``, called from the loop
                thread itself, or closed while waiting.
            concurrent.futures.CancelledError: the call was cancelled some other way.
            BaseException: whatever ``coro`` raised, or the interruption that cancelled it.
        """
        call = Call(thread_waker())
        with self._lock:
            if self._closed:
                coro.close()
                raise RuntimeError(self._refusal())
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
            self._loop.call_soon_threadsafe(_start_task, self._side, coro)
        except RuntimeError:  # the loop is already gone
            coro.close()

    def close(self) -> None:
        """Refuse new calls, cancel those in flight (they raise ``RuntimeError``), exit what
        ``enter`` entered, stop the loop and join its thread (idempotent). In a child of
        ``fork()`` it only refuses new calls: the loop belongs to the parent.

        Raises:
            RuntimeError: called from the loop thread itself.
            BaseException: what exiting an entered context manager raised.
        """
        self._shutdown(timeout=None)

    def _shutdown(self, *, timeout: float | None) -> None:
        if threading.get_ident() == self.thread_id and not self._forked:
            raise RuntimeError("Client.close() cannot be called from its own event loop thread")
        with self._close_lock:
            with self._lock:
                self._closed = True
                pending = list(self._inflight)
            if self._forked:
                return
            for call in pending:
                with contextlib.suppress(RuntimeError):  # the loop is already gone
                    self._loop.call_soon_threadsafe(call.cancel)
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._side.stop.set)
            self._thread.join(timeout)
            _live.discard(self)
        if self._errors:
            raise self._errors.pop()

    def __del__(self) -> None:
        # Only ask the loop to stop, never wait for it (see the module docstring).
        if getattr(self, "_closed", True) or self._forked:
            return
        self._closed = True
        side = self._side
        with contextlib.suppress(RuntimeError):  # the loop is already gone
            side.loop.call_soon_threadsafe(side.stop.set)


def _serve(started: concurrent.futures.Future[_LoopSide], errors: list[BaseException]) -> None:
    """The loop thread: run the loop until stopped, then end it the way ``asyncio.run`` does,
    except that the default executor is not joined (a new thread cannot be started to join
    it at interpreter exit, and ``loop.close()`` already shuts it down without waiting)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_main(started))
    except BaseException as exc:
        if not started.done():
            started.set_exception(exc)
        else:
            errors.append(exc)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


async def _main(started: concurrent.futures.Future[_LoopSide]) -> None:
    side = _LoopSide()
    async with side.stack:
        started.set_result(side)
        await side.stop.wait()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception in a task left when the loop stopped",
                    "exception": task.exception(),
                    "task": task,
                }
            )


async def _enter(
    stack: contextlib.AsyncExitStack, factory: Callable[[], AbstractAsyncContextManager[T]]
) -> T:
    return await stack.enter_async_context(factory())


def _start_task(side: _LoopSide, coro: Coroutine[Any, Any, Any]) -> None:
    # In the loop thread. The loop keeps only weak references to tasks: hold this one.
    task = side.loop.create_task(coro)
    side.background.add(task)
    task.add_done_callback(side.background.discard)


def _close_at_exit() -> None:
    """Close every loop thread left open when the interpreter exits (see the docstring)."""
    leftover = [bridge for bridge in list(_live) if not bridge.closed]
    for bridge in leftover:
        with contextlib.suppress(Exception):  # nothing can handle it now; close the others
            bridge._shutdown(timeout=_EXIT_WAIT_S)
    for _ in leftover:
        warnings.warn(
            "a reka_async Client was never closed; it was closed at interpreter exit. Use "
            "'with Client() as client:' or call 'client.close()'",
            ResourceWarning,
            stacklevel=1,
        )


def _after_fork_in_child() -> None:
    for bridge in list(_live):
        bridge._lock = threading.Lock()
        bridge._close_lock = threading.Lock()
        bridge._inflight = set()
        bridge._forked = True
        bridge._closed = True


atexit.register(_close_at_exit)
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
