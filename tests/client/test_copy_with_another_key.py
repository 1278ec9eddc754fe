"""``client.with_options(api_key=..., base_url=...)`` (and ``copy``), as openai-python users
write it: a copy for another key or endpoint has its own connection pool, key header,
cooldown, window and cache identity, and closes them itself; a copy with neither (or with the
client's own) shares everything, as before."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import pytest
from conftest import API_KEY, FAST_POLICY

from reka_async import (
    AsyncClient,
    AuthenticationError,
    BatchAbortedError,
    BatchRunner,
    Client,
    InvalidRequestError,
)
from reka_async.testing import MockRekaServer, MockTransport
from reka_async.types import ClientState

MSGS = [{"role": "user", "content": "hi"}]
OTHER = "other-key"


def sent_key(server: MockRekaServer) -> str:
    return server.requests[-1].headers["X-Api-Key"]


async def test_a_copy_with_another_key_sends_that_key() -> None:
    async with MockRekaServer(api_key=None) as server, AsyncClient(API_KEY, server.base_url) as c:
        async with c.with_options(api_key=OTHER) as other, c.copy(api_key=OTHER, api="openai") as o:
            await other.chat.create(messages=MSGS, model="reka-flash")
            assert sent_key(server) == OTHER
            await o.chat.create(messages=MSGS, model="reka-flash")
            assert sent_key(server) == OTHER
            assert server.requests[-1].headers["Authorization"] == f"Bearer {OTHER}"
        await c.chat.create(messages=MSGS, model="reka-flash")
        assert sent_key(server) == API_KEY


async def test_a_copy_with_another_base_url_talks_to_that_server() -> None:
    async with (
        MockRekaServer(api_key=None) as one,
        MockRekaServer(api_key=None) as two,
        AsyncClient(API_KEY, one.base_url) as client,
        client.with_options(base_url=two.base_url, max_retries=0) as copy,
    ):
        await copy.chat.create(messages=MSGS, model="reka-flash")
        assert (len(one.requests), len(two.requests)) == (0, 1)
        assert copy.base_url == two.base_url
        assert copy.max_retries == 0  # the other options apply as well
        assert sent_key(two) == API_KEY  # the key is kept when only the URL changes


async def test_the_copy_has_a_pool_of_its_own(server: MockRekaServer) -> None:
    server.set_latency(chunk_latency_s=0.05)  # the stream stays open between its events
    async with (
        MockRekaServer(api_key=None, chunk_latency_s=0.05) as other_server,
        AsyncClient(API_KEY, server.base_url, max_connections=2) as client,
        client.with_options(base_url=other_server.base_url) as copy,
    ):
        async with copy.chat.create_stream(messages=MSGS, model="reka-flash") as stream:
            await stream.__anext__()
            assert (copy.connections_in_use, client.connections_in_use) == (1, 0)
        assert copy.max_connections == 2  # configured as the client's pool
        assert "(copy)" not in repr(copy)


async def test_the_copy_has_its_own_cooldown(server: MockRekaServer) -> None:
    async with (
        AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client,
        client.with_options(api_key=API_KEY + "-2", max_retries=0) as copy,
    ):
        server.inject("rate_limit")
        with pytest.raises(Exception, match="429"):
            await client.chat.create(messages=MSGS, model="reka-flash", max_retries=0)
        # The 429 of one key pauses that key's requests, not the other key's.
        assert client.cooldown_remaining > 0
        assert copy.cooldown_remaining == 0
        assert client.quota is not copy.quota


async def test_one_pacer_per_key_and_origin_among_a_client_and_its_copies(
    server: MockRekaServer,
) -> None:
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client:
        other_key = client.with_options(api_key=OTHER)
        back = other_key.with_options(api_key=API_KEY)  # back to the first key
        other_path = client.with_options(base_url=server.base_url.replace("/v1", "/v2"))
        other_port = client.with_options(base_url="http://127.0.0.1:9/v1")
        assert other_key.pacer is not client.pacer
        assert back.pacer is client.pacer
        assert other_path.pacer is client.pacer  # the same key and host: the same limiter
        assert other_port.pacer is not client.pacer
        assert client.with_options(max_retries=0).pacer is client.pacer
        # A quota 429 through the copy that came back pauses the first key's requests.
        server.inject("rate_limit")
        with pytest.raises(Exception, match="429"):
            await back.chat.create(messages=MSGS, model="reka-flash", max_retries=0)
        assert client.cooldown_remaining > 0
        assert other_key.cooldown_remaining == 0
        for copy in (other_key, back, other_path, other_port):
            await copy.aclose()


async def test_two_clients_made_apart_share_no_pacer(server: MockRekaServer) -> None:
    # The documented choice (``_http/pacing.py``): a pacer belongs to one client and its
    # copies, never to every client of the process with the same key.
    async with (
        AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as one,
        AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as two,
    ):
        server.inject("rate_limit")
        with pytest.raises(Exception, match="429"):
            await one.chat.create(messages=MSGS, model="reka-flash", max_retries=0)
        assert one.pacer is not two.pacer
        assert one.cooldown_remaining > 0
        assert two.cooldown_remaining == 0


async def test_a_client_made_afresh_carries_on_with_an_earlier_clients_pacer(
    server: MockRekaServer,
) -> None:
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as first:
        server.inject("rate_limit")
        with pytest.raises(Exception, match="429"):
            await first.chat.create(messages=MSGS, model="reka-flash", max_retries=0)
    async with AsyncClient(API_KEY, server.base_url, pacer=first.pacer) as second:
        assert second.pacer is first.pacer  # the closed client's pacing goes on here
        assert second.cooldown_remaining > 0
        assert second.with_options(max_retries=0).pacer is first.pacer


async def test_a_copy_with_the_same_key_still_shares(server: MockRekaServer) -> None:
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client:
        copy = client.with_options(api_key=API_KEY, base_url=server.base_url + "/")
        server.inject("rate_limit")
        with pytest.raises(Exception, match="429"):
            await copy.chat.create(messages=MSGS, model="reka-flash", max_retries=0)
        assert client.cooldown_remaining > 0
        assert "(copy)" in repr(copy)


async def test_each_closes_alone() -> None:
    async with MockRekaServer(api_key=None) as server:
        client = AsyncClient(API_KEY, server.base_url)
        copy = client.with_options(api_key=OTHER)
        await client.chat.create(messages=MSGS, model="reka-flash")
        await copy.chat.create(messages=MSGS, model="reka-flash")
        await client.aclose()
        # The original's pool is closed; the copy's is its own, still open and usable.
        assert copy.state is ClientState.OPEN
        assert (await copy.chat.create(messages=MSGS, model="reka-flash")).text
        await copy.aclose()
        assert copy.is_closed


async def test_a_copy_of_its_own_never_closed_warns_like_a_client() -> None:
    async with MockRekaServer(api_key=None) as server, AsyncClient(API_KEY, server.base_url) as c:
        copy = c.with_options(api_key=OTHER)
        await copy.chat.create(messages=MSGS, model="reka-flash")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            copy.__del__()
        await copy.aclose()
        assert any("never closed" in str(w.message) for w in caught)
    gc.collect()


async def test_another_key_is_another_cache_identity(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    async with MockRekaServer(api_key=None) as server, AsyncClient(API_KEY, server.base_url) as c:
        await BatchRunner(c, cache=path).run(["a", "b"])
        async with c.with_options(api_key=OTHER) as copy:
            results = await BatchRunner(copy, cache=path).run(["a", "b"])
        assert not any(r.cached for r in results)
        assert server.requests[-1].headers["X-Api-Key"] == OTHER
        assert all(r.cached for r in await BatchRunner(c, cache=path).run(["a", "b"]))


async def test_a_refused_key_stops_the_copy_s_batch_only(server: MockRekaServer) -> None:
    async with (
        AsyncClient(API_KEY, server.base_url) as client,
        client.with_options(api_key="refused") as copy,
    ):
        with pytest.raises(BatchAbortedError):
            await BatchRunner(copy).run(["a", "b", "c"])
        results = await BatchRunner(client).run(["a", "b"])
        assert all(r.ok for r in results)
        with pytest.raises(AuthenticationError):
            await copy.chat.create(messages=MSGS, model="reka-flash")


def test_bad_keys_and_urls_of_a_copy_say_what_to_fix() -> None:
    client = AsyncClient(API_KEY)
    with pytest.raises(InvalidRequestError, match="control character") as info:
        client.with_options(api_key="sec\x00ret")
    assert "sec" not in str(info.value)
    with pytest.raises(ValueError, match="base_url"):
        client.with_options(base_url="ftp://example.com")
    with pytest.raises(ValueError, match="plain http"):
        client.with_options(base_url="http://example.com/v1")
    with pytest.raises(ValueError, match="api_key="):
        client.with_options(default_headers={"Authorization": "Bearer x"})


async def test_a_client_over_a_passed_transport_cannot_be_rekeyed() -> None:
    transport = MockTransport(lambda request: None)  # type: ignore[arg-type, return-value]
    async with AsyncClient(API_KEY, transport=transport) as client:
        with pytest.raises(ValueError, match="transport="):
            client.with_options(api_key=OTHER)
        assert client.with_options(api_key=API_KEY).max_retries == client.max_retries


def test_the_sync_copy_with_another_key_is_closed_with_the_client() -> None:
    with MockRekaServer.in_thread(api_key=None) as server:
        client = Client(API_KEY, server.base_url)
        copy = client.with_options(api_key=OTHER)
        assert copy.chat.create(messages=MSGS, model="reka-flash").text
        assert server.requests[-1].headers["X-Api-Key"] == OTHER
        assert client.chat.create(messages=MSGS, model="reka-flash").text
        assert server.requests[-1].headers["X-Api-Key"] == API_KEY
        # The copy is never closed: closing the client closes its pool too, without an
        # unclosed-session warning (filterwarnings = error).
        client.close()
        assert copy.is_closed
        del copy
        gc.collect()


def test_the_sync_copy_closes_alone() -> None:
    with (
        MockRekaServer.in_thread(api_key=None) as server,
        Client(API_KEY, server.base_url) as client,
    ):
        copy = client.copy(base_url=server.base_url, api_key=OTHER)
        copy.close()
        assert copy.is_closed
        assert not client.is_closed
        assert client.chat.create(messages=MSGS, model="reka-flash").text


def test_the_proxy_password_kept_for_copies_is_in_no_repr() -> None:
    client = AsyncClient(API_KEY, proxy="http://alice:hunter2@proxy.example:3128")
    copy = client.with_options(api_key=OTHER)
    shown = " ".join(repr(x) for x in (client, copy, vars(client).get("_network")))
    assert "hunter2" not in shown
    assert OTHER not in shown
