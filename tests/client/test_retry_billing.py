"""Retries that may bill twice are visible and can be turned off (``_http/retry.py``).

A retry may bill twice when the failed attempt may have reached the server: a read timeout, or
the connection dropping after the request was written. A failure before the request could be
read (refused, a connect timeout) or a status answer never does. Each case is driven over real
sockets; the translation of every aiohttp failure kind is checked on its own too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from reka_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    BatchRunner,
    InternalServerError,
    RetryEvent,
    RetryPolicy,
    Timeout,
)
from reka_async._http.errors import translate
from reka_async.testing import MockRekaServer

KEY = "test-key"
MODEL = "reka-flash"
FAST = RetryPolicy(base=0.001, cap=0.01)
ONCE = RetryPolicy(base=0.001, cap=0.01, may_bill_twice=False)


def body(text: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key=KEY, slow_first_byte_s=5.0, retry_after_s=0.001) as srv:
        yield srv


def closed_port() -> int:
    """A loopback port nobody listens on (connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- translation


def _request_info() -> aiohttp.RequestInfo:
    url = URL("http://127.0.0.1/v1/chat")
    return aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)


def _connector_error() -> aiohttp.ClientConnectorError:
    key: Any = type("Key", (), {"ssl": None, "host": "127.0.0.1", "port": 1})()
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


NOT_SENT = {
    "refused": _connector_error,
    "connect-timeout": lambda: aiohttp.ConnectionTimeoutError("Connection timeout to host"),
}
MAYBE_SENT = {
    "read-timeout": lambda: aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
    "total-timeout": asyncio.TimeoutError,
    "disconnected": aiohttp.ServerDisconnectedError,
    "payload-broken": lambda: aiohttp.ClientPayloadError("Response payload is not completed"),
    "reset": lambda: aiohttp.ClientOSError(104, "Connection reset by peer"),
    "bad-status-line": lambda: aiohttp.ClientResponseError(_request_info(), (), status=400),
    "unknown-os-error": lambda: OSError("something else"),
}


@pytest.mark.parametrize("make", NOT_SENT.values(), ids=NOT_SENT.keys())
def test_failures_before_the_request_was_read_never_bill_twice(make: Any) -> None:
    error = translate(make(), "POST /chat")
    assert isinstance(error, APIConnectionError)
    assert error.may_have_reached_server is False
    assert not RetryPolicy.retry_may_bill_twice(error)
    assert ONCE.delay_for(error, 0) is not None  # still retried with may_bill_twice=False


@pytest.mark.parametrize("make", MAYBE_SENT.values(), ids=MAYBE_SENT.keys())
def test_failures_after_the_request_was_written_may_bill_twice(make: Any) -> None:
    error = translate(make(), "POST /chat")
    assert error.may_have_reached_server is True  # type: ignore[attr-defined]
    assert RetryPolicy.retry_may_bill_twice(error)
    assert FAST.delay_for(error, 0) is not None
    assert ONCE.delay_for(error, 0) is None  # raised at once


def test_status_answers_never_bill_twice() -> None:
    error = InternalServerError("HTTP 500", status_code=500, body=None)
    assert not RetryPolicy.retry_may_bill_twice(error)
    assert ONCE.delay_for(error, 0) is not None


# --------------------------------------------------------------------------- over sockets


async def retry_events(client: AsyncClient, text: str) -> tuple[list[RetryEvent], BaseException]:
    events: list[RetryEvent] = []
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is asserted by the caller
        await client.chat.send_body(body(text), on_retry=events.append)
    return events, info.value


async def test_a_read_timeout_retry_is_flagged(server: MockRekaServer) -> None:
    timeout = Timeout(connect=5, read=0.05, total=5)
    async with AsyncClient(KEY, server.base_url, retry_policy=FAST, timeout=timeout) as client:
        events, error = await retry_events(client, "[[fault:slow_first_byte]]")
    assert isinstance(error, APITimeoutError)
    assert error.may_have_reached_server
    assert [e.may_bill_twice for e in events] == [True, True]
    assert len(server.requests) == 3  # three deliveries of the same POST


@pytest.mark.parametrize("fault", ["drop", "bad_status_line"])
async def test_a_drop_after_sending_is_flagged(server: MockRekaServer, fault: str) -> None:
    async with AsyncClient(KEY, server.base_url, retry_policy=FAST) as client:
        events, error = await retry_events(client, f"[[fault:{fault}]]")
    assert isinstance(error, APIConnectionError)
    assert [e.may_bill_twice for e in events] == [True, True]


async def test_status_and_refused_retries_are_not_flagged(server: MockRekaServer) -> None:
    async with AsyncClient(KEY, server.base_url, retry_policy=FAST) as client:
        events, error = await retry_events(client, "[[fault:500]]")
    assert isinstance(error, InternalServerError)
    assert [e.may_bill_twice for e in events] == [False, False]
    async with AsyncClient(KEY, f"http://127.0.0.1:{closed_port()}/v1", retry_policy=FAST) as c:
        events, error = await retry_events(c, "hi")
    assert isinstance(error, APIConnectionError)
    assert not error.may_have_reached_server
    assert [e.may_bill_twice for e in events] == [False, False]


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port whose accept queue is full: a new connection's SYN is dropped, so
    connecting hangs until the connect timeout (nothing can have been sent)."""
    with socket.socket() as listener, contextlib.ExitStack() as stack:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(3):  # fill the queue; never accepted
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        yield port


async def test_a_connect_timeout_is_not_flagged_and_still_retried() -> None:
    timeout = Timeout(connect=0.1, read=5, total=5)
    with black_hole() as port:
        async with AsyncClient(
            KEY, f"http://127.0.0.1:{port}/v1", retry_policy=ONCE, timeout=timeout, max_retries=1
        ) as client:
            events, error = await retry_events(client, "hi")
    assert isinstance(error, APITimeoutError)
    assert not error.may_have_reached_server
    assert "timed out connecting" in str(error)
    assert [e.may_bill_twice for e in events] == [False]  # retried despite may_bill_twice=False


@pytest.mark.parametrize("fault", ["slow_first_byte", "drop"])
async def test_may_bill_twice_false_raises_at_once(server: MockRekaServer, fault: str) -> None:
    timeout = Timeout(connect=5, read=0.05, total=5)
    async with AsyncClient(
        KEY, server.base_url, retry_policy=ONCE, timeout=timeout, max_retries=3
    ) as client:
        events, error = await retry_events(client, f"[[fault:{fault}]]")
        assert isinstance(error, APIConnectionError)
        assert events == []
        assert len(server.requests) == 1  # sent once, never again
        # A stream that fails before its first event is retried the same way: not at all.
        with pytest.raises(APIConnectionError):
            async for _ in client.chat.create_stream(
                messages=[{"role": "user", "content": f"[[fault:{fault}]]"}], model=MODEL
            ):
                pass
        assert len(server.requests) == 2
        # Other failures are still retried.
        with pytest.raises(InternalServerError):
            await client.chat.create(
                messages=[{"role": "user", "content": "[[fault:500]]"}], model=MODEL
            )
        assert len(server.requests) == 2 + 4


async def test_batch_stats_count_the_retries_that_may_bill_twice(
    server: MockRekaServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reka_async")
    # Two drops (whichever attempts carry the directive first), one 500.
    items = ["[[fault:drop*2]] a", "[[fault:500*1]] b", "[[fault:drop*2]] c", "fine"]
    async with AsyncClient(KEY, server.base_url, retry_policy=FAST) as client:
        runner = BatchRunner(client, concurrency=2)
        results = await runner.run(items)
    assert all(r.ok for r in results)
    assert runner.stats.retries == 3
    assert runner.stats.may_bill_twice == 2
    assert runner.stats.as_dict()["may_bill_twice"] == 2
    flagged = [r.getMessage() for r in caplog.records if "may bill twice" in r.getMessage()]
    assert len(flagged) == 2
