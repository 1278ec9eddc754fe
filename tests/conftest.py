"""Shared fixtures: a clean environment, a fast retry policy, and the embedded mock server over
real sockets. (Tests that need no socket answer attempts in-process: ``tests/_seam.py``.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reka_async import AsyncClient, RetryPolicy
from reka_async.testing import MockRekaServer

API_KEY = "test-key"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on the developer's REKA_* variables."""
    monkeypatch.delenv("REKA_API_KEY", raising=False)
    monkeypatch.delenv("REKA_BASE_URL", raising=False)


#: Backoff in milliseconds; server-requested waits (``retry-after``) are still honoured.
FAST_POLICY = RetryPolicy(base=0.001, cap=0.01)


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    """A mock Reka API on a free loopback port, with short server-requested delays."""
    async with MockRekaServer(api_key=API_KEY, retry_after_s=0.05, slow_first_byte_s=5.0) as srv:
        yield srv


@pytest.fixture
async def client(server: MockRekaServer) -> AsyncIterator[AsyncClient]:
    """A client of ``server`` with the default two retries and a fast backoff."""
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as c:
        yield c
