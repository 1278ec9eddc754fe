"""``Transport``: owns the aiohttp session, sends requests with the retry policy, and opens
streams as plain byte sources.

This is the hot path of every call: one coroutine frame for the whole exchange, retries
included, and errors translated by ``map_errors`` at the one boundary.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import logging
import os
import weakref
from collections.abc import Callable, Mapping
from ssl import SSLContext
from typing import Any, TypeVar

import aiohttp
import attrs
from yarl import URL

from .._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    InsufficientCreditsError,
    RateLimitError,
    ResponseTooLargeError,
)
from .._version import __version__
from .budget import RateBudget
from .errors import invalid_body, map_errors, stale_candidate, status_error
from .hooks import Hooks
from .network import ConnectorFactory, display_url, is_loopback
from .options import RequestOptions, Timeout, chain_retry_hooks
from .quota import Quota, quota_spent
from .retry import Cooldown, RetryEvent, RetryHook, RetryPolicy

__all__ = ["ClientState", "StreamBody", "Transport", "check_base_url", "read_body"]

logger = logging.getLogger("reka_async")

T = TypeVar("T")

USER_AGENT = f"reka-async/{__version__}"


class ClientState(enum.Enum):
    """The lifecycle of a client: no session yet, a live session, or closed for good."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> URL:
    """The parsed base URL, or ``ValueError`` saying what to fix."""
    url = URL(base_url.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            "base_url: must be an http(s) URL such as https://api.reka.ai/v1, got "
            f"{display_url(url) if url.host else repr(base_url)}"
        )
    if url.scheme == "http" and not is_loopback(url.host) and not allow_insecure_http:
        raise ValueError(
            f"base_url: refusing to send the API key over plain http to {url.host}; use https, "
            "or pass allow_insecure_http=True if this network is trusted"
        )
    return url


def too_large(limit: int, what: str, request_id: str | None) -> ResponseTooLargeError:
    """The error for a body (``what``) over the client's ``max_response_bytes``."""
    return ResponseTooLargeError(
        f"{what} is larger than max_response_bytes ({limit} bytes); nothing more was read. "
        "Raise the client's max_response_bytes if answers this large are expected",
        limit=limit,
        request_id=request_id,
    )


async def read_body(resp: aiohttp.ClientResponse, limit: int | None) -> bytes:
    """The whole body (decompressed), or ``ResponseTooLargeError`` once it passes ``limit``.

    The connection is dropped at once when the limit is passed: a hostile or broken server
    (an endless body, a compression bomb) costs at most ``limit`` bytes of memory.
    """
    if limit is None:
        return await resp.read()
    content = resp.content
    parts: list[bytes] = []
    size = 0
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            resp.close()
            raise too_large(limit, "the response body", resp.headers.get("x-request-id"))
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class StreamBody:
    """The body of a streamed response as a byte source; the stream above never sees aiohttp.

    ``read()`` returns the next bytes (``b""`` at the end) and raises our errors only.
    """

    __slots__ = ("__weakref__", "_errors", "_resp", "headers")

    def __init__(self, resp: aiohttp.ClientResponse, errors: map_errors) -> None:
        self._resp = resp
        self._errors = errors
        self.headers: Mapping[str, str] = resp.headers

    @property
    def closed(self) -> bool:
        """Whether the connection was released or closed."""
        return self._resp.closed

    async def read(self) -> bytes:
        """The bytes available next (waiting for some), or ``b""`` at the end of the body."""
        with self._errors:
            return await self._resp.content.readany()

    def release(self) -> None:
        """Hand the connection back to the pool (the body was read to the end)."""
        self._resp.release()

    def close(self) -> None:
        """Drop the connection (an unread body must not be reused). Synchronous."""
        self._resp.close()


def _has_idle(session: aiohttp.ClientSession) -> bool:
    """Whether the pool holds an idle keep-alive connection (the next request reuses one).

    aiohttp keeps no public count; its connector's ``_conns`` holds the idle ones, keyed by
    host and dropped when empty. Without it (another connector), assume a reuse, as aiohttp's
    own retry of idempotent requests does.
    """
    return bool(getattr(session.connector, "_conns", True))


class _Pool:
    """What a client shares with its ``with_options`` copies: the session and its loop, the
    pool's lifecycle, how it connects, and the last response headers (rate limits are per key).
    """

    __slots__ = (
        "connector_factory",
        "headers",
        "last_headers",
        "loop",
        "pid",
        "proxy",
        "session",
        "ssl",
        "state",
        "streams",
    )

    def __init__(
        self,
        *,
        headers: dict[str, str],
        proxy: URL | None,
        ssl: SSLContext | None,
        connector_factory: ConnectorFactory | None,
    ) -> None:
        self.headers = headers
        self.proxy = proxy
        self.ssl = ssl
        self.connector_factory = connector_factory
        self.session: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0  # the process that opened the session (a fork's child may not use it)
        self.state = ClientState.UNOPENED
        #: Stream bodies handed out and not yet collected (closed on ``aclose``).
        self.streams: weakref.WeakSet[StreamBody] = weakref.WeakSet()
        #: The headers of the most recent HTTP answer (any status), read by ``rate_limit``.
        self.last_headers: Mapping[str, str] | None = None


class Transport:
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
        self._bearer = {"Authorization": f"Bearer {api_key}"}
        self._pool = _Pool(
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

    async def wait_before_retry(
        self, method: str, path: str, error: APIError, attempt: int, opts: RequestOptions
    ) -> None:
        """Sleep before the next attempt, or raise ``error`` when it must not be retried.

        Two kinds of rate-limit 429 (see ``_http/quota.py``): one whose headers say the key's
        quota is spent (``x-ratelimit-remaining: 0``) trips the client's shared cooldown, so
        every other request of this client waits too; one that does not (an overload answer)
        delays this request alone.
        """
        policy = self.retry_policy
        delay = policy.delay_for(error, attempt, opts.max_retries)
        rate_limited = isinstance(error, RateLimitError) and not isinstance(
            error, InsufficientCreditsError
        )
        spent = rate_limited and isinstance(error, APIStatusError) and quota_spent(error.headers)
        if delay is None:
            if spent and isinstance(error, APIStatusError):
                # Out of retries, but the other requests of this client must still back off.
                wait = error.retry_after
                if wait is not None and wait <= policy.max_server_wait:
                    self.cooldown.trip(wait)
            raise error
        if spent:
            self.cooldown.trip(delay)
        may_bill_twice = policy.retry_may_bill_twice(error)
        logger.info(
            "retrying %s %s in %.2f s (attempt %d of %d failed%s): %s",
            method,
            path,
            delay,
            attempt + 1,
            opts.max_retries + 1,
            "; it may have reached the server, so this retry may bill twice"
            if may_bill_twice
            else "",
            error,
        )
        if opts.on_retry is not None:
            opts.on_retry(
                RetryEvent(
                    method=method,
                    path=path,
                    attempt=attempt,
                    error=error,
                    delay=delay,
                    rate_limited=rate_limited,
                    quota_spent=spent,
                    may_bill_twice=may_bill_twice,
                )
            )
        if spent:
            await self.cooldown.wait()
        else:
            await asyncio.sleep(delay)

    def _stale_retry(
        self, method: str, path: str, error: APIError, attempt: int, opts: RequestOptions
    ) -> None:
        """Report the transparent retry of a stale keep-alive connection: it may bill twice
        (``_http/retry.py``), so the retry hook and the log see it like any other retry."""
        logger.info(
            "retrying %s %s at once on a new connection (may bill twice: a reused connection "
            "failed before any answer): %s",
            method,
            path,
            error,
        )
        if opts.on_retry is not None:
            opts.on_retry(
                RetryEvent(
                    method=method,
                    path=path,
                    attempt=attempt,
                    error=error,
                    delay=0.0,
                    rate_limited=False,
                    may_bill_twice=True,
                )
            )

    async def before_send(self, opts: RequestOptions) -> None:
        """Wait for the shared cooldown, the key's window and the rate budgets (the slow path
        of every attempt: the request loop calls it only when one of them is in play)."""
        cooldown = self.cooldown
        if cooldown.deadline:
            await cooldown.wait()
        quota = self.quota
        if quota.active:
            pause = quota.before_send()
            if pause:
                cooldown.trip(pause)
                await cooldown.wait()
        if self.budget is not None and self.budget.requests is not None:
            await self.budget.requests.acquire()
        budget = opts.budget
        if budget is not None and budget.requests is not None:
            await budget.requests.acquire()

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
            reused = stale_retry and _has_idle(session)
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
            reused = stale_retry and _has_idle(session)
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
