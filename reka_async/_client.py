"""``AsyncClient``: one connection pool, its configuration, its lifecycle; ``client.chat`` and
``client.models`` (``_chat.py``) send through it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import Final, TypedDict

import attrs

from ._chat import AsyncChat, AsyncModels
from ._http import (
    DEFAULT_TIMEOUT,
    ClientState,
    RetryPolicy,
    Timeout,
    TimeoutLike,
    Transport,
    check_base_url,
    coerce_timeout,
)
from ._http.options import (
    DEFAULT_MAX_RESPONSE_BYTES,
    check_max_response_bytes,
    check_max_retries,
    resolve_api_key,
)
from ._types import Api
from ._wire.dialects import DIALECTS, check_api

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_CONNECTIONS", "AsyncClient", "ClientOptions"]

DEFAULT_BASE_URL: Final = "https://api.reka.ai/v1"
DEFAULT_MAX_CONNECTIONS: Final = 1024


class ClientOptions(TypedDict, total=False):
    """The keyword options of ``AsyncClient`` (and of the sync ``Client``, which passes them
    on); each is documented on ``AsyncClient``. A test pins these keys to its signature."""

    api: Api
    max_retries: int | None
    timeout: TimeoutLike
    max_connections: int
    max_retry_wait: float | None
    retry_policy: RetryPolicy | None
    default_headers: Mapping[str, str] | None
    allow_insecure_http: bool
    max_response_bytes: int | None


class AsyncClient:
    """Async client for the Reka Chat API.

    Use it as ``async with AsyncClient() as client: ...`` or call ``await client.aclose()``.
    One client holds one connection pool; share it across tasks rather than making one per call.

    Args:
        api_key: the API key; default ``REKA_API_KEY`` from the environment. Surrounding
            whitespace (a newline read from a secrets file) is stripped.
        base_url: default ``REKA_BASE_URL``, else ``https://api.reka.ai/v1``.
        api: the default dialect: ``"native"`` (``POST /chat``) or ``"openai"`` (the
            compatible ``POST /chat/completions``); a call may override it with ``api=``.
            Research, structured outputs and ``reka-flash-research`` always use the latter.
        max_retries: retries per request (408, 409, rate-limit 429, 5xx, connection errors and
            timeouts); 0 disables them. Default: ``retry_policy.max_retries`` (2).
        timeout: a ``Timeout`` (connect/read/total), seconds (the total of one attempt, also
            capping connect and read), or ``None`` for none.
        max_connections: size of the connection pool (the most requests in flight at once).
        max_retry_wait: the longest server-requested wait (``retry-after``) slept through;
            a longer one is raised at once with ``retry_after`` on the error. Default:
            ``retry_policy.max_server_wait`` (120 s).
        retry_policy: the whole ``RetryPolicy`` (backoff base and cap too); ``max_retries``
            and ``max_retry_wait``, when given, override its fields.
        default_headers: headers sent with every request.
        allow_insecure_http: allow ``http://`` to a host that is not loopback.
        max_response_bytes: the largest response body (after decompression), and the
            largest single stream event, that is read; a larger one raises
            ``ResponseTooLargeError``. Default 64 MiB; ``None`` for no limit.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
        InvalidRequestError: the key holds a control character (the message names the key,
            never its value).
        ValueError: an option is invalid (the message says which and why).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        api: Api = "native",
        max_retries: int | None = None,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_retry_wait: float | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        key = resolve_api_key(api_key)
        url = check_base_url(
            base_url or os.environ.get("REKA_BASE_URL") or DEFAULT_BASE_URL,
            allow_insecure_http=allow_insecure_http,
        )
        check_max_retries(max_retries, allow_none=True)
        check_max_response_bytes(max_response_bytes)
        dialect = DIALECTS[check_api(api)]
        if isinstance(max_connections, bool) or max_connections < 1:
            raise ValueError(f"max_connections: must be at least 1, got {max_connections!r}")
        policy = retry_policy if retry_policy is not None else RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        if max_retry_wait is not None:
            policy = attrs.evolve(policy, max_server_wait=max_retry_wait)
        self._transport = Transport(
            api_key=key,
            base_url=url,
            timeout=coerce_timeout(timeout),
            retry_policy=policy,
            max_connections=max_connections,
            default_headers=default_headers,
            max_response_bytes=max_response_bytes,
        )
        self.chat: Final = AsyncChat(self._transport, dialect)
        self.models: Final = AsyncModels(self._transport)

    def __repr__(self) -> str:
        t = self._transport
        return f"<AsyncClient base_url={str(t.base_url)!r} {t.state.value}>"

    @property
    def base_url(self) -> str:
        """The API base URL this client talks to."""
        return str(self._transport.base_url)

    @property
    def api(self) -> Api:
        """The default dialect of chat calls."""
        return self.chat.api

    @property
    def timeout(self) -> Timeout:
        """The default timeout of every request."""
        return self._transport.timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy of every request."""
        return self._transport.retry_policy

    @property
    def max_connections(self) -> int:
        """Size of the connection pool."""
        return self._transport.max_connections

    @property
    def max_retries(self) -> int:
        """Default retries per request."""
        return self._transport.retry_policy.max_retries

    @property
    def max_response_bytes(self) -> int | None:
        """The largest response body or stream event read (``None``: no limit)."""
        return self._transport.max_response_bytes

    @property
    def state(self) -> ClientState:
        """``UNOPENED`` (no connection yet), ``OPEN`` or ``CLOSED``: a ``ClientState``."""
        return self._transport.state

    @property
    def is_closed(self) -> bool:
        """True after ``aclose()``."""
        return self._transport.state is ClientState.CLOSED

    @property
    def cooldown_remaining(self) -> float:
        """Seconds until requests may start again after a rate-limit 429 (0 when none)."""
        return self._transport.cooldown.remaining()

    @property
    def connections_in_use(self) -> int:
        """Connections currently held by a request or an open stream (0 when idle)."""
        return self._transport.connections_in_use

    async def __aenter__(self) -> AsyncClient:
        self._transport.session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent; the client cannot be used afterwards."""
        await self._transport.aclose()

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and transport.state is ClientState.OPEN:
            # Only warn: scheduling cleanup from __del__ is unsafe (the loop may be gone).
            warnings.warn(
                "AsyncClient was never closed; use 'async with AsyncClient()' or "
                "'await client.aclose()'",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )
