"""When to try again and how long to wait: ``RetryPolicy``, the shared ``Cooldown``, and the
parsing of the server's retry headers.

Which requests may be retried, and so may reach the server (and be billed) more than once, is
decided here and only here (``RetryPolicy.is_retryable``):

* statuses 408, 409, rate-limit 429 and every 5xx: the server says it did not finish;
* connection errors and timeouts (``APIConnectionError``, ``APITimeoutError``): the request
  may have reached the server, so a retried timeout can be generated and billed twice;
* never an out-of-credits 429 (``InsufficientCreditsError``), a 4xx otherwise, or a 2xx body
  of the wrong shape (``APIResponseValidationError``): the same request would fail again.

A stream is retried only while nothing has been yielded from it.

Retries that may bill twice
---------------------------
A retry *may bill twice* when the failed attempt may have reached the server and been
generated: a read timeout, or the connection dropping after the request was written (including
a malformed or missing response). A failure before the request could have been read (DNS,
connection refused, a connect timeout, a TLS handshake error) and every status answer above
(the server says it did not finish) never bills twice. One more case is ambiguous: a reused
keep-alive connection that the server had already closed fails while the request is written,
or disconnects before any response byte. It is retried once, transparently (not counted
against ``max_retries``, so even with ``max_retries=0``), because that is what an idle
connection closed by the server looks like; a server that crashed mid-request looks the same.

``RetryEvent.may_bill_twice`` says which kind a retry is (batch stats count them; the
transparent stale-connection retry is reported too, with ``delay=0``), and
``RetryPolicy(may_bill_twice=False)`` turns off every retry that may bill twice, the
transparent stale-connection retry included: such a failure is raised at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Final

import attrs

from .._exceptions import APIConnectionError, APIError, APIStatusError, InsufficientCreditsError
from .options import check_max_retries
from .quota import spent_reset

__all__ = ["Cooldown", "RetryEvent", "RetryHook", "RetryPolicy", "parse_retry_after"]


@attrs.frozen(kw_only=True)
class RetryEvent:
    """What a retry hook receives before the client sleeps and tries again.

    Attributes:
        method: HTTP method.
        path: the endpoint path, e.g. ``/chat``.
        attempt: the attempt that failed (0 is the first).
        error: the error of that attempt.
        delay: seconds until the next attempt.
        rate_limited: true when the server asked us to slow down (a rate-limit 429).
        quota_spent: true when that 429 said the key's window is spent: the whole client
            pauses (the shared cooldown); false for an overload 429 about this request.
        may_bill_twice: true when the failed attempt may have reached the server, so this
            retry may be generated and billed twice (see the module docstring).
        rate_limit_kind: ``"quota"``, ``"unlabelled"`` or ``"overload"`` for a rate-limit
            429 (``_http/quota.py``), else ``None``.
        counted: whether this retry spends one of ``max_retries`` (quota and unlabelled
            429s do not: ``RetryPolicy.max_rate_limit_wait`` bounds them instead).
    """

    method: str
    path: str
    attempt: int
    error: APIError
    delay: float
    rate_limited: bool
    quota_spent: bool = False
    may_bill_twice: bool = False
    rate_limit_kind: str | None = None
    counted: bool = True


RetryHook = Callable[[RetryEvent], None]

_RETRY_STATUSES: Final = frozenset((408, 409, 429))


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When to retry and how long to wait; pass one as ``AsyncClient(retry_policy=...)``.

    Attributes:
        max_retries: retries after the first attempt (a call's ``max_retries=`` overrides it).
        base: first backoff step; the n-th retry waits ``min(base * 2**n, cap)`` with jitter.
        cap: ceiling of the computed backoff.
        max_server_wait: the longest server-requested wait that is honoured by sleeping; a longer
            one is raised at once with ``retry_after`` on the error instead of sleeping silently.
        may_bill_twice: allow retries that may bill twice (default); ``False`` raises such a
            failure at once (see the module docstring).
        max_rate_limit_wait: the most seconds one request waits, in total, after quota and
            unlabelled 429s, which spend none of ``max_retries`` (``_http/quota.py``); the
            429 that would go past it is raised.
    """

    max_retries: int = attrs.field(default=2)
    base: float = 0.5
    cap: float = 8.0
    max_server_wait: float = 120.0
    may_bill_twice: bool = True
    max_rate_limit_wait: float = 300.0

    @max_retries.validator
    def _check_max_retries(self, _: attrs.Attribute[int], value: int) -> None:
        check_max_retries(value)

    @staticmethod
    def retry_may_bill_twice(error: APIError) -> bool:
        """Whether retrying after ``error`` may generate and bill the request twice: the
        failed attempt may have reached the server (see the module docstring)."""
        return isinstance(error, APIConnectionError) and error.may_have_reached_server

    @staticmethod
    def is_retryable(error: APIError) -> bool:
        """Whether an error may succeed on another attempt (see the module docstring)."""
        if isinstance(error, InsufficientCreditsError):
            return False
        if isinstance(error, APIStatusError):
            return error.status_code in _RETRY_STATUSES or error.status_code >= 500
        return isinstance(error, APIConnectionError)

    def delay_for(
        self, error: APIError, attempt: int, max_retries: int | None = None
    ) -> float | None:
        """Seconds to wait before retrying after ``attempt`` failed, or ``None`` to give up.

        Args:
            error: the error of the failed attempt.
            attempt: the failed attempt's number (0 is the first).
            max_retries: this request's retry budget; default: the policy's ``max_retries``.
        """
        budget = self.max_retries if max_retries is None else max_retries
        if attempt >= budget or not self.is_retryable(error):
            return None
        if not self.may_bill_twice and self.retry_may_bill_twice(error):
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
    """A shared pause: no request of this client starts until it ends (tripped by a 429 that
    says the key's quota is spent, or by the headers' word that the window is used up)."""

    __slots__ = ("deadline",)

    def __init__(self) -> None:
        #: ``time.monotonic()`` when the pause ends; 0.0 while it was never tripped (an
        #: attribute, not a property: the request loop reads it on every attempt).
        self.deadline = 0.0

    def __repr__(self) -> str:
        return f"<Cooldown remaining={self.remaining():.3f}s>"

    def remaining(self) -> float:
        """Seconds until requests may start again (0 when not cooling down)."""
        return max(0.0, self.deadline - time.monotonic())

    def trip(self, seconds: float) -> None:
        """Extend the pause to at least ``seconds`` from now."""
        self.deadline = max(self.deadline, time.monotonic() + seconds)

    async def wait(self) -> None:
        """Sleep until the pause is over (returns at once when there is none)."""
        # Another 429 may extend the deadline while we sleep, hence the loop.
        while (left := self.deadline - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)


def _seconds(value: str) -> float | None:
    """A delay header's value in seconds; ``None`` for garbage, negatives, NaN or infinity."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The delay the server asks for, in seconds, from the documented headers.

    ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP date), then the reset of a
    spent window in any shape (``_http/quota.py``: ``x-ratelimit-reset``, OpenAI's
    ``-reset-requests``/``-reset-tokens`` durations, Anthropic's RFC 3339 resets). A
    value that is not a finite, non-negative number (``-5``, ``nan``) is ignored, so the
    next header or the computed backoff decides instead of a retry at once.
    """
    value = headers.get("retry-after-ms")
    if value and (ms := _seconds(value)) is not None:
        return ms / 1000.0
    value = headers.get("retry-after")
    if value:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
        try:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - now)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    # A spent window's reset, in whichever shape is spent (a reset sent while requests
    # remain is only when the window rolls over, not a delay to honour).
    return spent_reset(headers, now)
