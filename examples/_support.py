"""Shared plumbing for the examples: ``--mock`` runs them against the embedded mock server.

Without ``--mock`` the examples talk to the real API and need ``REKA_API_KEY`` in the environment.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Iterator

from reka_async.testing import MockRekaServer


def parse_args(description: str) -> argparse.Namespace:
    """Parse the one option every example takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--mock",
        action="store_true",
        help="run against the embedded mock server (no key, no network)",
    )
    return parser.parse_args()


@contextlib.asynccontextmanager
async def connection(args: argparse.Namespace) -> AsyncIterator[dict[str, str]]:
    """Yield AsyncClient keyword arguments: the mock's, or none (REKA_API_KEY is used)."""
    if not args.mock:
        yield {}
        return
    async with MockRekaServer(api_key=None) as server:
        yield {"api_key": "mock-key", "base_url": server.base_url}


@contextlib.contextmanager
def sync_connection(args: argparse.Namespace) -> Iterator[dict[str, str]]:
    """The same for synchronous code: the mock runs on its own thread."""
    if not args.mock:
        yield {}
        return
    with MockRekaServer.in_thread(api_key=None) as server:
        yield {"api_key": "mock-key", "base_url": server.base_url}
