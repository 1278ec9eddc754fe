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

**Tokens.** A token limit (``token_limit="5000/s"``, of the same kind) counts the tokens the
mock bills (input and output of each answer), charged when the answer is billed; a request
is admitted while its window has a token left, so requests in flight can overdraw it (as a
generation's length is not known when it is admitted), and it then refuses until it is back
above zero. Its headers are OpenAI's, beside the request headers of its kind:
``x-ratelimit-limit-tokens`` (per window; per minute for a bucket),
``x-ratelimit-remaining-tokens`` (never below 0) and ``x-ratelimit-reset-tokens``, a duration
(``"600ms"``, ``"1.2s"``) until the window ends (``fixed``), its oldest charge leaves
(``sliding``) or it is full (``bucket``); ``bare`` sends none. A request refused for its
tokens takes no request slot.
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
    "Limits",
    "SlidingLog",
    "limiter_of",
    "parse_rate_limit",
    "token_limiter_of",
]

LimiterKind = Literal["fixed", "sliding", "bucket", "bare"]
#: The limiter kinds, as ``rate_limit_kind=`` and ``--rate-limit-kind`` spell them.
LIMITER_KINDS: Final[tuple[LimiterKind, ...]] = ("fixed", "sliding", "bucket", "bare")

_JSON: Final = "application/json"
_NOMINAL_RPM: Final = 1_000_000  # advertised when no limit is set; never reached
_WINDOW_S: Final = 60.0
_RATE_RE: Final = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|min|m|h)\s*$")
_UNIT_S: Final = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_rate_limit(
    spec: str, *, what: str = "rate limit", unit: str = "REQUESTS"
) -> tuple[int, float]:
    """``"50/s"``, ``"600/min"``, ``"10/5s"`` -> (requests or tokens, window seconds).

    Raises:
        ValueError: naming ``what`` and the accepted forms.
    """
    match = _RATE_RE.match(spec)
    if match is None or int(match.group(1)) < 1 or float(match.group(2) or 1) <= 0:
        raise ValueError(f"{what} {spec!r}: expected {unit}/WINDOW such as 50/s, 600/min or 10/5s")
    return int(match.group(1)), float(match.group(2) or 1) * _UNIT_S[match.group(3)]


def _unix_ms(t: float) -> str:
    """A Unix time rounded up to the millisecond (a client waiting until then is not early)."""
    return f"{math.ceil(t * 1000) / 1000:.3f}"


def _duration(seconds: float) -> str:
    """A duration as OpenAI's headers write one (``"20ms"``, ``"1.2s"``, ``"6m0s"``), rounded
    up to the millisecond (to the microsecond first: a float's error is not a millisecond)."""
    ms = max(math.ceil(round(seconds * 1000.0, 3)), 0)
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:g}s"
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes}m{rest / 1000:g}s"


def _seconds(delay: float) -> str:
    delay = max(round(delay, 3), 0.001)
    return str(int(delay)) if delay.is_integer() else f"{delay:.3f}".rstrip("0").rstrip(".")


class Limiter:
    """One limiter of requests or of tokens: what the server asks of it, its state's headers.

    A request limiter counts one per request it admits (``admit``). A token limiter admits a
    request while a token is left in its window (``allows``) and is charged the tokens of
    each answer when it is billed (``charge``): requests in flight can overdraw it, and it
    refuses until it is back above zero (its ``remaining`` header never goes below 0).

    Args:
        limit: requests (or tokens) admitted per window (the burst of a bucket).
        window_s: the window's length in seconds.
        clock: the Unix time the limiter reads.
        tokens: whether it counts tokens (its headers are then OpenAI's ``-tokens`` ones).
    """

    __slots__ = (
        "admitted",
        "charged",
        "clock",
        "limit",
        "limit_str",
        "refused",
        "tokens",
        "window_s",
    )

    kind: LimiterKind = "fixed"

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float], *, tokens: bool = False
    ) -> None:
        self.clock = clock
        self.limit = limit
        self.window_s = window_s
        self.tokens = tokens
        self.limit_str = str(limit)
        #: Requests admitted and refused so far (the oracle's own counters).
        self.admitted = 0
        self.refused = 0
        #: Tokens charged so far (a token limiter's).
        self.charged = 0

    def __repr__(self) -> str:
        unit = " tokens" if self.tokens else ""
        return (
            f"<{type(self).__name__} {self.limit}{unit}/{self.window_s:g}s "
            f"admitted={self.admitted} refused={self.refused}>"
        )

    def roll(self) -> None:
        """Bring the limiter's state up to its clock (a no-op where state is computed)."""

    def admit(self) -> bool:
        """Count one request; False (and counted as refused) when the limit is reached."""
        now = self.clock()
        if self._free(now) >= 1.0:
            self._take(now, 1.0)
            self.admitted += 1
            return True
        self.refused += 1
        return False

    def allows(self) -> bool:
        """Whether a token is left for one more request (counted as admitted or refused);
        its tokens are charged when it is billed."""
        if self._free(self.clock()) >= 1.0:
            self.admitted += 1
            return True
        self.refused += 1
        return False

    def charge(self, tokens: int) -> None:
        """Charge an answer's billed tokens, now."""
        self.charged += tokens
        self._take(self.clock(), float(tokens))

    def headers(self, request_id: str) -> dict[str, str]:
        """The headers of every answer: JSON content, request id and the limiter's state."""
        return {"Content-Type": _JSON, "x-request-id": request_id, **self._state(self.clock())}

    def refusal(self, request_id: str, state: dict[str, str] | None = None) -> dict[str, str]:
        """The headers of the limiter's 429: its state (``state``, as read when the request
        was refused, or now), and ``retry-after`` from now until the next admission."""
        headers = self.headers(request_id)
        if state is not None:
            headers.update(state)
        headers["retry-after"] = _seconds(self.retry_in())
        return headers

    def state(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers of the limiter's state now (none for ``bare``):
        ``limit``, ``remaining`` and ``reset`` (a Unix time) for requests; OpenAI's
        ``x-ratelimit-{limit,remaining,reset}-tokens`` (the reset a duration) for tokens."""
        return self._state(self.clock())

    def retry_in(self) -> float:
        """Seconds from now until the limiter admits again (0.0 when it would now)."""
        return self._retry_in(self.clock())

    def _state(self, now: float) -> dict[str, str]:
        remaining = str(max(math.floor(self._free(now)), 0))
        if self.tokens:
            return {
                "x-ratelimit-limit-tokens": self.limit_str,
                "x-ratelimit-remaining-tokens": remaining,
                "x-ratelimit-reset-tokens": _duration(self._reset_at(now) - now),
            }
        return {
            "x-ratelimit-limit": self.limit_str,
            "x-ratelimit-remaining": remaining,
            "x-ratelimit-reset": _unix_ms(self._reset_at(now)),
        }

    def _free(self, now: float) -> float:
        """Requests (or tokens) left now; 0 or less when spent (overdrawn)."""
        raise NotImplementedError

    def _take(self, now: float, amount: float) -> None:
        raise NotImplementedError

    def _reset_at(self, now: float) -> float:
        """The Unix time the ``reset`` header names."""
        raise NotImplementedError

    def _retry_in(self, now: float) -> float:
        raise NotImplementedError


class FixedWindow(Limiter):
    """N per window aligned to the clock; the headers count the window down to its end."""

    __slots__ = ("count", "end", "end_str")

    kind: LimiterKind = "fixed"

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float], *, tokens: bool = False
    ) -> None:
        super().__init__(limit, window_s, clock, tokens=tokens)
        self.end = 0.0
        self.end_str = "0"
        self.count = 0.0

    def roll(self) -> None:
        """Start a new window when the clock is past the current one.

        Windows are aligned to multiples of their length since the epoch (as per-minute
        limits aligned to clock minutes are), so the reset times a client sees are a window
        length apart however long it paused. Tokens charged in a window count in it,
        whichever window admitted their request.
        """
        now = self.clock()
        if now >= self.end:
            self.end = (math.floor(now / self.window_s) + 1) * self.window_s
            self.end_str = _unix_ms(self.end)
            self.count = 0.0

    def _free(self, now: float) -> float:
        self.roll()
        return self.limit - self.count

    def _take(self, now: float, amount: float) -> None:
        self.roll()
        self.count += amount

    def _state(self, now: float) -> dict[str, str]:
        if self.tokens:
            return super()._state(now)
        return {  # the common answer's headers: the window's end formatted once per window
            "x-ratelimit-limit": self.limit_str,
            "x-ratelimit-remaining": str(max(math.floor(self.limit - self.count), 0)),
            "x-ratelimit-reset": self.end_str,
        }

    def _reset_at(self, now: float) -> float:
        return self.end

    def _retry_in(self, now: float) -> float:
        return self.end - now


class SlidingLog(Limiter):
    """At most N admissions (or tokens) in any trailing window (a log of their times)."""

    __slots__ = ("log", "total")

    kind: LimiterKind = "sliding"

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float], *, tokens: bool = False
    ) -> None:
        super().__init__(limit, window_s, clock, tokens=tokens)
        self.log: deque[tuple[float, float]] = deque()  # (time, requests or tokens)
        self.total = 0.0  # the sum over the log

    def _prune(self, now: float) -> None:
        log, start = self.log, now - self.window_s
        while log and log[0][0] <= start:
            self.total -= log.popleft()[1]
        if not log:
            self.total = 0.0  # no float residue once the window is empty

    def _free(self, now: float) -> float:
        self._prune(now)
        return self.limit - self.total

    def _take(self, now: float, amount: float) -> None:
        self._prune(now)
        self.log.append((now, amount))
        self.total += amount

    def _reset_at(self, now: float) -> float:
        """When the oldest admission (or charge) leaves the window."""
        self._prune(now)
        return self.log[0][0] + self.window_s if self.log else now

    def _retry_in(self, now: float) -> float:
        """Until enough has left the window for one more admission."""
        self._prune(now)
        excess = self.total - (self.limit - 1.0)
        for at, amount in self.log:
            if excess <= 0.0:
                break
            excess -= amount
            if excess <= 0.0:
                return at + self.window_s - now
        return 0.0


class Bucket(Limiter):
    """A burst of N, refilled continuously at N per window; headers in OpenAI's model
    (``x-ratelimit-limit`` per minute, ``remaining`` the current fill, ``reset`` when full)."""

    __slots__ = ("level", "per_s", "updated")

    kind: LimiterKind = "bucket"

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float], *, tokens: bool = False
    ) -> None:
        super().__init__(limit, window_s, clock, tokens=tokens)
        self.per_s = limit / window_s
        self.limit_str = str(round(self.per_s * 60.0))  # per minute, as OpenAI's headers say
        self.level = float(limit)
        self.updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.level = min(float(self.limit), self.level + (now - self.updated) * self.per_s)
        if self.updated is None or now > self.updated:
            self.updated = now

    def _free(self, now: float) -> float:
        self._refill(now)
        return self.level

    def _take(self, now: float, amount: float) -> None:
        self._refill(now)
        self.level -= amount

    def _reset_at(self, now: float) -> float:
        """When the bucket is full again."""
        self._refill(now)
        return now + (self.limit - self.level) / self.per_s

    def _retry_in(self, now: float) -> float:
        self._refill(now)
        return max(1.0 - self.level, 0.0) / self.per_s


class BareBucket(Bucket):
    """The bucket above behind a gateway that sends no ``x-ratelimit-*`` headers at all."""

    __slots__ = ()

    kind: LimiterKind = "bare"

    def _state(self, now: float) -> dict[str, str]:
        return {}


class Limits:
    """The server's limiters: one of requests, and one of tokens when a token limit is set.

    A request is refused by the first that has nothing left: the tokens (a refused request
    takes no request slot), then the requests. Every answer carries the state of both
    (the token state after the answer's own charge, when it is billed).

    Args:
        requests: the request limiter.
        tokens: the token limiter, or ``None``.
    """

    __slots__ = ("clock", "requests", "tokens")

    def __init__(self, requests: Limiter, tokens: Limiter | None) -> None:
        self.requests = requests
        self.tokens = tokens
        self.clock = requests.clock

    def roll(self) -> None:
        """Bring both limiters up to the clock."""
        self.requests.roll()
        if self.tokens is not None:
            self.tokens.roll()

    def admit(self, *, tokens: bool = True) -> Limiter | None:
        """Count one request; the limiter that refused it, or ``None`` when admitted
        (``tokens=False``: a request that bills none, such as a models listing)."""
        limiter = self.tokens
        if tokens and limiter is not None and not limiter.allows():
            return limiter
        if not self.requests.admit():
            return self.requests
        return None

    def headers(self, request_id: str) -> dict[str, str]:
        """The headers of every answer: JSON content, request id and both limiters' state."""
        headers = self.requests.headers(request_id)
        if self.tokens is not None:
            headers.update(self.tokens.state())
        return headers

    def state(self) -> dict[str, str]:
        """Both limiters' ``x-ratelimit-*`` headers now."""
        state = self.requests.state()
        if self.tokens is not None:
            state.update(self.tokens.state())
        return state

    def refusal(
        self, request_id: str, refused_by: Limiter, state: dict[str, str] | None = None
    ) -> dict[str, str]:
        """The headers of a 429 from ``refused_by``: both states (``state``, as read when
        the request was refused, or now) and ``retry-after`` until it admits again."""
        headers = self.headers(request_id)
        if state is not None:
            headers.update(state)
        headers["retry-after"] = _seconds(refused_by.retry_in())
        return headers

    def charge(self, tokens: int, headers: dict[str, str]) -> None:
        """Charge an answer's billed tokens to the token limiter (if any), and show its new
        state in the answer's ``headers``."""
        limiter = self.tokens
        if limiter is not None:
            limiter.charge(tokens)
            headers.update(limiter.state())


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
    *,
    token_limit: str | None = None,
) -> Limiter:
    """The request limiter of `MockRekaServer`'s options: ``rpm_limit`` (per minute) or
    ``rate_limit`` (``"50/s"``...), at most one of them, of ``kind``; neither: a limiter of
    ``kind`` that advertises a limit never reached (a ``fixed`` one, or any kind beside a
    ``token_limit``).

    Raises:
        ValueError: Both limits are given, ``rpm_limit`` is under 1, ``rate_limit`` is
            malformed, ``kind`` is unknown, or a kind other than ``fixed`` has no limit of
            requests or tokens.
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
    elif kind != "fixed" and token_limit is None:
        raise ValueError(
            f"rate_limit_kind {kind!r} needs a limit: pass rate_limit (e.g. '50/s'), "
            "rpm_limit or token_limit"
        )
    else:
        limit, window_s = _NOMINAL_RPM, _WINDOW_S
    return _KINDS[kind](limit, window_s, clock)


def token_limiter_of(token_limit: str, kind: str, clock: Callable[[], float]) -> Limiter:
    """A token limiter of ``kind``: ``token_limit`` tokens per window (``"5000/s"``,
    ``"100000/min"``), counted from the usage the mock bills.

    Raises:
        ValueError: ``token_limit`` is malformed or ``kind`` is unknown.
    """
    if kind not in _KINDS:
        raise ValueError(f"rate_limit_kind {kind!r}: expected one of {', '.join(LIMITER_KINDS)}")
    limit, window_s = parse_rate_limit(token_limit, what="token limit", unit="TOKENS")
    return _KINDS[kind](limit, window_s, clock, tokens=True)
