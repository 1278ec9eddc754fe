"""``Quota``: pacing from the server's ``x-ratelimit-*`` headers, so a key's window is used
to the full without being overrun.

Every response (a success or a 429) may carry ``x-ratelimit-limit`` (requests per window),
``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (when the window ends: Unix time, or
seconds from now when the number is small). While plenty remains, reading the headers costs
one lookup and one ``int()``. Once the remaining count is within ``slack`` requests of zero
the quota becomes *active*: each request sent counts down a local copy of the remaining
count (the server's answers lag behind the requests in flight), each answer corrects it
(the lower of the two wins, so other users of the key are accounted for), and when it reaches
zero the client pauses (the shared ``Cooldown``) until the window resets, instead of sending
requests the server would refuse. After a reset the window's ``limit`` is available again;
the next reset is predicted from the window length seen between two resets.

Two kinds of 429 (decided here and in the request loop, ``Transport._retry_wait``): one
whose headers say the quota is spent (``x-ratelimit-remaining: 0``) pauses every request of
the client until the server's delay has passed; one that does not (an overload answer with
only ``retry-after``) delays that request alone.

Clocks: the reset time is the server's; a client clock that is behind waits a little longer,
one that is ahead may see a 429, which is then honoured as above.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

import attrs

from .._serial import Serializable

__all__ = ["Quota", "RateLimit", "quota_spent"]

_EPOCH_THRESHOLD = 1e9  # an x-ratelimit-reset above this is Unix time, else seconds from now


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def quota_spent(headers: Mapping[str, str]) -> bool:
    """Whether an answer's headers say the key's window is spent (``remaining`` 0)."""
    remaining = _number(headers.get("x-ratelimit-remaining"))
    return remaining is not None and remaining <= 0


class Quota:
    """The key's rate-limit window as the server's headers describe it.

    Args:
        slack: how close to zero ``remaining`` must come before requests are counted
            (the most requests that can be in flight, e.g. the connection pool size).
        max_wait: the longest pause taken on the headers' word; a longer window is left to
            the server's 429 (and the retry policy's cap on waits).
    """

    __slots__ = (
        "_counting",
        "_previous_reset",
        "active",
        "limit",
        "max_wait",
        "paused_s",
        "remaining",
        "reset_at",
        "slack",
        "window_s",
    )

    def __init__(self, *, slack: int, max_wait: float) -> None:
        self.slack = slack
        self.max_wait = max_wait
        #: True while requests are counted against a nearly spent window.
        self.active = False
        self.limit: float | None = None
        self.remaining = 0.0
        #: ``time.time()`` when the current window ends (0.0: unknown).
        self.reset_at = 0.0
        #: Seconds between two window resets, once two have been seen (0.0: unknown).
        self.window_s = 0.0
        #: Total seconds of pauses the headers asked for.
        self.paused_s = 0.0
        self._previous_reset = 0.0
        self._counting = False  # remaining is our own count (a window whose end is unknown)

    def __repr__(self) -> str:
        state = f"remaining={self.remaining:g}" if self.active else "idle"
        return f"<Quota {state} limit={self.limit} window={self.window_s:g}s>"

    @property
    def rate(self) -> float | None:
        """Requests per second the window allows, once its limit and length are known."""
        if self.limit is None or not self.window_s:
            return None
        return self.limit / self.window_s

    def observe(self, remaining_header: str, headers: Mapping[str, str]) -> None:
        """Read an answer's headers (``remaining_header`` is its ``x-ratelimit-remaining``)."""
        try:
            remaining = float(int(remaining_header))
        except ValueError:
            parsed = _number(remaining_header)
            if parsed is None:
                return
            remaining = parsed
        if remaining > self.slack and not self.active:
            return  # the common case: plenty left, nothing to track
        now = time.time()
        reset = _number(headers.get("x-ratelimit-reset"))
        if reset is not None and reset < _EPOCH_THRESHOLD:
            reset += now
        limit = _number(headers.get("x-ratelimit-limit"))
        if limit is not None and limit > 0:
            self.limit = limit
        if reset is None:
            return  # no window end: nothing to pace against
        if not self.reset_at:  # the current window's end is not known yet: now it is
            previous = self._previous_reset
            if previous and reset > previous + 1e-3:
                self.window_s = reset - previous
            self.reset_at = reset
            self.remaining = min(self.remaining, remaining) if self._counting else remaining
        elif abs(reset - self.reset_at) < max(1e-3, self.window_s / 4):
            # The same window: the lower count wins, and the server's reset time replaces
            # a predicted one (a prediction drifts by the header's rounding every window).
            self.remaining = min(self.remaining, remaining)
            self.reset_at = reset
        elif reset > self.reset_at:  # a later window than the one we count
            if now >= self.reset_at - 1e-3:
                self.window_s = reset - self.reset_at  # a fixed window rolled over
            self._previous_reset = self.reset_at
            self.reset_at = reset
            self.remaining = remaining
        else:
            return  # an answer from an earlier window, arriving late
        self._counting = False
        self.active = self.remaining <= self.slack

    def before_send(self) -> float:
        """Count one request about to be sent; returns the seconds to pause first (or 0.0)."""
        now = time.time()
        if self.reset_at and now >= self.reset_at:
            self._rolled(now)
            if not self.active:
                return 0.0
        if self.remaining > 0:
            self.remaining -= 1
            return 0.0
        if not self.reset_at:
            return 0.0  # spent, but when the window ends is unknown: the server's 429 says
        wait = self.reset_at - now
        if wait > self.max_wait:
            return 0.0  # too long to take on trust: the server's 429 decides
        self.paused_s += wait
        # The pause ends at the reset; the request is counted in the next window.
        self._rolled(self.reset_at)
        self.remaining -= 1
        return wait + random.uniform(0.001, 0.01)

    def _rolled(self, now: float) -> None:
        """The window ended at or before ``now``: its limit is available again."""
        self._previous_reset = self.reset_at
        if self.limit is None:
            self.active = False  # nothing known to count against: wait for the server's word
            self.remaining = 0.0
            self.reset_at = 0.0
            return
        self.remaining = self.limit
        if self.window_s:
            while self.reset_at <= now:
                self.reset_at += self.window_s
        else:
            self.reset_at = 0.0  # a window of the same size whose end the next answer tells
            self._counting = True
        self.active = self.remaining <= self.slack


@attrs.frozen(kw_only=True)
class RateLimit(Serializable):
    """The rate-limit headers of the latest answer of a client (any status).

    Attributes:
        limit: ``x-ratelimit-limit``: requests allowed in the window.
        remaining: ``x-ratelimit-remaining``: requests left in it.
        reset: ``x-ratelimit-reset``: when the window resets (Unix time, as sent).
        retry_after: ``retry-after`` in seconds, when the answer asked for a wait.
        request_id: the answer's ``x-request-id``.
    """

    limit: float | None = None
    remaining: float | None = None
    reset: float | None = None
    retry_after: float | None = None
    request_id: str | None = None

    @property
    def reset_in(self) -> float | None:
        """Seconds until ``reset`` (0 when past; a small ``reset`` is taken as seconds)."""
        if self.reset is None:
            return None
        return max(0.0, self.reset - time.time()) if self.reset > 1e9 else max(0.0, self.reset)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        """The rate-limit state an answer's headers describe."""
        return cls(
            limit=_number(headers.get("x-ratelimit-limit")),
            remaining=_number(headers.get("x-ratelimit-remaining")),
            reset=_number(headers.get("x-ratelimit-reset")),
            retry_after=_number(headers.get("retry-after")),
            request_id=headers.get("x-request-id"),
        )
