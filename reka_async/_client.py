"""``AsyncClient``: one connection pool, its configuration, its lifecycle; ``client.chat`` and
``client.models`` (``_chat.py``) send through it.

``with_options`` gives a copy with other per-request settings over the same pool, cooldown and
budgets (with another ``api_key`` or ``base_url``: a pool and pacing of its own); the hooks
(``on_request``, ``on_response``, ``on_retry``) are the place for metrics and tracing;
``rate_limit`` reads the rate-limit headers of the latest answer.
"""

from __future__ import annotations

import copy
import functools
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Final, TypedDict

import attrs

from ._chat import AsyncChat
from ._http import (
    DEFAULT_TIMEOUT,
    ClientState,
    ConnectorFactory,
    Hooks,
    RequestHook,
    ResponseHook,
    RetryHook,
    RetryPolicy,
    SSLOption,
    Timeout,
    TimeoutLike,
    Transport,
    check_base_url,
    coerce_timeout,
    debug_log_hook,
    display_url,
)
from ._http.accounting import Budget
from ._http.aiohttp_transport import PoolConfig
from ._http.attempt import AsyncTransport
from ._http.budget import make_budget
from ._http.options import (
    DEFAULT_MAX_RESPONSE_BYTES,
    chain_retry_hooks,
    check_max_response_bytes,
    check_max_retries,
    resolve_api_key,
)
from ._http.pacing import Pacer
from ._http.quota import Quota, RateLimit
from ._listing import AsyncModels
from ._logging import configure_from_env, debug_enabled
from ._types import NOT_GIVEN, Api, NotGiven, StreamMode, check_stream_mode
from ._wire.dialects import DIALECTS, check_api

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_CONNECTIONS",
    "AsyncClient",
    "ClientOptions",
    "CopyOptions",
    "RateLimit",
]

DEFAULT_BASE_URL: Final = "https://api.reka.ai/v1"
DEFAULT_MAX_CONNECTIONS: Final = 1024


class CopyOptions(TypedDict, total=False):
    """The keywords of ``with_options``: what a copy may change.

    Keys:
        api_key, base_url: another key or endpoint; a copy with either gets its own pool,
            pacing and cache identity (see ``AsyncClient.with_options``).
        api, max_retries, timeout, max_retry_wait, retry_policy: as for ``AsyncClient``.
        default_headers: headers added to the client's (a name given again replaces it).
        on_request, on_response, on_retry: hooks run after the client's own.
    """

    api_key: str | None
    base_url: str | None
    api: Api
    max_retries: int | None
    timeout: TimeoutLike | NotGiven
    max_retry_wait: float | None
    retry_policy: RetryPolicy | None
    default_headers: Mapping[str, str] | None
    on_request: RequestHook | Sequence[RequestHook] | None
    on_response: ResponseHook | Sequence[ResponseHook] | None
    on_retry: RetryHook | Sequence[RetryHook] | None


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
    rpm: float | None
    tpm: float | None
    rate_budget: Budget | None
    on_request: RequestHook | Sequence[RequestHook] | None
    on_response: ResponseHook | Sequence[ResponseHook] | None
    on_retry: RetryHook | Sequence[RetryHook] | None
    proxy: str | None
    trust_env: bool
    ssl: SSLOption
    connector_factory: ConnectorFactory | None
    max_response_bytes: int | None
    transport: AsyncTransport | None
    stream_mode: StreamMode


def _hook_list(
    value: Callable[..., None] | Sequence[Callable[..., None]] | None, name: str
) -> list[Callable[..., None]]:
    """A hook option as a list of callables: one callable, several, or ``None``."""
    if value is None:
        return []
    hooks = [value] if callable(value) else list(value)
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"{name}: expected a callable or a list of them, got {hook!r}")
    return hooks


def _retry_hook(value: RetryHook | Sequence[RetryHook] | None) -> RetryHook | None:
    chained: RetryHook | None = None
    for hook in _hook_list(value, "on_retry"):
        chained = chain_retry_hooks(chained, hook)
    return chained


def _policy(
    base: RetryPolicy, max_retries: int | None, max_retry_wait: float | None
) -> RetryPolicy:
    check_max_retries(max_retries, allow_none=True)
    if max_retries is not None:
        base = attrs.evolve(base, max_retries=max_retries)
    if max_retry_wait is not None:
        base = attrs.evolve(base, max_server_wait=max_retry_wait)
    return base


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
            capping connect and read), or ``None`` for none. Default: connect 10 s, read
            120 s, total 600 s per attempt.
        max_connections: size of the connection pool (the most requests in flight at once).
            Default 1024.
        max_retry_wait: the longest server-requested wait (``retry-after``) slept through;
            a longer one is raised at once with ``retry_after`` on the error. Default:
            ``retry_policy.max_server_wait`` (120 s).
        retry_policy: the whole ``RetryPolicy`` (backoff base and cap too); ``max_retries``
            and ``max_retry_wait``, when given, override its fields.
        default_headers: headers sent with every request.
        allow_insecure_http: allow ``http://`` to a host that is not loopback.
        rpm: a requests-per-minute budget held by every request of this client (plain calls,
            streams, batches, the sync facade; each retry counts), bursting one second's
            worth; ``None`` (default) for none.
        tpm: a tokens-per-minute budget likewise, charged on an estimate before each request
            and corrected with its ``usage``.
        rate_budget: a ``RateBudget`` instead of ``rpm``/``tpm`` (to set the bursts, or to
            share one budget between clients), or any other ``Budget`` (reserved before
            each attempt and settled by its outcome, as a ``RateBudget`` is).

        on_request: called with a ``RequestEvent`` as each HTTP attempt starts (a callable
            or a list of them): the place for metrics and tracing (docs/guides/client.md: Hooks).
        on_response: called with a ``ResponseEvent`` as each attempt ends: status, headers,
            request id, duration, the parsed response, or the error.
        on_retry: called with a ``RetryEvent`` before each retry's wait.
        proxy: an ``http(s)://[user:password@]host:port`` proxy for every request. Default:
            ``HTTPS_PROXY`` (``HTTP_PROXY`` for an ``http://`` base URL) or ``ALL_PROXY``
            from the environment unless ``NO_PROXY`` lists the host; never for loopback.
        trust_env: read those proxy variables (default); ``False`` ignores them.
        ssl: an ``ssl.SSLContext``, or the path of a CA bundle (PEM file or directory) to
            trust instead of the system's store, e.g. a company's TLS-inspecting proxy CA.
        connector_factory: ``factory() -> aiohttp.BaseConnector``, called in the event loop
            when the pool opens (your own ``TCPConnector``: resolver, local address, limits).
            Its limit is then the pool size; ``ssl`` must be set on it, not here.

        max_response_bytes: the largest response body (after decompression), and the
            largest single stream event, that is read; a larger one raises
            ``ResponseTooLargeError``. Default 64 MiB; ``None`` for no limit.
        transport: what performs each HTTP attempt: any ``AsyncTransport`` (``send`` one
            ``TransportRequest``, return its ``TransportResponse``; ``aclose``), such as
            ``reka_async.testing.MockTransport(handler)``, which answers in-process. Retries,
            pacing, hooks and budgets still run above it. Default: the aiohttp connection
            pool (``proxy``, ``trust_env``'s proxies, ``ssl`` and ``connector_factory``
            configure that one, so they cannot be given with ``transport``). The client
            closes it on ``aclose``.
        stream_mode: how native streams' ``chunk.content`` is read: ``"auto"`` (default:
            cumulative, until an event that does not extend the text so far proves
            deltas), ``"cumulative"`` or ``"delta"``, for a server whose deltas can look
            cumulative (``"ha"``, ``"ha"``, ``"ha!"``). A call may override it. The OpenAI
            dialect always sends deltas.
        pacer: the pacing to carry on from another client for the same key and host (its
            ``client.pacer``, on the same event loop, so not for the sync ``Client``; that
            client may be closed): the cooldown, the key's window and the learned send
            rate, so that a client made afresh does not start over (Ray's mapper makes one
            per run of batches). Default: this client's own; clients made apart share none
            (``_http/pacing.py``).

    Pacing needs no option: the client reads the server's ``x-ratelimit-*`` headers and
    pauses when the key's window is spent, and a 429 that says so pauses every request of
    the client (an overload 429 delays its own request only).

    Hooks run inline in the task that made the call and must be quick; an exception in a
    hook propagates to the caller. At ``DEBUG`` (``REKA_LOG=debug``, or the ``reka_async``
    logger at ``DEBUG`` when the client is created) each attempt is logged in one line.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
        InvalidRequestError: the key holds a control character (the message names the key,
            never its value).
        ValueError: an option is invalid (the message says which and why).
    """

    chat: AsyncChat
    """Chat completions: ``create``, ``create_stream``, ``parse``, ``run_tools``."""
    models: AsyncModels
    """The models of this key: ``list``."""

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
        rpm: float | None = None,
        tpm: float | None = None,
        rate_budget: Budget | None = None,
        on_request: RequestHook | Sequence[RequestHook] | None = None,
        on_response: ResponseHook | Sequence[ResponseHook] | None = None,
        on_retry: RetryHook | Sequence[RetryHook] | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: SSLOption = None,
        connector_factory: ConnectorFactory | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        transport: AsyncTransport | None = None,
        stream_mode: StreamMode = "auto",
        pacer: Pacer | None = None,
    ) -> None:
        configure_from_env()
        key = resolve_api_key(api_key)
        self._stream_mode = check_stream_mode(stream_mode)
        url = check_base_url(
            base_url or os.environ.get("REKA_BASE_URL") or DEFAULT_BASE_URL,
            allow_insecure_http=allow_insecure_http,
        )
        check_max_response_bytes(max_response_bytes)
        dialect = DIALECTS[check_api(api)]
        if isinstance(max_connections, bool) or max_connections < 1:
            raise ValueError(f"max_connections: must be at least 1, got {max_connections!r}")
        policy = _policy(retry_policy or RetryPolicy(), max_retries, max_retry_wait)
        budget = make_budget(rpm, tpm, rate_budget)
        if transport is not None:
            if proxy is not None or ssl is not None or connector_factory is not None:
                raise ValueError(
                    "proxy, ssl and connector_factory configure the default transport; "
                    "configure the transport you pass instead"
                )
            if not isinstance(transport, AsyncTransport):
                raise TypeError(
                    "transport: expected an AsyncTransport (async send(request) and async "
                    f"aclose()), got {type(transport).__name__}"
                )
            sender: AsyncTransport = transport
            self._network: PoolConfig | None = None
        else:
            if connector_factory is not None and ssl is not None:
                raise ValueError("ssl: give it to the connector your connector_factory builds")
            if connector_factory is not None and not callable(connector_factory):
                raise TypeError("connector_factory: expected a callable returning a connector")
            self._network = PoolConfig(
                max_connections=max_connections,
                proxy=proxy,
                trust_env=trust_env,
                ssl=ssl,
                connector_factory=connector_factory,
                allow_insecure_http=allow_insecure_http,
            )
            sender = self._network.sender(url)
        responses: list[ResponseHook] = _hook_list(on_response, "on_response")
        if debug_enabled():
            responses.insert(0, debug_log_hook)
        hooks = Hooks(_hook_list(on_request, "on_request"), responses)
        self._adopt(
            Transport(
                api_key=key,
                base_url=url,
                timeout=coerce_timeout(timeout),
                retry_policy=policy,
                max_connections=max_connections,
                sender=sender,
                default_headers=default_headers,
                hooks=hooks or None,
                on_retry=_retry_hook(on_retry),
                budget=budget,
                max_response_bytes=max_response_bytes,
                pacer=pacer,
            ),
            dialect.name,
        )

    def _adopt(self, transport: Transport, api: Api) -> None:
        self._transport = transport
        self.chat = AsyncChat(transport, DIALECTS[api], self._stream_mode)
        self.models = AsyncModels(transport, bearer=DIALECTS[api].bearer)

    def __repr__(self) -> str:
        t = self._transport
        copy_note = "" if t.owns_pool else " (copy)"
        return f"<AsyncClient base_url={display_url(t.base_url)!r} {t.state.value}{copy_note}>"

    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        api: Api | None = None,
        max_retries: int | None = None,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retry_wait: float | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        on_request: RequestHook | Sequence[RequestHook] | None = None,
        on_response: ResponseHook | Sequence[ResponseHook] | None = None,
        on_retry: RetryHook | Sequence[RetryHook] | None = None,
    ) -> AsyncClient:
        """A copy of this client with other settings (openai-python's ``with_options``).

        Without ``api_key`` and ``base_url`` (or with this client's own), the copy shares
        the connection pool, the key, the shared cooldown after a 429 and every budget of
        this client; closing it (or leaving its ``async with``) leaves this client open,
        while closing this client closes the pool under every copy.

        With another ``api_key`` or ``base_url`` the copy is a client of its own for that
        key or endpoint: its own connection pool (configured as this one's: proxy, TLS,
        connector factory, size), key header and request cache identity, and the pacing
        (cooldown, rate-limit window, learned rate) of its key and origin: its own, unless
        this client or a copy already talks to that key and host (another path on the same
        host, or back to this client's key), whose pacing it shares; its circuit breaker
        is that of whatever batch runs on it. Close it as any client (``async with``):
        closing either leaves the other open. The budgets
        (``rpm``, ``tpm``, ``rate_budget``) are still shared: they are this process's own
        limits, not the server's. Options not given keep this client's values.

        Args:
            api_key: another API key (surrounding whitespace stripped).
            base_url: another base URL (``allow_insecure_http`` as this client was made).
            api: as for ``AsyncClient``.
            max_retries: as for ``AsyncClient``.
            timeout: as for ``AsyncClient`` (a number caps this client's connect and read
                timeouts).
            max_retry_wait: as for ``AsyncClient``.
            retry_policy: as for ``AsyncClient``.
            default_headers: headers added to this client's (a name given again replaces it).
            on_request: a hook run after this client's own.
            on_response: a hook run after this client's own.
            on_retry: a hook run after this client's own.

        Returns:
            The new ``AsyncClient``.

        Raises:
            ValueError: an option is invalid, or ``api_key``/``base_url`` is given to a
                client made with ``transport=`` (make a new client over a transport of its
                own: a passed transport cannot be duplicated).
            InvalidRequestError: ``api_key`` holds a control character.
            MissingAPIKeyError: ``api_key`` is blank.
        """
        t = self._transport
        rebind = self._rebinding(api_key, base_url)
        dialect = check_api(api) if api is not None else self.api
        base = retry_policy if retry_policy is not None else t.retry_policy
        policy = _policy(base, max_retries, max_retry_wait)
        new_timeout = None if isinstance(timeout, NotGiven) else coerce_timeout(timeout, t.timeout)
        if default_headers and any(
            k.lower() in ("x-api-key", "authorization") for k in default_headers
        ):
            raise ValueError("default_headers: pass another API key as api_key=, not as a header")
        hooks = Hooks(_hook_list(on_request, "on_request"), _hook_list(on_response, "on_response"))
        transport = t.derive(
            timeout=new_timeout,
            retry_policy=policy,
            default_headers=default_headers,
            hooks=hooks or None,
            on_retry=_retry_hook(on_retry),
        )
        if rebind is not None:
            transport = rebind(transport)
        # A shallow copy: whatever else the client holds (budgets) is shared by reference.
        new = copy.copy(self)
        new._adopt(transport, dialect)
        return new

    copy = with_options  # openai-python's other name for it

    def _rebinding(
        self, api_key: str | None, base_url: str | None
    ) -> Callable[[Transport], Transport] | None:
        """What makes a copy's transport one of its own for another key or base URL (over
        a new pool), or None when neither differs from this client's (the copy then shares
        everything)."""
        t = self._transport
        key = t.api_key if api_key is None else resolve_api_key(api_key)
        network = self._network
        allow_http = network.allow_insecure_http if network is not None else True
        url = t.base_url
        if base_url is not None:
            url = check_base_url(base_url, allow_insecure_http=allow_http)
        if key == t.api_key and url == t.base_url:
            return None
        if network is None:
            raise ValueError(
                "api_key/base_url: this client sends through the transport= it was given, "
                "which a copy cannot duplicate; make a new AsyncClient for the other key or "
                "endpoint, with a transport of its own"
            )
        return functools.partial(
            Transport.rebind, api_key=key, base_url=url, sender=network.sender(url)
        )

    @property
    def base_url(self) -> str:
        """The API base URL this client talks to (credentials included; reprs hide them)."""
        return str(self._transport.base_url)

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate-limit headers of the latest answer on this pool (any status), or ``None``
        before the first answer. Shared with ``with_options`` copies (same key)."""
        headers = self._transport.last_headers
        if headers is None:
            return None
        return RateLimit.from_headers(headers)

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
    def rate_budget(self) -> Budget | None:
        """The client's budget (a ``RateBudget`` from ``rpm``/``tpm``, or ``rate_budget``), or
        ``None``."""
        return self._transport.budget

    @property
    def quota(self) -> Quota:
        """The key's rate-limit window as the server's ``x-ratelimit-*`` headers describe it."""
        return self._transport.pacer.quota

    @property
    def pacer(self) -> Pacer:
        """The client's pacing: the shared cooldown, the key's window and the learned send
        rate (``_http/quota.py`` has the rule). One per API key and origin, shared by this
        client's ``with_options`` copies of that pair; clients made apart share none
        (``_http/pacing.py``)."""
        return self._transport.pacer

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
        return self._transport.pacer.cooldown.remaining()

    @property
    def connections_in_use(self) -> int:
        """Connections currently held by a request or an open stream (0 when idle)."""
        return self._transport.connections_in_use

    async def __aenter__(self) -> AsyncClient:
        self._transport.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (a ``with_options`` copy: only the copy, the pool stays
        open). Idempotent; the client cannot be used afterwards."""
        await self._transport.aclose()

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and transport.owns_pool and transport.state is ClientState.OPEN:
            # Only warn: scheduling cleanup from __del__ is unsafe (the loop may be gone).
            warnings.warn(
                "AsyncClient was never closed; use 'async with AsyncClient()' or "
                "'await client.aclose()'",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )
