"""Input lines from a file descriptor, read by a daemon thread so the loop never blocks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator
from typing import Final

__all__ = ["read_lines"]

_CHUNK_BYTES: Final = 256 * 1024


class _ReaderStopped(Exception):
    pass


async def read_lines(fd: int) -> AsyncGenerator[list[bytes], None]:
    """The lines read from file descriptor ``fd`` (without their ``\\n``), in small batches.

    A daemon thread does the blocking reads (``os.read``: whatever is available, so a slow
    pipe is not held back until a buffer fills, and no buffer lock is held that could trouble
    interpreter shutdown), handing batches over through a small queue: the event loop never
    blocks on input, memory stays bounded, and a reader stuck on an idle stdin cannot keep the
    process alive.

    The thread reads its own duplicate of ``fd`` and closes it when it ends: the caller may
    close ``fd`` as soon as this generator is closed, while the thread is still between two
    reads, and the number may then be reused by the next ``open`` (a resume's input, in the
    same process). Reading the caller's number there read the *next* file's lines into a
    generator nobody consumed any more: a whole resume found its input empty and ended "done".
    The thread also checks the stop flag before every read.
    """
    loop = asyncio.get_running_loop()
    own = os.dup(fd)
    queue: asyncio.Queue[list[bytes] | BaseException | None] = asyncio.Queue(maxsize=4)
    stop = threading.Event()

    def put(item: list[bytes] | BaseException | None) -> None:
        if stop.is_set():
            raise _ReaderStopped
        coro = queue.put(item)
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop is gone
            coro.close()
            raise _ReaderStopped from None
        try:
            fut.result()
        except BaseException:  # cancelled at loop shutdown
            raise _ReaderStopped from None

    def reader() -> None:
        try:
            tail = b""
            while not stop.is_set():
                data = os.read(own, _CHUNK_BYTES)
                if not data:
                    if tail:
                        put([tail])
                    put(None)
                    return
                lines = (tail + data).split(b"\n") if tail else data.split(b"\n")
                tail = lines.pop()
                if lines:
                    put(lines)
        except _ReaderStopped:
            return
        except BaseException as exc:  # hand any failure to the consumer; never lose it
            with contextlib.suppress(_ReaderStopped):
                put(exc)
        finally:
            os.close(own)

    threading.Thread(target=reader, name="reka-async-input", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not queue.empty():  # let a reader blocked on a full queue finish its put
            queue.get_nowait()
