"""The HTTP layer: the only place on the client side that imports aiohttp.

``options`` (``Timeout`` and the one coercion), ``retry`` (``RetryPolicy``, ``Cooldown``, the
retry headers), ``errors`` (the one translation point) and ``transport`` (the session).
"""

from .options import DEFAULT_TIMEOUT, RequestOptions, Timeout, TimeoutLike, coerce_timeout
from .retry import Cooldown, RetryEvent, RetryHook, RetryPolicy
from .transport import ClientState, StreamBody, Transport, check_base_url

__all__ = [
    "DEFAULT_TIMEOUT",
    "Cooldown",
    "RequestOptions",
    "RetryEvent",
    "RetryHook",
    "RetryPolicy",
    "ClientState",
    "StreamBody",
    "Timeout",
    "TimeoutLike",
    "Transport",
    "check_base_url",
    "coerce_timeout",
]
