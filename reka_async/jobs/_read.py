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
    """
    loop = asyncio.get_running_loop()
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
            while True:
                data = os.read(fd, _CHUNK_BYTES)
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
