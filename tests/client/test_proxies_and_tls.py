"""Networking in a company: proxies (the environment's and ``proxy=``), TLS with our own CA,
a caller's connector, and credentials in URLs kept out of reprs and errors.

Every request goes to loopback: the proxy is ``tests/_proxy.py`` (it sends whatever host a
request names to the mock server), the certificates come from a CA made in the test.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from _proxy import LoopbackProxy

from reka_async import APIConnectionError, APIStatusError, AsyncClient, Client
from reka_async.testing import MockRekaServer

KEY = "test-key"
MSGS = [{"role": "user", "content": "ping"}]
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
#: A name that resolves nowhere: only a proxy (or our own resolver) can reach it.
HOST = "api.example.test"


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_path(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "company-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def tls_server(ca: trustme.CA) -> AsyncIterator[MockRekaServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", HOST).configure_cert(context)
    async with MockRekaServer(api_key=KEY, ssl_context=context) as server:
        yield server


class StaticResolver(aiohttp.abc.AbstractResolver):
    """Resolves every name to 127.0.0.1 (a custom connector's resolver)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        self.asked.append(host)
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def _ask(client: AsyncClient) -> str:
    response = await client.chat.create(messages=MSGS, model="reka-flash")
    return response.text


# --- proxies ---------------------------------------------------------------------------------


async def test_https_proxy_from_the_environment_tunnels_with_connect(
    tls_server: MockRekaServer, ca_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with LoopbackProxy(tls_server.port) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        async with AsyncClient(KEY, f"https://{HOST}/v1", ssl=ca_path) as client:
            assert await _ask(client) == "Mock reply to: ping"
    assert [(m, t) for m, t, _ in proxy.seen] == [("CONNECT", f"{HOST}:443")]
    assert len(tls_server.requests) == 1


async def test_http_proxy_from_the_environment_gets_absolute_form_requests(
    server: MockRekaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with LoopbackProxy(server.port) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        base = f"http://{HOST}/v1"
        async with AsyncClient(KEY, base, allow_insecure_http=True) as client:
            assert await _ask(client) == "Mock reply to: ping"
    assert [(m, t) for m, t, _ in proxy.seen] == [("POST", f"{base}/chat")]


async def test_all_proxy_is_the_fallback(
    server: MockRekaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with LoopbackProxy(server.port) as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        async with AsyncClient(KEY, f"http://{HOST}/v1", allow_insecure_http=True) as client:
            await _ask(client)
    assert len(proxy.seen) == 1


@pytest.mark.parametrize(
    "no_proxy", [HOST, "example.test", ".example.test", "*", "x.org, example.test"]
)
async def test_no_proxy_sends_the_host_direct(
    server: MockRekaServer, monkeypatch: pytest.MonkeyPatch, no_proxy: str
) -> None:
    resolver = StaticResolver()
    async with LoopbackProxy(server.port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        async with AsyncClient(
            KEY,
            f"http://{HOST}:{server.port}/v1",
            allow_insecure_http=True,
            connector_factory=lambda: aiohttp.TCPConnector(resolver=resolver),
        ) as client:
            assert await _ask(client) == "Mock reply to: ping"
    assert proxy.seen == []
    assert resolver.asked == [HOST]


async def test_no_proxy_for_another_host_keeps_the_proxy(
    server: MockRekaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with LoopbackProxy(server.port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "other.test,test.example")
        async with AsyncClient(KEY, f"http://{HOST}/v1", allow_insecure_http=True) as client:
            await _ask(client)
    assert len(proxy.seen) == 1


async def test_trust_env_false_ignores_the_proxy_variables(
    server: MockRekaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = StaticResolver()
    async with LoopbackProxy(server.port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with AsyncClient(
            KEY,
            f"http://{HOST}:{server.port}/v1",
            allow_insecure_http=True,
            trust_env=False,
            connector_factory=lambda: aiohttp.TCPConnector(resolver=resolver),
        ) as client:
            await _ask(client)
    assert proxy.seen == []


async def test_a_loopback_base_url_never_goes_through_an_environment_proxy(
    server: MockRekaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with LoopbackProxy(server.port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with AsyncClient(KEY, server.base_url) as client:
            await _ask(client)
    assert proxy.seen == []


async def test_explicit_proxy_with_credentials_authenticates_and_stays_out_of_reprs(
    server: MockRekaServer,
) -> None:
    async with LoopbackProxy(server.port, auth="alice:hunter2") as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        url = f"http://alice:hunter2@{host}:{port}"
        # proxy= applies to every host, loopback included.
        async with AsyncClient(KEY, server.base_url, proxy=url) as client:
            assert await _ask(client) == "Mock reply to: ping"
            assert "hunter2" not in repr(client)
    (method, _, headers), *_ = proxy.seen
    assert method == "POST"
    assert headers["proxy-authorization"].startswith("Basic ")


async def test_a_proxy_that_refuses_the_credentials_is_an_error(server: MockRekaServer) -> None:
    async with (
        LoopbackProxy(server.port, auth="alice:right") as proxy,
        AsyncClient(
            KEY, server.base_url, proxy=proxy.url.replace("//", "//alice:wrong@"), max_retries=0
        ) as client,
    ):
        with pytest.raises(APIStatusError) as info:
            await _ask(client)
    assert info.value.status_code == 407
    assert "wrong" not in str(info.value)
    assert len(server.requests) == 0


def test_the_sync_client_honours_the_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading

    with MockRekaServer.in_thread(api_key=KEY) as server:
        loop = asyncio.new_event_loop()
        proxy = LoopbackProxy(server.port)
        loop.run_until_complete(proxy.__aenter__())
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            with Client(KEY, f"http://{HOST}/v1", allow_insecure_http=True) as client:
                response = client.chat.create(messages=MSGS, model="reka-flash")
            assert response.text == "Mock reply to: ping"
            assert len(proxy.seen) == 1
        finally:
            asyncio.run_coroutine_threadsafe(proxy.__aexit__(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


@pytest.mark.parametrize("bad", ["ftp://proxy:21", "proxy-without-scheme", "http://"])
def test_a_bad_proxy_url_says_what_to_write(bad: str) -> None:
    with pytest.raises(ValueError, match="proxy: must be an http"):
        AsyncClient(KEY, proxy=bad)


def test_a_bad_proxy_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:secret@proxy:1080")
    with pytest.raises(ValueError, match="HTTPS_PROXY") as info:
        AsyncClient(KEY)
    assert "secret" not in str(info.value)


# --- TLS -------------------------------------------------------------------------------------


async def test_a_self_signed_server_is_refused_by_default(tls_server: MockRekaServer) -> None:
    async with AsyncClient(KEY, tls_server.base_url, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await _ask(client)
    assert tls_server.requests == []


async def test_ssl_takes_a_ca_bundle_path(tls_server: MockRekaServer, ca_path: Path) -> None:
    async with AsyncClient(KEY, tls_server.base_url, ssl=ca_path) as client:
        assert await _ask(client) == "Mock reply to: ping"
    async with AsyncClient(KEY, tls_server.base_url, ssl=str(ca_path)) as client:
        assert await _ask(client) == "Mock reply to: ping"


async def test_ssl_takes_a_directory_of_cas(
    tls_server: MockRekaServer, ca: trustme.CA, tmp_path: Path
) -> None:
    import subprocess

    folder = tmp_path / "cas"
    folder.mkdir()
    ca.cert_pem.write_to_path(str(folder / "company.pem"))
    hashed = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(folder / "company.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    if hashed.returncode != 0:
        pytest.skip("openssl is needed to name the CA file by its hash")
    (folder / f"{hashed.stdout.strip()}.0").symlink_to(folder / "company.pem")
    async with AsyncClient(KEY, tls_server.base_url, ssl=folder) as client:
        assert await _ask(client) == "Mock reply to: ping"


async def test_ssl_takes_an_ssl_context(tls_server: MockRekaServer, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with AsyncClient(KEY, tls_server.base_url, ssl=context) as client:
        assert await _ask(client) == "Mock reply to: ping"


def test_ssl_with_a_missing_bundle_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no CA bundle at"):
        AsyncClient(KEY, ssl=tmp_path / "missing.pem")


def test_ssl_with_a_file_that_is_not_a_bundle_says_so(tmp_path: Path) -> None:
    path = tmp_path / "junk.pem"
    path.write_text("not a certificate")
    with pytest.raises(ValueError, match="not a usable CA bundle"):
        AsyncClient(KEY, ssl=path)


def test_ssl_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"ssl: must be an ssl\.SSLContext"):
        AsyncClient(KEY, ssl=True)  # type: ignore[arg-type]


# --- your own connector ------------------------------------------------------------------------


async def test_connector_factory_builds_the_pool_inside_the_loop(server: MockRekaServer) -> None:
    made: list[aiohttp.BaseConnector] = []

    def factory() -> aiohttp.BaseConnector:
        connector = aiohttp.TCPConnector(limit=3, resolver=StaticResolver())
        made.append(connector)
        return connector

    client = AsyncClient(
        KEY, f"http://{HOST}:{server.port}/v1", allow_insecure_http=True, connector_factory=factory
    )
    assert made == []  # nothing is built before the loop runs a request
    async with client:
        await _ask(client)
        await _ask(client)
    assert len(made) == 1
    assert made[0].closed  # closed with the client


def test_connector_factory_and_ssl_together_is_an_error(ca_path: Path) -> None:
    with pytest.raises(ValueError, match="ssl: give it to the connector"):
        AsyncClient(KEY, ssl=ca_path, connector_factory=aiohttp.TCPConnector)


# --- credentials in URLs -------------------------------------------------------------------------


def test_a_password_in_base_url_is_not_in_the_reprs() -> None:
    url = "https://user:hunter2@gateway.example.com/v1"
    client = AsyncClient(KEY, url)
    assert "hunter2" not in repr(client)
    assert "user:***@gateway.example.com" in repr(client)
    assert client.base_url == url  # the configuration itself is kept
    with Client(KEY, url) as sync:
        assert "hunter2" not in repr(sync)
        copy = sync.with_options(max_retries=0)
        assert "hunter2" not in repr(copy)
    token = AsyncClient(KEY, "https://tok3n-secret@gateway.example.com/v1")
    assert "tok3n-secret" not in repr(token)


async def test_a_password_in_base_url_is_not_in_connection_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed below: nothing listens there
    async with AsyncClient(KEY, f"http://user:hunter2@127.0.0.1:{port}/v1", max_retries=0) as c:
        with pytest.raises(APIConnectionError) as info:
            await _ask(c)
    seen: list[Any] = [str(info.value), repr(info.value)]
    cause: BaseException | None = info.value.__cause__
    while cause is not None:
        seen += [str(cause), repr(cause)]
        cause = cause.__cause__
    assert all("hunter2" not in text for text in seen), seen


def test_a_bad_base_url_error_hides_its_password() -> None:
    with pytest.raises(ValueError, match="base_url") as info:
        AsyncClient(KEY, "ftp://user:hunter2@host/v1")
    assert "hunter2" not in str(info.value)
