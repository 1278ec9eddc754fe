"""``Transport``: owns the aiohttp session, sends requests with the retry policy, and opens
streams as plain byte sources.

This is the hot path of every call: one coroutine frame for the whole exchange, retries
included, and errors translated by ``map_errors`` at the one boundary.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from collections.abc import Callable, Mapping
from ssl import SSLContext
from typing import Any, TypeVar

import aiohttp
import attrs
from multidict import CIMultiDict
from yarl import URL

from .._exceptions import (
    APIConnectionError,
    APIError,
)
from .._version import __version__
from .budget import RateBudget
from .errors import invalid_body, map_errors, stale_candidate, status_error
from .gate import Gate
from .hooks import Hooks
from .network import ConnectorFactory, display_url
from .options import RequestOptions, Timeout, chain_retry_hooks
from .pool import ClientState, Pool, StreamBody, check_base_url, has_idle, read_body
from .quota import Quota
from .retry import Cooldown, RetryHook, RetryPolicy

__all__ = ["ClientState", "StreamBody", "Transport", "check_base_url", "read_body"]

logger = logging.getLogger("reka_async")

T = TypeVar("T")

USER_AGENT = f"reka-async/{__version__}"


class Transport(Gate):
    """Owns one ``aiohttp.ClientSession`` (created lazily inside the running loop).

    ``derive`` makes a copy with other per-request settings over the same pool (the session,
    the cooldown and any other shared budget); closing a copy leaves the pool open.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: URL,
        timeout: Timeout,
        retry_policy: RetryPolicy,
        max_connections: int,
        default_headers: Mapping[str, str] | None = None,
        hooks: Hooks | None = None,
        on_retry: RetryHook | None = None,
        proxy: URL | None = None,
        ssl: SSLContext | None = None,
        connector_factory: ConnectorFactory | None = None,
        budget: RateBudget | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.max_connections = max_connections
        #: The largest body, or stream event, read from a response (``None``: no limit).
        self.max_response_bytes = max_response_bytes
        self.cooldown = Cooldown()
        #: The client's rate budget (``AsyncClient(rpm=, tpm=)``), or ``None``.
        self.budget = budget
        #: The key's window as the server's x-ratelimit-* headers describe it.
        self.quota = Quota(slack=max_connections, max_wait=retry_policy.max_server_wait)
        self.default_options = RequestOptions(
            timeout=timeout,
            max_retries=retry_policy.max_retries,
            on_retry=on_retry,
            hooks=hooks or None,
        )
        #: Whether closing this transport closes the pool (false for ``derive`` copies).
        self.owns_pool = True
        self._closed = False  # this copy was closed (the pool may live on)
        self._stream_timeout = timeout.to_aiohttp()
        self._plain_timeout = timeout.to_aiohttp_plain()
        headers = {
            "X-Api-Key": api_key,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(default_headers or {}),
        }
        # The OpenAI dialect's auth header, sent beside X-Api-Key on its requests only.
        # A CIMultiDict, not a dict: aiohttp converts per request any headers given as a dict.
        self._bearer: Mapping[str, str] = CIMultiDict({"Authorization": f"Bearer {api_key}"})
        self._pool = Pool(
            headers=headers, proxy=proxy, ssl=ssl, connector_factory=connector_factory
        )
        self._routes: dict[tuple[str, str], tuple[URL, map_errors]] = {}

    def __repr__(self) -> str:
        return f"<Transport {display_url(self.base_url)!r} {self.state.value}>"

    @property
    def state(self) -> ClientState:
        """The lifecycle of this client: the pool's, or ``CLOSED`` once this copy is closed."""
        return ClientState.CLOSED if self._closed else self._pool.state

    @property
    def last_headers(self) -> Mapping[str, str] | None:
        """The headers of the most recent HTTP answer on this pool, or ``None`` before one."""
        return self._pool.last_headers

    def derive(
        self,
        *,
        timeout: Timeout | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        hooks: Hooks | None = None,
        on_retry: RetryHook | None = None,
    ) -> Transport:
        """A transport over the same pool with other per-request settings.

        A shallow copy, so the pool, the cooldown and any other shared state are the same
        objects. Its ``default_headers`` are sent per request on top of the session's; its
        hooks run after this transport's.
        """
        new = copy.copy(self)
        new.owns_pool = False
        new._closed = False
        if timeout is not None:
            new.timeout = timeout
            new._stream_timeout = timeout.to_aiohttp()
            new._plain_timeout = timeout.to_aiohttp_plain()
        if retry_policy is not None:
            new.retry_policy = retry_policy
        base = self.default_options
        headers = base.extra_headers
        if default_headers:
            headers = {**(headers or {}), **default_headers}
        # evolve, not a new RequestOptions: any other per-request state is carried over.
        new.default_options = attrs.evolve(
            base,
            timeout=new.timeout,
            max_retries=new.retry_policy.max_retries,
            extra_headers=headers,
            on_retry=chain_retry_hooks(base.on_retry, on_retry),
            hooks=base.hooks.plus(hooks) if base.hooks is not None else (hooks or None),
        )
        return new

    @property
    def connections_in_use(self) -> int:
        """Connections of the pool currently held by a request or an open stream."""
        session = self._pool.session
        if session is None or session.closed or session.connector is None:
            return 0
        # aiohttp has no public counter; the connector's acquired set is what it limits.
        acquired: Any = getattr(session.connector, "_acquired", ())
        return len(acquired)

    def route(self, method: str, path: str) -> tuple[URL, map_errors]:
        """The absolute URL of an endpoint and the error translator naming it (cached)."""
        route = self._routes.get((method, path))
        if route is None:
            what = f"{method} {path}" if method != "STREAM" else f"POST {path} (stream)"
            url = URL(str(self.base_url) + path, encoded=True)
            route = self._routes[method, path] = (url, map_errors(what))
        return route

    def session(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running event loop."""
        pool = self._pool
        session = pool.session
        if session is not None and not self._closed:
            if pool.loop is not asyncio.get_running_loop():
                if pool.pid != os.getpid():
                    raise RuntimeError(
                        f"this AsyncClient opened its connections in process {pool.pid} and "
                        f"cannot be used in process {os.getpid()}, a child made by fork(): "
                        "create a new client in the child (or use the 'spawn' start method)"
                    )
                raise RuntimeError(
                    "this AsyncClient is bound to another event loop; create one client per loop "
                    "(or use reka_async.Client from synchronous code)"
                )
            return session
        if self._closed or pool.state is ClientState.CLOSED:
            raise RuntimeError("this client is closed; create a new one")
        pool.loop = asyncio.get_running_loop()
        pool.pid = os.getpid()
        if pool.connector_factory is not None:
            connector: aiohttp.BaseConnector = pool.connector_factory()
        else:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                ttl_dns_cache=300,
                enable_cleanup_closed=False,
                ssl=pool.ssl if pool.ssl is not None else True,
            )
        # Proxies come from proxy= or were read from the environment once (network.py), so
        # trust_env stays off: aiohttp would look them up in a thread on every request.
        pool.session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._stream_timeout,
            headers=pool.headers,
            proxy=pool.proxy,
            auto_decompress=True,
            raise_for_status=False,
            trust_env=False,
        )
        pool.state = ClientState.OPEN
        return pool.session

    async def aclose(self) -> None:
        """Close the session and its connections (a ``derive`` copy: only the copy). Safe to
        call more than once."""
        self._closed = True
        if not self.owns_pool:
            return
        pool = self._pool
        pool.state = ClientState.CLOSED
        session, pool.session = pool.session, None
        # Streams left open (a caller that never finished one) give their connections back
        # first: closing the session under them leaves aiohttp warning "Unclosed connection"
        # whenever their response objects are collected later.
        for body in list(pool.streams):
            body.close()
        if session is not None and not session.closed:
            await session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        opts: RequestOptions,
        parse: Callable[[bytes, str | None], T],
        bearer: bool = False,
    ) -> T:
        """Send a request with retries; return ``parse(body, request_id)`` of the 2xx response.

        ``parse`` decodes and structures the raw bytes (``request_id`` is the response's
        ``x-request-id``); any exception it raises becomes an ``APIResponseValidationError``.
        """
        route = self._routes.get((method, path))
        url, errors = route if route is not None else self.route(method, path)
        headers = opts.extra_headers
        if bearer:
            headers = {**self._bearer, **headers} if headers else self._bearer
        timeout = (
            self._plain_timeout if opts.timeout is self.timeout else opts.timeout.to_aiohttp_plain()
        )
        cooldown = self.cooldown
        quota = self.quota
        gated = self.budget is not None or opts.budget is not None
        hooks = opts.hooks  # None unless there are hooks: the loop then checks only that
        pool = self._pool
        # One transparent retry of a stale keep-alive connection (``_http/retry.py``).
        stale_retry = self.retry_policy.may_bill_twice
        attempt = 0
        while True:
            if gated or cooldown.deadline or quota.active:
                await self.before_send(opts)
            session = self.session()
            reused = stale_retry and has_idle(session)
            if hooks is not None:
                event = hooks.started(method, path, display_url(url), attempt, body, False)
            error: APIError
            try:
                with errors:
                    async with session.request(
                        method,
                        url,
                        data=body,
                        headers=headers,
                        timeout=timeout,
                        allow_redirects=False,
                    ) as resp:
                        raw = await read_body(resp, self.max_response_bytes)
            except APIConnectionError as exc:  # raised by map_errors: no complete answer
                error = exc
                if hooks is not None:
                    hooks.answered(event, status=None, headers=None, error=exc)
                if reused and stale_candidate(exc):
                    stale_retry = False
                    self._stale_retry(method, path, exc, attempt, opts)
                    continue  # not counted against max_retries: a fresh connection, at once
            else:
                remaining = resp.headers.get("x-ratelimit-remaining")
                if remaining is not None:
                    quota.observe(remaining, resp.headers)
                status = resp.status
                pool.last_headers = received = resp.headers
                if status < 300:
                    request_id = received.get("x-request-id")
                    try:
                        result = parse(raw, request_id)
                    except Exception as exc:  # any decode/shape failure: one typed error
                        invalid = invalid_body(status, request_id, raw, exc)
                        if hooks is not None:
                            hooks.answered(
                                event, status=status, headers=received, content=raw, error=invalid
                            )
                        raise invalid from exc
                    if hooks is not None:
                        hooks.answered(
                            event, status=status, headers=received, content=raw, response=result
                        )
                    return result
                error = status_error(status, received, raw)
                if hooks is not None:
                    hooks.answered(event, status=status, headers=received, content=raw, error=error)
            await self.wait_before_retry(method, path, error, attempt, opts)
            attempt += 1

    async def open_stream(
        self,
        path: str,
        *,
        body: bytes,
        opts: RequestOptions,
        bearer: bool = False,
        attempt: int = 0,
    ) -> StreamBody:
        """One attempt to open a streamed POST; returns its body once the headers are in.

        ``attempt`` (0 for the first) is what the hooks are told.

        Raises:
            APIStatusError: a non-2xx answer.
            APIConnectionError: no answer (``APITimeoutError`` on a timeout).
        """
        if (
            self.cooldown.deadline
            or self.quota.active
            or self.budget is not None
            or opts.budget is not None
        ):
            await self.before_send(opts)
        session = self.session()
        url, errors = self.route("STREAM", path)
        headers = {"Accept": "text/event-stream", **(opts.extra_headers or {})}
        if bearer:
            headers.update(self._bearer)
        timeout = (
            self._stream_timeout if opts.timeout is self.timeout else opts.timeout.to_aiohttp()
        )
        hooks = opts.hooks
        stale_retry = self.retry_policy.may_bill_twice
        while True:
            reused = stale_retry and has_idle(session)
            if hooks is not None:
                event = hooks.started("POST", path, display_url(url), attempt, body, True)
            try:
                with errors:
                    resp = await session.post(
                        url, data=body, headers=headers, timeout=timeout, allow_redirects=False
                    )
                break
            except APIConnectionError as exc:
                if hooks is not None:
                    hooks.answered(event, status=None, headers=None, error=exc)
                if not (reused and stale_candidate(exc)):
                    raise
                stale_retry = False  # a stale pooled connection: once more, on a new one
                self._stale_retry("POST", path, exc, attempt, opts)
        self._pool.last_headers = resp.headers
        remaining = resp.headers.get("x-ratelimit-remaining")
        if remaining is not None:
            self.quota.observe(remaining, resp.headers)
        if resp.status >= 300:
            try:
                with errors:
                    raw = await read_body(resp, self.max_response_bytes)
            except APIConnectionError as exc:
                if hooks is not None:
                    hooks.answered(event, status=resp.status, headers=resp.headers, error=exc)
                raise
            finally:
                resp.release()
            error = status_error(resp.status, resp.headers, raw)
            if hooks is not None:
                hooks.answered(
                    event, status=resp.status, headers=resp.headers, content=raw, error=error
                )
            raise error
        if hooks is not None:
            hooks.answered(event, status=resp.status, headers=resp.headers)
        stream_body = StreamBody(resp, errors)
        self._pool.streams.add(stream_body)
        return stream_body
