"""``Transport``: owns the aiohttp session, sends requests with the retry policy, and opens
streams as plain byte sources.

This is the hot path of every call: one coroutine frame for the whole exchange, retries
included, and errors translated by ``map_errors`` at the one boundary.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from .._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    InsufficientCreditsError,
    RateLimitError,
)
from .._version import __version__
from .budget import RateBudget
from .errors import invalid_body, map_errors, status_error
from .options import RequestOptions, Timeout
from .quota import Quota, quota_spent
from .retry import Cooldown, RetryEvent, RetryPolicy

__all__ = ["ClientState", "StreamBody", "Transport", "check_base_url"]

logger = logging.getLogger("reka_async")

T = TypeVar("T")

USER_AGENT = f"reka-async/{__version__}"


class ClientState(enum.Enum):
    """The lifecycle of a client: no session yet, a live session, or closed for good."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> URL:
    """The parsed base URL, or ``ValueError`` saying what to fix."""
    url = URL(base_url.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url: must be an http(s) URL such as https://api.reka.ai/v1, got {base_url!r}"
        )
    if url.scheme == "http" and not _is_loopback(url.host) and not allow_insecure_http:
        raise ValueError(
            f"base_url: refusing to send the API key over plain http to {url.host}; use https, "
            "or pass allow_insecure_http=True if this network is trusted"
        )
    return url


class StreamBody:
    """The body of a streamed response as a byte source; the stream above never sees aiohttp.

    ``read()`` returns the next bytes (``b""`` at the end) and raises our errors only.
    """

    __slots__ = ("_errors", "_resp", "headers")

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


class Transport:
    """Owns one ``aiohttp.ClientSession`` (created lazily inside the running loop)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: URL,
        timeout: Timeout,
        retry_policy: RetryPolicy,
        max_connections: int,
        default_headers: Mapping[str, str] | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.max_connections = max_connections
        self.cooldown = Cooldown()
        #: The client's rate budget (``AsyncClient(rpm=, tpm=)``), or ``None``.
        self.budget = budget
        #: The key's window as the server's x-ratelimit-* headers describe it.
        self.quota = Quota(slack=max_connections, max_wait=retry_policy.max_server_wait)
        self.state = ClientState.UNOPENED
        self.default_options = RequestOptions(timeout=timeout, max_retries=retry_policy.max_retries)
        self._stream_timeout = timeout.to_aiohttp()
        self._plain_timeout = timeout.to_aiohttp_plain()
        self._headers = {
            "X-Api-Key": api_key,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(default_headers or {}),
        }
        # The OpenAI dialect's auth header, sent beside X-Api-Key on its requests only.
        self._bearer = {"Authorization": f"Bearer {api_key}"}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routes: dict[tuple[str, str], tuple[URL, map_errors]] = {}

    def __repr__(self) -> str:
        return f"<Transport {str(self.base_url)!r} {self.state.value}>"

    @property
    def connections_in_use(self) -> int:
        """Connections of the pool currently held by a request or an open stream."""
        session = self._session
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
        if self._session is not None:
            if self._loop is not asyncio.get_running_loop():
                raise RuntimeError(
                    "this AsyncClient is bound to another event loop; create one client per loop "
                    "(or use reka_async.Client from synchronous code)"
                )
            return self._session
        if self.state is ClientState.CLOSED:
            raise RuntimeError("this client is closed; create a new one")
        self._loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            limit_per_host=0,
            ttl_dns_cache=300,
            enable_cleanup_closed=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._stream_timeout,
            headers=self._headers,
            auto_decompress=True,
            raise_for_status=False,
            trust_env=False,
        )
        self.state = ClientState.OPEN
        return self._session

    async def aclose(self) -> None:
        """Close the session and its connections. Safe to call more than once."""
        self.state = ClientState.CLOSED
        session, self._session = self._session, None
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
        logger.info(
            "retrying %s %s in %.2f s (attempt %d of %d failed): %s",
            method,
            path,
            delay,
            attempt + 1,
            opts.max_retries + 1,
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
                )
            )
        if spent:
            await self.cooldown.wait()
        else:
            await asyncio.sleep(delay)

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
        parse: Callable[[bytes], T],
        bearer: bool = False,
    ) -> T:
        """Send a request with retries; return ``parse(body)`` of the 2xx response body.

        ``parse`` decodes and structures the raw bytes; any exception it raises becomes an
        ``APIResponseValidationError``.
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
        attempt = 0
        while True:
            if gated or cooldown.deadline or quota.active:
                await self.before_send(opts)
            session = self.session()
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
                        raw = await resp.read()
            except APIConnectionError as exc:  # raised by map_errors: no complete answer
                error = exc
            else:
                remaining = resp.headers.get("x-ratelimit-remaining")
                if remaining is not None:
                    quota.observe(remaining, resp.headers)
                status = resp.status
                if status < 300:
                    try:
                        return parse(raw)
                    except Exception as exc:  # any decode/shape failure: one typed error
                        request_id = resp.headers.get("x-request-id")
                        raise invalid_body(status, request_id, raw, exc) from exc
                error = status_error(status, resp.headers, raw)
            await self.wait_before_retry(method, path, error, attempt, opts)
            attempt += 1

    async def open_stream(
        self, path: str, *, body: bytes, opts: RequestOptions, bearer: bool = False
    ) -> StreamBody:
        """One attempt to open a streamed POST; returns its body once the headers are in.

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
        with errors:
            resp = await session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
        remaining = resp.headers.get("x-ratelimit-remaining")
        if remaining is not None:
            self.quota.observe(remaining, resp.headers)
        if resp.status >= 300:
            try:
                with errors:
                    raw = await resp.read()
            finally:
                resp.release()
            raise status_error(resp.status, resp.headers, raw)
        return StreamBody(resp, errors)
