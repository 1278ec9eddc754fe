"""A blocking call into the loop thread: the coroutine handed over (``Call``) and the
per-thread socket pair its caller waits on (``Waker``), for ``_bridge.LoopThread``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from typing import Any, Final

__all__ = ["POLL_S", "Call", "Waker", "thread_waker"]

#: How often a waiting caller wakes up, so that a KeyboardInterrupt delivered without a real
#: signal (``_thread.interrupt_main()``, Windows consoles) is noticed while a call is blocked.
POLL_S: Final = 0.1


class Waker:
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
        self.reader = ThreadSocket(fileno=reader.detach())
        self.writer = ThreadSocket(fileno=writer.detach())
        self.reader.settimeout(POLL_S)


class ThreadSocket(socket.socket):
    """A wake-up socket: it lives as long as its thread's ``Waker`` and closes itself when
    collected, in whatever order the collector finalises the two (no ResourceWarning)."""

    __slots__ = ()

    def __del__(self) -> None:
        self.close()


_wakers = threading.local()


def thread_waker() -> Waker:
    waker: Waker | None = getattr(_wakers, "waker", None)
    if waker is None:
        waker = _wakers.waker = Waker()
    return waker


class Call:
    """One coroutine handed to the loop thread, its outcome, and how its caller is woken.

    The caller is woken from inside the task's last step rather than from a done callback,
    which would cost the loop thread one more iteration before the caller can go on.
    """

    __slots__ = ("cancelled", "error", "finished", "result", "task", "waker")

    def __init__(self, waker: Waker) -> None:
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

        Wakes every ``POLL_S`` so that an interrupt delivered without a real signal is noticed.
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
