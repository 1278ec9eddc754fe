"""The mock server's rate limiters: four kinds a client meets, each with headers that tell
its true state (or none at all).

=========  ==================================================  =================================
kind       admits                                              headers (on every answer)
=========  ==================================================  =================================
fixed      N per window aligned to the clock (multiples of     ``x-ratelimit-limit`` N,
           its length since the epoch)                         ``remaining`` left in the window,
                                                               ``reset`` = the window's end
sliding    at most N in any trailing window (a log of          ``limit`` N, ``remaining`` = N
           admission times)                                    minus those in the window,
                                                               ``reset`` = when the oldest leaves
bucket     a burst of N, refilled continuously at N per        OpenAI's model: ``limit`` per
           window                                              minute, ``remaining`` = the
                                                               current fill, ``reset`` = when full
bare       the bucket above                                    none: only ``retry-after`` on 429
=========  ==================================================  =================================

Every 429 of a limiter says, in ``retry-after``, when the next request would be admitted;
``x-ratelimit-reset`` is a Unix time rounded up to the millisecond, so a client that waits
until the time it says is never early. A limiter reads its own clock (a test's fake one),
so its admissions can be pinned without sleeping.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from typing import Final, Literal

__all__ = [
    "LIMITER_KINDS",
    "BareBucket",
    "Bucket",
    "FixedWindow",
    "Limiter",
    "LimiterKind",
    "SlidingLog",
    "limiter_of",
    "parse_rate_limit",
]

LimiterKind = Literal["fixed", "sliding", "bucket", "bare"]
#: The limiter kinds, as ``rate_limit_kind=`` and ``--rate-limit-kind`` spell them.
LIMITER_KINDS: Final[tuple[LimiterKind, ...]] = ("fixed", "sliding", "bucket", "bare")

_JSON: Final = "application/json"
_NOMINAL_RPM: Final = 1_000_000  # advertised when no limit is set; never reached
_WINDOW_S: Final = 60.0
_RATE_RE: Final = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|min|m|h)\s*$")
_UNIT_S: Final = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_rate_limit(spec: str) -> tuple[int, float]:
    """``"50/s"``, ``"600/min"``, ``"10/5s"`` -> (requests, window seconds).

    Raises:
        ValueError: naming the accepted forms.
    """
    match = _RATE_RE.match(spec)
    if match is None or int(match.group(1)) < 1 or float(match.group(2) or 1) <= 0:
        raise ValueError(
            f"rate limit {spec!r}: expected REQUESTS/WINDOW such as 50/s, 600/min or 10/5s"
        )
    return int(match.group(1)), float(match.group(2) or 1) * _UNIT_S[match.group(3)]


def _unix_ms(t: float) -> str:
    """A Unix time rounded up to the millisecond (a client waiting until then is not early)."""
    return f"{math.ceil(t * 1000) / 1000:.3f}"


def _seconds(delay: float) -> str:
    delay = max(round(delay, 3), 0.001)
    return str(int(delay)) if delay.is_integer() else f"{delay:.3f}".rstrip("0").rstrip(".")


class Limiter:
    """What the server asks of a limiter: admit a request, and the headers of an answer.

    Args:
        limit: requests admitted per window (the burst of a bucket).
        window_s: the window's length in seconds.
        clock: the Unix time the limiter reads.
    """

    __slots__ = ("admitted", "clock", "limit", "refused", "window_s")

    kind: LimiterKind = "fixed"

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.limit = limit
        self.window_s = window_s
        #: Requests admitted and refused so far (the oracle's own counters).
        self.admitted = 0
        self.refused = 0

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.limit}/{self.window_s:g}s "
            f"admitted={self.admitted} refused={self.refused}>"
        )

    def roll(self) -> None:
        """Bring the limiter's state up to its clock (a no-op where state is computed)."""

    def admit(self) -> bool:
        """Count one request; False (and counted as refused) when the limit is reached."""
        if self._take(self.clock()):
            self.admitted += 1
            return True
        self.refused += 1
        return False

    def headers(self, request_id: str) -> dict[str, str]:
        """The headers of every answer: JSON content, request id and the limiter's state."""
        return {"Content-Type": _JSON, "x-request-id": request_id, **self._state(self.clock())}

    def refusal(self, request_id: str, state: dict[str, str] | None = None) -> dict[str, str]:
        """The headers of the limiter's 429: its state (``state``, as read when the request
        was refused, or now), and ``retry-after`` from now until the next admission."""
        now = self.clock()
        headers = self.headers(request_id)
        if state is not None:
            headers.update(state)
        headers["retry-after"] = _seconds(self._retry_in(now))
        return headers

    def state(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers of the limiter's state now (none for ``bare``)."""
        return self._state(self.clock())

    def _take(self, now: float) -> bool:
        raise NotImplementedError

    def _state(self, now: float) -> dict[str, str]:
        raise NotImplementedError

    def _retry_in(self, now: float) -> float:
        raise NotImplementedError


class FixedWindow(Limiter):
    """N per window aligned to the clock; the headers count the window down to its end."""

    __slots__ = ("count", "end", "end_str", "limit_str")

    kind: LimiterKind = "fixed"

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        super().__init__(limit, window_s, clock)
        self.limit_str = str(limit)
        self.end = 0.0
        self.end_str = "0"
        self.count = 0

    def roll(self) -> None:
        """Start a new window when the clock is past the current one.

        Windows are aligned to multiples of their length since the epoch (as per-minute
        limits aligned to clock minutes are), so the reset times a client sees are a window
        length apart however long it paused.
        """
        now = self.clock()
        if now >= self.end:
            self.end = (math.floor(now / self.window_s) + 1) * self.window_s
            self.end_str = _unix_ms(self.end)
            self.count = 0

    def _take(self, now: float) -> bool:
        self.roll()
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def _state(self, now: float) -> dict[str, str]:
        return {
            "x-ratelimit-limit": self.limit_str,
            "x-ratelimit-remaining": str(max(self.limit - self.count, 0)),
            "x-ratelimit-reset": self.end_str,
        }

    def _retry_in(self, now: float) -> float:
        return self.end - now


class SlidingLog(Limiter):
    """At most N admissions in any trailing window (a log of their times)."""

    __slots__ = ("log",)

    kind: LimiterKind = "sliding"

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        super().__init__(limit, window_s, clock)
        self.log: deque[float] = deque()

    def _prune(self, now: float) -> None:
        log, start = self.log, now - self.window_s
        while log and log[0] <= start:
            log.popleft()

    def _take(self, now: float) -> bool:
        self._prune(now)
        if len(self.log) >= self.limit:
            return False
        self.log.append(now)
        return True

    def _state(self, now: float) -> dict[str, str]:
        self._prune(now)
        reset = self.log[0] + self.window_s if self.log else now
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.limit - len(self.log)),
            "x-ratelimit-reset": _unix_ms(reset),
        }

    def _retry_in(self, now: float) -> float:
        self._prune(now)
        return self.log[0] + self.window_s - now if len(self.log) >= self.limit else 0.0


class Bucket(Limiter):
    """A burst of N, refilled continuously at N per window; headers in OpenAI's model
    (``x-ratelimit-limit`` per minute, ``remaining`` the current fill, ``reset`` when full)."""

    __slots__ = ("level", "per_s", "updated")

    kind: LimiterKind = "bucket"

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        super().__init__(limit, window_s, clock)
        self.per_s = limit / window_s
        self.level = float(limit)
        self.updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.level = min(float(self.limit), self.level + (now - self.updated) * self.per_s)
        if self.updated is None or now > self.updated:
            self.updated = now

    def _take(self, now: float) -> bool:
        self._refill(now)
        if self.level < 1.0:
            return False
        self.level -= 1.0
        return True

    def _state(self, now: float) -> dict[str, str]:
        self._refill(now)
        return {
            "x-ratelimit-limit": str(round(self.per_s * 60.0)),
            "x-ratelimit-remaining": str(math.floor(self.level)),
            "x-ratelimit-reset": _unix_ms(now + (self.limit - self.level) / self.per_s),
        }

    def _retry_in(self, now: float) -> float:
        self._refill(now)
        return max(1.0 - self.level, 0.0) / self.per_s


class BareBucket(Bucket):
    """The bucket above behind a gateway that sends no ``x-ratelimit-*`` headers at all."""

    __slots__ = ()

    kind: LimiterKind = "bare"

    def _state(self, now: float) -> dict[str, str]:
        return {}


_KINDS: Final[dict[str, type[Limiter]]] = {
    "fixed": FixedWindow,
    "sliding": SlidingLog,
    "bucket": Bucket,
    "bare": BareBucket,
}


def limiter_of(
    rpm_limit: int | None,
    rate_limit: str | None,
    kind: str,
    clock: Callable[[], float],
) -> Limiter:
    """The limiter of `MockRekaServer`'s options: ``rpm_limit`` (per minute) or
    ``rate_limit`` (``"50/s"``...), at most one of them, of ``kind``; neither: a fixed window
    that advertises a limit never reached.

    Raises:
        ValueError: Both limits are given, ``rpm_limit`` is under 1, ``rate_limit`` is
            malformed, ``kind`` is unknown, or a kind other than ``fixed`` has no limit.
    """
    if kind not in _KINDS:
        raise ValueError(f"rate_limit_kind {kind!r}: expected one of {', '.join(LIMITER_KINDS)}")
    if rpm_limit is not None and rpm_limit < 1:
        raise ValueError("rpm_limit must be at least 1")
    if rpm_limit is not None and rate_limit is not None:
        raise ValueError("pass rpm_limit or rate_limit, not both")
    if rate_limit is not None:
        limit, window_s = parse_rate_limit(rate_limit)
    elif rpm_limit is not None:
        limit, window_s = rpm_limit, _WINDOW_S
    elif kind != "fixed":
        raise ValueError(
            f"rate_limit_kind {kind!r} needs a limit: pass rate_limit (e.g. '50/s') or rpm_limit"
        )
    else:
        limit, window_s = _NOMINAL_RPM, _WINDOW_S
    return _KINDS[kind](limit, window_s, clock)
