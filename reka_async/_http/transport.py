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
import os
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
    ResponseTooLargeError,
)
from .._version import __version__
from .errors import invalid_body, map_errors, status_error
from .options import RequestOptions, Timeout
from .retry import Cooldown, RetryEvent, RetryPolicy

__all__ = ["ClientState", "StreamBody", "Transport", "check_base_url", "read_body"]

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
        max_response_bytes: int | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.max_connections = max_connections
        #: The largest body, or stream event, read from a response (``None``: no limit).
        self.max_response_bytes = max_response_bytes
        self.cooldown = Cooldown()
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
        self._pid = 0  # the process that opened the session (a fork's child may not use it)
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
                if self._pid != os.getpid():
                    raise RuntimeError(
                        f"this AsyncClient opened its connections in process {self._pid} and "
                        f"cannot be used in process {os.getpid()}, a child made by fork(): "
                        "create a new client in the child (or use the 'spawn' start method)"
                    )
                raise RuntimeError(
                    "this AsyncClient is bound to another event loop; create one client per loop "
                    "(or use reka_async.Client from synchronous code)"
                )
            return self._session
        if self.state is ClientState.CLOSED:
            raise RuntimeError("this client is closed; create a new one")
        self._loop = asyncio.get_running_loop()
        self._pid = os.getpid()
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

        A rate-limit 429 trips the client's shared cooldown so that every other request of this
        client waits too, instead of each hammering the API on its own.
        """
        policy = self.retry_policy
        delay = policy.delay_for(error, attempt, opts.max_retries)
        rate_limited = isinstance(error, RateLimitError) and not isinstance(
            error, InsufficientCreditsError
        )
        if delay is None:
            if rate_limited and isinstance(error, APIStatusError):
                # Out of retries, but the other requests of this client must still back off.
                wait = error.retry_after
                if wait is not None and wait <= policy.max_server_wait:
                    self.cooldown.trip(wait)
            raise error
        if rate_limited:
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
                    may_bill_twice=may_bill_twice,
                )
            )
        if rate_limited:
            await self.cooldown.wait()
        else:
            await asyncio.sleep(delay)

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
        attempt = 0
        while True:
            if cooldown.deadline:
                await cooldown.wait()
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
                        raw = await read_body(resp, self.max_response_bytes)
            except APIConnectionError as exc:  # raised by map_errors: no complete answer
                error = exc
            else:
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
        if self.cooldown.deadline:
            await self.cooldown.wait()
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
        if resp.status >= 300:
            try:
                with errors:
                    raw = await read_body(resp, self.max_response_bytes)
            finally:
                resp.release()
            raise status_error(resp.status, resp.headers, raw)
        return StreamBody(resp, errors)
