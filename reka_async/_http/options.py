"""Timeouts and per-request options: the one place configuration is coerced.

``coerce_timeout`` turns what a caller may write (a ``Timeout``, seconds, ``None``) into a
``Timeout``, the same way for ``AsyncClient(timeout=...)`` and for a call's ``timeout=``.
``resolve_options`` merges a call's overrides with the client's defaults and checks them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import aiohttp
import attrs

from .._exceptions import InvalidRequestError, MissingAPIKeyError
from .._types import NotGiven

if TYPE_CHECKING:
    from .accounting import Budget
    from .hooks import Hooks
    from .retry import RetryEvent, RetryHook

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "RequestOptions",
    "Slot",
    "Timeout",
    "TimeoutLike",
    "chain_retry_hooks",
    "check_max_response_bytes",
    "check_max_retries",
    "coerce_timeout",
    "resolve_api_key",
]

#: The largest response body, or stream event, a client reads by default: 64 MiB.
DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024


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
        showed in the request profile) and, for a body that arrives whole, the same bound: a
        median 13.6 µs of CPU per request at C=64 (``python -m benchmarks.fastpaths``), pinned
        to ``to_aiohttp`` by a property test.
        """
        limits = [t for t in (self.read, self.total) if t is not None]
        return aiohttp.ClientTimeout(
            total=min(limits) if limits else None, sock_connect=self.connect
        )


TimeoutLike = Timeout | float | None
DEFAULT_TIMEOUT: Final = Timeout()
_NO_TIMEOUT: Final = Timeout(connect=None, read=None, total=None)


def coerce_timeout(value: TimeoutLike, default: Timeout = DEFAULT_TIMEOUT) -> Timeout:
    """A ``Timeout`` from a ``Timeout``, a number or ``None``: the one coercion.

    A number is the total seconds of one attempt; it also caps ``connect`` and ``read`` of
    ``default`` (the client's timeout for a call, the library default for a client), so
    ``timeout=5`` means at most 5 s wherever it is written. ``None`` disables every timeout.

    Raises:
        ValueError: not a positive number, ``None`` or a ``Timeout``.
    """
    if isinstance(value, Timeout):
        return value
    if value is None:
        return _NO_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"timeout: must be a positive number of seconds, None or a Timeout, got {value!r}"
        )
    seconds = float(value)
    read = default.read if default.read is None else min(default.read, seconds)
    connect = default.connect if default.connect is None else min(default.connect, seconds)
    return Timeout(connect=connect, read=read, total=seconds)


def check_max_retries(value: Any, *, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a non-negative integer (or ``None`` if allowed).

    The one check of a retry count: the client, a call, ``RetryPolicy``, ``BatchRunner`` and
    the Ray mapper all use it.
    """
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kind = "a non-negative integer or None" if allow_none else "a non-negative integer"
        raise ValueError(f"max_retries: must be {kind}, got {value!r}")


def check_max_response_bytes(value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive integer or ``None`` (no limit)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"max_response_bytes: must be a positive number of bytes or None, got {value!r}"
        )


def resolve_api_key(api_key: str | None) -> str:
    """The key to send: ``api_key``, else ``REKA_API_KEY``, with surrounding whitespace
    stripped (a key read from a file usually ends in a newline).

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset or blank.
        InvalidRequestError: the key is not a string or holds a control character; the
            message names where the key came from, never its value.
    """
    source = "api_key"
    key: object = api_key
    if api_key is None:
        source, key = "REKA_API_KEY", os.environ.get("REKA_API_KEY")
    if key is not None and not isinstance(key, str):
        raise InvalidRequestError(f"{source}: must be a string, got {type(key).__name__}")
    key = key.strip() if key else ""
    if not key:
        raise MissingAPIKeyError(
            "no API key: pass api_key=... or set the REKA_API_KEY environment variable"
        )
    for char in key:
        if char < " " or "\x7f" <= char <= "\x9f":
            raise InvalidRequestError(
                f"{source}: the API key contains a control character (U+{ord(char):04X}) "
                "inside it; surrounding whitespace is stripped, anything else is kept. "
                "Check where the key is read from."
            )
    return key


class Slot(Protocol):
    """A caller's share of a concurrency limit, held while a request's attempts run and
    given up while it waits out a retry's delay (a ``BatchRunner`` worker's: its slot goes
    to another item meanwhile, ``batch/stream.py``)."""

    def leave(self) -> None:
        """Give the slot up: the request is about to wait before its next attempt."""
        ...

    async def rejoin(self) -> None:
        """Take a slot again before the next attempt (waiting for one to free)."""
        ...


@attrs.frozen(kw_only=True)
class RequestOptions:
    """Per-request settings resolved against the client's defaults.

    ``extra_headers``, ``on_retry`` and ``hooks`` of a client (``with_options``) and of a call
    add up: the call's headers win over the client's, and both sets of hooks run.
    """

    timeout: Timeout
    max_retries: int
    extra_headers: Mapping[str, str] | None = None
    on_retry: RetryHook | None = None
    #: The budgets every attempt reserves from (``accounting.py``): the client's, then the
    #: caller's (a ``BatchRunner``'s rate and cost budgets).
    budgets: tuple[Budget, ...] = ()
    hooks: Hooks | None = None
    #: Given up during each retry's wait and taken again before the next attempt (``None``:
    #: nothing to give up; a ``BatchRunner`` sets it).
    slot: Slot | None = None

    def override(
        self,
        *,
        timeout: TimeoutLike | NotGiven,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None,
        on_retry: RetryHook | None = None,
        budgets: tuple[Budget, ...] = (),
        hooks: Hooks | None = None,
    ) -> RequestOptions:
        """These options with a call's overrides applied (``self`` when there are none).

        Raises:
            ValueError: an override is invalid.
        """
        if (
            isinstance(timeout, NotGiven)
            and max_retries is None
            and not extra_headers
            and on_retry is None
            and not budgets
            and hooks is None
        ):
            return self  # the common case allocates nothing
        if max_retries is not None:
            check_max_retries(max_retries)
        if extra_headers and any(k.lower() == "x-api-key" for k in extra_headers):
            raise ValueError("extra_headers: set the API key with api_key=, not a header")
        if extra_headers and self.extra_headers:
            extra_headers = {**self.extra_headers, **extra_headers}
        return RequestOptions(
            timeout=self.timeout
            if isinstance(timeout, NotGiven)
            else coerce_timeout(timeout, self.timeout),
            max_retries=self.max_retries if max_retries is None else max_retries,
            extra_headers=extra_headers or self.extra_headers,
            on_retry=chain_retry_hooks(self.on_retry, on_retry),
            hooks=self.hooks.plus(hooks) if self.hooks is not None else hooks,
            budgets=self.budgets + budgets,
            slot=self.slot,
        )


def chain_retry_hooks(first: RetryHook | None, second: RetryHook | None) -> RetryHook | None:
    """One retry hook calling ``first`` then ``second`` (either may be ``None``)."""
    if first is None or second is None:
        return first if second is None else second

    def both(event: RetryEvent) -> None:
        first(event)
        second(event)

    return both
