"""The HTTP layer: the only place on the client side that imports aiohttp.

``options`` (``Timeout`` and the one coercion), ``retry`` (``RetryPolicy``, ``Cooldown``, the
retry headers), ``hooks`` (``on_request``/``on_response`` and their events), ``network``
(proxy, TLS, connector, URLs shown without credentials), ``errors`` (the one translation
point), ``pacing`` (the cooldown and the key's window), ``accounting`` (what budgets reserve
and settle per attempt), ``transport`` (the one request loop) over ``attempt`` (the seam:
one HTTP attempt), whose network implementation is ``aiohttp_transport``.
"""

from .accounting import Budget, Ledger, Outcome
from .attempt import AsyncTransport, TransportRequest, TransportResponse
from .hooks import (
    Hooks,
    RequestEvent,
    RequestHook,
    ResponseEvent,
    ResponseHook,
    debug_log_hook,
)
from .network import (
    ConnectorFactory,
    SSLOption,
    check_proxy,
    display_url,
    env_proxy,
    ssl_context,
)
from .options import DEFAULT_TIMEOUT, RequestOptions, Timeout, TimeoutLike, coerce_timeout
from .retry import Cooldown, RetryEvent, RetryHook, RetryPolicy
from .transport import Call, ClientState, StreamBody, Transport, check_base_url

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncTransport",
    "Budget",
    "Call",
    "Ledger",
    "Outcome",
    "TransportRequest",
    "TransportResponse",
    "ClientState",
    "ConnectorFactory",
    "Cooldown",
    "Hooks",
    "RequestEvent",
    "RequestHook",
    "RequestOptions",
    "ResponseEvent",
    "ResponseHook",
    "RetryEvent",
    "RetryHook",
    "RetryPolicy",
    "SSLOption",
    "StreamBody",
    "Timeout",
    "TimeoutLike",
    "Transport",
    "check_base_url",
    "check_proxy",
    "coerce_timeout",
    "debug_log_hook",
    "display_url",
    "env_proxy",
    "ssl_context",
]
