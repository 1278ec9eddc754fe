"""The HTTP layer: owns the aiohttp session, applies timeouts and the one retry policy, and
translates every third-party exception into ``_exceptions`` exactly once.

Retry policy (``RetryPolicy.delay_for``) is the only place that decides whether and how long to
wait before trying again; streams and plain requests both go through it.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import attrs
from yarl import URL

from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    InsufficientCreditsError,
    RateLimitError,
    body_snippet,
    make_status_error,
)
from ._version import __version__

__all__ = ["Cooldown", "RequestOptions", "RetryEvent", "RetryPolicy", "Timeout", "Transport"]

logger = logging.getLogger("reka_async")

T = TypeVar("T")

USER_AGENT = f"reka-async/{__version__}"


@attrs.frozen(kw_only=True)
class Timeout:
    """Timeouts in seconds; ``None`` disables one.

    Attributes:
        connect: to open a TCP/TLS connection (time waiting for a free pool slot excluded).
        read: for streams, the longest gap between two reads (the wait for the first event
            included). A plain request's answer arrives whole once it is generated, so there it
            bounds the wait for the complete response of one attempt, i.e. generation time.
        total: the whole request, body or stream included, for one attempt.
    """

    connect: float | None = 10.0
    read: float | None = 120.0
    total: float | None = 600.0

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        """The equivalent ``aiohttp.ClientTimeout`` for a stream (a read gap re-armed per read)."""
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )

    def to_aiohttp_plain(self) -> aiohttp.ClientTimeout:
        """The ``aiohttp.ClientTimeout`` for a plain request: one deadline, ``min(read, total)``.

        Cheaper than a per-read timer (aiohttp re-arms ``sock_read`` on every packet, which
        showed in the request profile) and, for a body that arrives whole, the same bound.
        """
        limits = [t for t in (self.read, self.total) if t is not None]
        return aiohttp.ClientTimeout(
            total=min(limits) if limits else None, sock_connect=self.connect
        )


TimeoutLike = Timeout | float | None


def as_timeout(value: TimeoutLike, default: Timeout) -> Timeout:
    """A ``Timeout`` from a ``Timeout``, a number (total seconds, capping read) or ``None``."""
    if isinstance(value, Timeout):
        return value
    if value is None:
        return Timeout(connect=None, read=None, total=None)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(
            f"timeout: must be a positive number of seconds or a Timeout, got {value!r}"
        )
    read = default.read if default.read is None else min(default.read, float(value))
    connect = default.connect if default.connect is None else min(default.connect, float(value))
    return Timeout(connect=connect, read=read, total=float(value))


@attrs.frozen(kw_only=True)
class RetryEvent:
    """What a retry hook receives before the client sleeps and tries again.

    Attributes:
        method: HTTP method.
        path: the endpoint path, e.g. ``/chat``.
        attempt: the attempt that failed (0 is the first).
        error: the error of that attempt.
        delay: seconds until the next attempt.
        rate_limited: true when the server asked us to slow down (429).
    """

    method: str
    path: str
    attempt: int
    error: APIError
    delay: float
    rate_limited: bool


RetryHook = Callable[[RetryEvent], None]


def _quota_exhausted(remaining: str | None) -> bool:
    """Whether ``x-ratelimit-remaining`` allows reading ``x-ratelimit-reset`` as a wait.

    The reset time is sent on every response; while requests remain in the window it is only
    when the window rolls over, not a delay to honour (a 500 must not wait for it).
    """
    if remaining is None:
        return True
    try:
        return float(remaining) <= 0
    except ValueError:
        return True


def _parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The delay the server asks for, in seconds, from the documented headers."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
                return max(0.0, parsed.timestamp() - now)
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
    value = headers.get("x-ratelimit-reset")
    if value and _quota_exhausted(headers.get("x-ratelimit-remaining")):
        try:
            reset = float(value)
        except ValueError:
            return None
        # Epoch seconds per the contract; a small number is taken as "seconds from now".
        return max(0.0, reset - now) if reset > 1e9 else max(0.0, reset)
    return None


_RETRY_STATUSES = frozenset((408, 409, 429))


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When to retry and how long to wait.

    Attributes:
        max_retries: retries after the first attempt.
        base: first backoff step; the n-th retry waits ``min(base * 2**n, cap)`` with jitter.
        cap: ceiling of the computed backoff.
        max_server_wait: the longest server-requested wait that is honoured by sleeping; a longer
            one is raised at once with ``retry_after`` on the error instead of sleeping silently.
    """

    max_retries: int = 2
    base: float = 0.5
    cap: float = 8.0
    max_server_wait: float = 120.0

    @staticmethod
    def is_retryable(error: APIError) -> bool:
        """Whether an error may succeed on another attempt."""
        if isinstance(error, InsufficientCreditsError):
            return False
        if isinstance(error, APIStatusError):
            return error.status_code in _RETRY_STATUSES or error.status_code >= 500
        return isinstance(error, APIConnectionError)

    def delay_for(self, error: APIError, attempt: int, max_retries: int) -> float | None:
        """Seconds to wait before retrying after ``attempt`` failed, or ``None`` to give up."""
        if attempt >= max_retries or not self.is_retryable(error):
            return None
        server_wait = error.retry_after if isinstance(error, APIStatusError) else None
        if server_wait is not None:
            if server_wait > self.max_server_wait:
                return None
            # A little jitter on top so many clients do not return in the same millisecond.
            return server_wait + random.uniform(0, min(0.25, 0.1 * server_wait + 0.05))
        backoff = min(self.base * 2.0**attempt, self.cap)
        return backoff * random.uniform(0.75, 1.0)


class Cooldown:
    """A shared pause: after a rate-limit 429 no request of this client starts until it ends."""

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until = 0.0

    def __repr__(self) -> str:
        return f"<Cooldown remaining={self.remaining():.3f}s>"

    def remaining(self) -> float:
        """Seconds until requests may start again (0 when not cooling down)."""
        return max(0.0, self._until - time.monotonic())

    def trip(self, seconds: float) -> None:
        """Extend the pause to at least ``seconds`` from now."""
        self._until = max(self._until, time.monotonic() + seconds)

    async def wait(self) -> None:
        """Sleep until the pause is over (returns at once when there is none)."""
        # Another 429 may extend the deadline while we sleep, hence the loop.
        while (left := self._until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)


@attrs.frozen(kw_only=True)
class RequestOptions:
    """Per-request settings resolved against the client's defaults."""

    timeout: Timeout
    max_retries: int
    extra_headers: Mapping[str, str] | None = None
    on_retry: RetryHook | None = None


def translate_exception(exc: BaseException, what: str) -> APIError:
    """Map an aiohttp/asyncio exception to ours. The one place that knows their types."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return APITimeoutError(f"{what}: timed out ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(f"{what}: the connection broke while reading the body")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return APIConnectionError(f"{what}: the server closed the connection without answering")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(f"{what}: cannot connect ({exc.os_error.strerror or exc})")
    return APIConnectionError(f"{what}: {type(exc).__name__}: {exc}")


_TRANSLATED = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _invalid_body(
    resp: aiohttp.ClientResponse, status: int, raw: bytes, exc: Exception
) -> APIResponseValidationError:
    return APIResponseValidationError(
        f"HTTP {status}: the response is not valid JSON of the expected shape "
        f"({type(exc).__name__}); body starts: {body_snippet(raw)!r}",
        status_code=status,
        body=raw.decode("utf-8", "replace"),
        request_id=resp.headers.get("x-request-id"),
    )


class Transport:
    """Owns one ``aiohttp.ClientSession`` (created lazily inside the running loop)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: Timeout,
        max_retries: int,
        max_connections: int,
        retry_policy: RetryPolicy,
        default_headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
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
        self.base_url = url
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_connections = max_connections
        self.retry_policy = retry_policy
        self.cooldown = Cooldown()
        self._client_timeout = timeout.to_aiohttp()
        self._plain_timeout = timeout.to_aiohttp_plain()
        self._headers = {
            "X-Api-Key": api_key,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(default_headers or {}),
        }
        self._default_options = RequestOptions(timeout=timeout, max_retries=max_retries)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._urls: dict[str, URL] = {}

    @property
    def is_open(self) -> bool:
        """True while a session exists and is not closed."""
        return self._session is not None and not self._session.closed

    @property
    def closed(self) -> bool:
        """True after ``aclose()``."""
        return self._closed

    def url(self, path: str) -> URL:
        """The absolute URL of an endpoint path (cached)."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(str(self.base_url) + path, encoded=True)
        return url

    def session(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running event loop."""
        if self._session is not None:
            if self._loop is not asyncio.get_running_loop():
                raise RuntimeError(
                    "this AsyncClient is bound to another event loop; create one client per loop "
                    "(or use reka_async.Client from synchronous code)"
                )
            return self._session
        if self._closed:
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
            timeout=self._client_timeout,
            headers=self._headers,
            auto_decompress=True,
            raise_for_status=False,
            trust_env=False,
        )
        return self._session

    async def aclose(self) -> None:
        """Close the session and its connections. Safe to call more than once."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def headers_for(self, opts: RequestOptions) -> Mapping[str, str] | None:
        """Extra headers for one request (the session already sends the defaults)."""
        return opts.extra_headers or None

    def client_timeout(self, opts: RequestOptions) -> aiohttp.ClientTimeout:
        """The aiohttp timeout for one stream."""
        if opts.timeout is self.timeout:
            return self._client_timeout
        return opts.timeout.to_aiohttp()

    def plain_timeout(self, opts: RequestOptions) -> aiohttp.ClientTimeout:
        """The aiohttp timeout for one plain (non-streamed) request."""
        if opts.timeout is self.timeout:
            return self._plain_timeout
        return opts.timeout.to_aiohttp_plain()

    def options(
        self,
        *,
        timeout: TimeoutLike | Any = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        on_retry: RetryHook | None = None,
        timeout_given: bool = False,
    ) -> RequestOptions:
        """Resolve per-request overrides against the client defaults."""
        if not timeout_given and max_retries is None and not extra_headers and on_retry is None:
            return self._default_options  # the common case allocates nothing
        if max_retries is not None and (isinstance(max_retries, bool) or max_retries < 0):
            raise ValueError(f"max_retries: must be a non-negative integer, got {max_retries!r}")
        if extra_headers and any(k.lower() == "x-api-key" for k in extra_headers):
            raise ValueError("extra_headers: set the API key with api_key=, not a header")
        return RequestOptions(
            timeout=as_timeout(timeout, self.timeout) if timeout_given else self.timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            extra_headers=extra_headers,
            on_retry=on_retry,
        )

    async def wait_before_retry(
        self, method: str, path: str, error: APIError, attempt: int, opts: RequestOptions
    ) -> None:
        """Sleep before the next attempt, or raise ``error`` when it must not be retried.

        A rate-limit 429 trips the client's shared cooldown so that every other request of this
        client waits too, instead of each hammering the API on its own.
        """
        delay = self.retry_policy.delay_for(error, attempt, opts.max_retries)
        rate_limited = isinstance(error, RateLimitError) and not isinstance(
            error, InsufficientCreditsError
        )
        if delay is None:
            if rate_limited and isinstance(error, APIStatusError):
                # Out of retries, but the other requests of this client must still back off.
                wait = error.retry_after
                if wait is not None and wait <= self.retry_policy.max_server_wait:
                    self.cooldown.trip(wait)
            raise error
        if rate_limited:
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
                )
            )
        if rate_limited:
            await self.cooldown.wait()
        else:
            await asyncio.sleep(delay)

    def status_error(self, resp: aiohttp.ClientResponse, raw: bytes) -> APIStatusError:
        """The typed error for a non-2xx response."""
        headers = resp.headers
        retry_after = None
        if resp.status == 429 or resp.status >= 500 or resp.status in (408, 409):
            retry_after = _parse_retry_after(headers, time.time())
        lowered = {k.lower(): v for k, v in headers.items()}
        if 300 <= resp.status < 400:
            location = headers.get("Location", "?")
            return APIStatusError(
                f"HTTP {resp.status}: the server redirected to {location}; redirects are not "
                "followed so the API key is never sent elsewhere. Check base_url.",
                status_code=resp.status,
                body=raw.decode("utf-8", "replace"),
                headers=lowered,
                request_id=headers.get("x-request-id"),
            )
        return make_status_error(resp.status, raw, lowered, retry_after=retry_after)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        opts: RequestOptions,
        parse: Callable[[bytes], T],
    ) -> T:
        """Send a request with retries; return ``parse(body)`` of the 2xx response body.

        ``parse`` decodes and structures the raw bytes; any exception it raises becomes an
        ``APIResponseValidationError``.
        """
        # One coroutine frame for the whole exchange, retries included: this is the hot path.
        url = self.url(path)
        timeout = self.plain_timeout(opts)
        attempt = 0
        while True:
            if self.cooldown._until:
                await self.cooldown.wait()
            session = self.session()
            error: APIError
            try:
                async with session.request(
                    method,
                    url,
                    data=body,
                    headers=opts.extra_headers,
                    timeout=timeout,
                    allow_redirects=False,
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
                    if status < 300:
                        try:
                            return parse(raw)
                        except Exception as exc:  # any decode/shape failure: one typed error
                            raise _invalid_body(resp, status, raw, exc) from exc
                    error = self.status_error(resp, raw)
            except _TRANSLATED as exc:
                error = translate_exception(exc, f"{method} {path}")
                error.__cause__ = exc
            await self.wait_before_retry(method, path, error, attempt, opts)
            attempt += 1

    async def open_stream(
        self, path: str, *, body: bytes, opts: RequestOptions
    ) -> aiohttp.ClientResponse:
        """One attempt to open a streamed POST; returns the response once headers are in."""
        if self.cooldown._until:
            await self.cooldown.wait()
        session = self.session()
        what = f"POST {path} (stream)"
        headers = {"Accept": "text/event-stream", **(opts.extra_headers or {})}
        try:
            resp = await session.post(
                self.url(path),
                data=body,
                headers=headers,
                timeout=self.client_timeout(opts),
                allow_redirects=False,
            )
        except _TRANSLATED as exc:
            raise translate_exception(exc, what) from exc
        if resp.status >= 300:
            try:
                raw = await resp.read()
            except _TRANSLATED as exc:
                raise translate_exception(exc, what) from exc
            finally:
                resp.release()
            raise self.status_error(resp, raw)
        return resp
