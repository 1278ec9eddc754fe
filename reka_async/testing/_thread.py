"""Running a `MockRekaServer` on its own event loop in a daemon thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._server import MockRekaServer


@contextlib.contextmanager
def serve_in_thread(
    cls: type[MockRekaServer], kwargs: Mapping[str, Any]
) -> Iterator[MockRekaServer]:
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    thread = threading.Thread(target=run, name="MockRekaServer", daemon=True)
    thread.start()
    try:

        async def create() -> MockRekaServer:
            server = cls(**kwargs)
            await server.start()
            return server

        server = asyncio.run_coroutine_threadsafe(create(), loop).result()
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
