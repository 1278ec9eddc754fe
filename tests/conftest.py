"""Shared fixtures: a clean environment, aioresponses made to work with aiohttp 3.14, a fast
retry policy, and the embedded mock server over real sockets."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from reka_async import AsyncClient, RetryPolicy
from reka_async.testing import MockRekaServer

API_KEY = "test-key"

# aiohttp 3.14 added a required ``stream_writer`` argument to ``ClientResponse`` that
# aioresponses 0.7.x does not pass (pnuckowski/aioresponses#289). The response it builds is
# already complete, so a writer that reports zero bytes sent is all the constructor needs.
_NEEDS_STREAM_WRITER = (
    "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters
)


class _CompatResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        if _NEEDS_STREAM_WRITER:
            kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class CompatAioresponses(aioresponses):  # type: ignore[misc]
    """aioresponses whose mocked responses can be built on aiohttp 3.14."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _CompatResponse)
        super().add(*args, **kwargs)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on the developer's REKA_* variables."""
    monkeypatch.delenv("REKA_API_KEY", raising=False)
    monkeypatch.delenv("REKA_BASE_URL", raising=False)


@pytest.fixture
def mock_api() -> Iterator[CompatAioresponses]:
    """aioresponses: every HTTP call of the test is answered from registered responses."""
    with CompatAioresponses() as m:
        yield m


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
