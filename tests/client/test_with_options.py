"""``client.with_options(...)``: a copy with other per-request settings over the same pool,
cooldown and budgets; closing the copy leaves the original open."""

from __future__ import annotations

import gc
import warnings

import pytest
from conftest import API_KEY, FAST_POLICY

from reka_async import AsyncClient, Client, InternalServerError, RetryEvent, Timeout
from reka_async.testing import MockRekaServer
from reka_async.types import ClientState

MSGS = [{"role": "user", "content": "hi"}]


async def test_a_copy_shares_the_connection_pool(server: MockRekaServer) -> None:
    server.set_latency(chunk_latency_s=0.05)  # the stream stays open between its events
    async with AsyncClient(API_KEY, server.base_url, max_connections=2) as client:
        copy = client.with_options(max_retries=0)
        async with copy.chat.create_stream(messages=MSGS, model="reka-flash") as stream:
            await stream.__anext__()
            # The copy's open stream holds a connection of the one pool both clients use.
            assert copy.connections_in_use == client.connections_in_use == 1
        assert client.connections_in_use == 0
        assert copy.max_connections == client.max_connections == 2


async def test_closing_the_copy_leaves_the_original_open(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        async with client.with_options(timeout=30) as copy:
            assert (await copy.chat.create(messages=MSGS, model="reka-flash")).text
        assert copy.is_closed
        assert copy.state is ClientState.CLOSED
        assert client.state is ClientState.OPEN
        assert (await client.chat.create(messages=MSGS, model="reka-flash")).text
        with pytest.raises(RuntimeError, match="closed"):
            await copy.chat.create(messages=MSGS, model="reka-flash")


async def test_closing_the_original_closes_the_pool_under_its_copies(
    server: MockRekaServer,
) -> None:
    client = AsyncClient(API_KEY, server.base_url)
    copy = client.with_options(max_retries=1)
    await copy.chat.create(messages=MSGS, model="reka-flash")  # the copy opens the pool
    assert client.state is ClientState.OPEN
    await client.aclose()
    assert copy.state is ClientState.CLOSED
    with pytest.raises(RuntimeError, match="closed"):
        await copy.chat.create(messages=MSGS, model="reka-flash")


async def test_a_dropped_copy_does_not_warn(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        copy = client.with_options(max_retries=0)
        await copy.chat.create(messages=MSGS, model="reka-flash")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del copy
            gc.collect()  # frees the copy even if a reference cycle holds it
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
        assert not client.is_closed  # and dropping the copy left the pool open


async def test_the_copy_has_its_own_retries_and_timeout(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client:
        strict = client.with_options(max_retries=0, timeout=Timeout(connect=1, read=2, total=3))
        assert strict.max_retries == 0
        assert client.max_retries == 2
        assert strict.timeout == Timeout(connect=1, read=2, total=3)
        assert strict.retry_policy.base == FAST_POLICY.base  # the rest of the policy kept
        server.inject("500")
        with pytest.raises(InternalServerError):
            await strict.chat.create(messages=MSGS, model="reka-flash")
        server.inject("500")
        assert (await client.chat.create(messages=MSGS, model="reka-flash")).text


async def test_default_headers_add_to_the_originals(server: MockRekaServer) -> None:
    async with AsyncClient(
        API_KEY, server.base_url, default_headers={"X-Team": "a", "X-Keep": "k"}
    ) as client:
        copy = client.with_options(default_headers={"X-Team": "b", "X-Trace": "t"})
        await copy.chat.create(messages=MSGS, model="reka-flash", extra_headers={"X-Call": "c"})
        await client.chat.create(messages=MSGS, model="reka-flash")
    sent_by_copy, sent_by_client = (r.headers for r in server.requests)
    assert sent_by_copy["X-Team"] == "b"
    assert sent_by_copy["X-Keep"] == "k"
    assert sent_by_copy["X-Trace"] == "t"
    assert sent_by_copy["X-Call"] == "c"
    assert sent_by_client["X-Team"] == "a"
    assert "X-Trace" not in sent_by_client


async def test_the_copy_shares_the_cooldown(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client:
        copy = client.with_options(max_retries=0)
        server.inject("rate_limit")
        with pytest.raises(Exception, match="429"):
            await copy.chat.create(messages=MSGS, model="reka-flash")
        # The copy's 429 (retry-after 0.05 s from the fixture) pauses the original too.
        assert client.cooldown_remaining > 0
        assert copy.cooldown_remaining > 0


async def test_the_copy_can_switch_the_dialect(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        openai = client.with_options(api="openai")
        assert (openai.api, client.api) == ("openai", "native")
        await openai.chat.create(messages=MSGS, model="reka-flash")
    assert server.requests[-1].path == "/v1/chat/completions"


async def test_hooks_of_a_copy_run_after_the_originals(server: MockRekaServer) -> None:
    calls: list[str] = []
    async with AsyncClient(
        API_KEY,
        server.base_url,
        retry_policy=FAST_POLICY,
        on_response=lambda e: calls.append("client"),
        on_retry=lambda e: calls.append("client-retry"),
    ) as client:
        copy = client.with_options(
            on_response=lambda e: calls.append("copy"),
            on_retry=lambda e: calls.append("copy-retry"),
        )
        server.inject("500")
        await copy.chat.create(messages=MSGS, model="reka-flash")
        assert calls == ["client", "copy", "client-retry", "copy-retry", "client", "copy"]
        calls.clear()
        await client.chat.create(messages=MSGS, model="reka-flash")
        assert calls == ["client"]


def test_bad_options_of_a_copy_say_what_to_fix() -> None:
    client = AsyncClient(API_KEY)
    with pytest.raises(ValueError, match="max_retries"):
        client.with_options(max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        client.with_options(timeout=-3)
    with pytest.raises(ValueError, match="api"):
        client.with_options(api="graphql")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="API key"):
        client.with_options(default_headers={"x-api-key": "other"})


def test_copy_is_the_openai_name_for_it() -> None:
    client = AsyncClient(API_KEY)
    assert client.copy(max_retries=5).max_retries == 5


def test_the_sync_copy_shares_the_loop_and_closes_alone() -> None:
    events: list[RetryEvent] = []
    with (
        MockRekaServer.in_thread(api_key=API_KEY) as server,
        Client(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client,
    ):
        copy = client.with_options(max_retries=0, on_retry=events.append)
        server.inject("500")
        with pytest.raises(InternalServerError):
            copy.chat.create(messages=MSGS, model="reka-flash")
        assert events == []  # no retry at max_retries=0
        copy.close()
        assert copy.is_closed
        assert not client.is_closed
        assert "(copy)" in repr(copy)
        assert "closed" in repr(copy)
        assert client.chat.create(messages=MSGS, model="reka-flash").text
        with pytest.raises(RuntimeError, match="closed"):
            copy.chat.create(messages=MSGS, model="reka-flash")
        with pytest.raises(RuntimeError, match="closed"):
            copy.with_options(max_retries=1)
    assert copy.is_closed


def test_copy_options_are_the_with_options_keywords() -> None:
    import inspect

    from reka_async.types import CopyOptions

    keywords = {
        name
        for name, p in inspect.signature(AsyncClient.with_options).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert set(CopyOptions.__annotations__) == keywords
