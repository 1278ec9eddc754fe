"""``AiohttpTransport``: the network implementation of the attempt seam (``attempt.py``).

It owns one ``aiohttp.ClientSession`` (created lazily inside the running loop), its
connector, proxy and TLS settings, and sends one attempt at a time. Everything else (retries,
pacing, hooks, budgets, error translation) is the request loop's, above it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from ssl import SSLContext
from typing import Any

import aiohttp
import attrs
from yarl import URL

from .attempt import TransportRequest
from .network import ConnectorFactory, SSLOption, check_proxy, env_proxy, ssl_context
from .options import Timeout

__all__ = ["AiohttpResponse", "AiohttpTransport", "PoolConfig"]


class AiohttpResponse:
    """An aiohttp response as a ``TransportResponse``."""

    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    @property
    def closed(self) -> bool:
        """Whether the connection was released or closed."""
        return self._resp.closed

    async def read(self) -> bytes:
        """The bytes available next (waiting for some), ``b""`` at the end of the body."""
        return await self._resp.content.readany()

    def release(self) -> None:
        """Hand the connection back to the pool (the body was read to the end)."""
        self._resp.release()

    def close(self) -> None:
        """Drop the connection. Synchronous."""
        self._resp.close()


class AiohttpTransport:
    """Sends attempts through one ``aiohttp.ClientSession`` (made on first use, in the loop
    of that use: the session is bound to it).

    Args:
        max_connections: the pool size (the connector's ``limit``).
        proxy: a proxy for every request, or ``None``.
        ssl: the TLS context, or ``None`` for the system's trust store.
        connector_factory: ``factory() -> aiohttp.BaseConnector`` instead of the default
            ``TCPConnector`` (its limit is then the pool size).
    """

    __slots__ = (
        "_plain",
        "_stream",
        "connector_factory",
        "loop",
        "max_connections",
        "pid",
        "proxy",
        "session",
        "ssl",
    )

    def __init__(
        self,
        *,
        max_connections: int = 1024,
        proxy: URL | None = None,
        ssl: SSLContext | None = None,
        connector_factory: ConnectorFactory | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.proxy = proxy
        self.ssl = ssl
        self.connector_factory = connector_factory
        self.session: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0  # the process that opened the session (a fork's child may not use it)
        # The last Timeout converted for plain and for streamed attempts (almost always the
        # client's own, so the conversion is made once).
        self._plain: tuple[Timeout | None, aiohttp.ClientTimeout | None] = (None, None)
        self._stream: tuple[Timeout | None, aiohttp.ClientTimeout | None] = (None, None)

    def __repr__(self) -> str:
        state = "open" if self.session is not None and not self.session.closed else "idle"
        return f"<AiohttpTransport {state} max_connections={self.max_connections}>"

    def open(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running event loop.

        Raises:
            RuntimeError: used from another event loop, or from a fork's child process.
        """
        session = self.session
        if session is not None:
            if self.loop is not asyncio.get_running_loop():
                if self.pid != os.getpid():
                    raise RuntimeError(
                        f"this AsyncClient opened its connections in process {self.pid} and "
                        f"cannot be used in process {os.getpid()}, a child made by fork(): "
                        "create a new client in the child (or use the 'spawn' start method)"
                    )
                raise RuntimeError(
                    "this AsyncClient is bound to another event loop; create one client per loop "
                    "(or use reka_async.Client from synchronous code)"
                )
            return session
        self.loop = asyncio.get_running_loop()
        self.pid = os.getpid()
        if self.connector_factory is not None:
            connector: aiohttp.BaseConnector = self.connector_factory()
        else:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                ttl_dns_cache=300,
                enable_cleanup_closed=False,
                ssl=self.ssl if self.ssl is not None else True,
            )
        # Proxies come from proxy= or were read from the environment once (network.py), so
        # trust_env stays off: aiohttp would look them up in a thread on every request.
        self.session = session = aiohttp.ClientSession(
            connector=connector,
            proxy=self.proxy,
            auto_decompress=True,
            raise_for_status=False,
            trust_env=False,
        )
        return session

    def _timeout(self, timeout: Timeout, stream: bool) -> aiohttp.ClientTimeout:
        if stream:
            last, converted = self._stream
            if last is not timeout or converted is None:
                converted = timeout.to_aiohttp()
                self._stream = (timeout, converted)
            return converted
        last, converted = self._plain
        if last is not timeout or converted is None:
            converted = timeout.to_aiohttp_plain()
            self._plain = (timeout, converted)
        return converted

    async def send(self, request: TransportRequest) -> AiohttpResponse:
        """Send one attempt; return once the status and headers are in."""
        session = self.session
        if session is None or self.loop is not asyncio.get_running_loop():
            session = self.open()
        # An idle keep-alive connection will be reused (aiohttp keeps no public count; its
        # connector's ``_conns`` holds the idle ones, dropped when empty). Without one
        # (another connector), assume a reuse, as aiohttp's own retry of idempotent
        # requests does.
        request.reused = bool(getattr(session.connector, "_conns", True))
        resp = await session.request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=self._timeout(request.timeout, request.stream),
            allow_redirects=False,
        )
        return AiohttpResponse(resp)

    @property
    def connections_in_use(self) -> int:
        """Connections of the pool currently held by a request or an open stream."""
        session = self.session
        if session is None or session.closed or session.connector is None:
            return 0
        # aiohttp has no public counter; the connector's acquired set is what it limits.
        acquired: Any = getattr(session.connector, "_acquired", ())
        return len(acquired)

    async def aclose(self) -> None:
        """Close the session and its connections (idempotent)."""
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close()


@attrs.frozen
class PoolConfig:
    """The options a client's default transport is built from, kept to build another for a
    copy with another base URL or key (the proxy from the environment depends on the URL)."""

    max_connections: int
    proxy: str | None = attrs.field(repr=False)  # it may hold the proxy's password
    trust_env: bool
    ssl: SSLOption
    connector_factory: ConnectorFactory | None
    allow_insecure_http: bool

    def sender(self, url: URL) -> AiohttpTransport:
        """A new connection pool for ``url``, configured as the client's was."""
        proxy: URL | None
        if self.proxy is not None:
            proxy = check_proxy(self.proxy)
        else:
            proxy = env_proxy(url) if self.trust_env else None
        return AiohttpTransport(
            max_connections=self.max_connections,
            proxy=proxy,
            ssl=ssl_context(self.ssl),
            connector_factory=self.connector_factory,
        )
