"""Shared plumbing for the examples: ``--mock`` runs them against the embedded mock server.

Without ``--mock`` the examples talk to the real API and need ``REKA_API_KEY`` in the environment.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from reka_async.testing import MockRekaServer


def parse_args(description: str) -> argparse.Namespace:
    """Parse the options every example takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--mock",
        action="store_true",
        help="run against the embedded mock server (no key, no network)",
    )
    parser.add_argument(
        "--api",
        choices=("native", "openai"),
        default="native",
        help="the API dialect: POST /chat or the OpenAI-compatible /chat/completions",
    )
    return parser.parse_args()


@contextlib.asynccontextmanager
async def connection(args: argparse.Namespace) -> AsyncIterator[dict[str, Any]]:
    """Yield AsyncClient keyword arguments: the mock's, or only the dialect (REKA_API_KEY)."""
    if not args.mock:
        yield {"api": args.api}
        return
    async with MockRekaServer(api_key=None) as server:
        yield {"api_key": "mock-key", "base_url": server.base_url, "api": args.api}


@contextlib.contextmanager
def sync_connection(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """The same for synchronous code: the mock runs on its own thread."""
    if not args.mock:
        yield {"api": args.api}
        return
    with MockRekaServer.in_thread(api_key=None) as server:
        yield {"api_key": "mock-key", "base_url": server.base_url, "api": args.api}
