"""``Pacer``: what an attempt waits for before it is sent, shared by a client's copies.

It holds the client's shared ``Cooldown`` (tripped by a quota 429, so every request of the
client waits), the key's window as the server's ``x-ratelimit-*`` headers describe it
(``Quota``) and the learned send rate. The rule it applies is written once, in
``_http/quota.py``'s docstring. The request loop holds one (composition: ``Transport.pacer``);
its copies made by ``with_options`` share it, and ``BatchStats`` reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, Literal

from .._exceptions import APIError, APIStatusError, InsufficientCreditsError, RateLimitError
from .quota import Quota, declared_rate, has_rate_headers, quota_spent
from .retry import Cooldown

__all__ = [
    "CUT_SHARE",
    "MARGIN",
    "MIN_ANSWERS",
    "PACED_CUT_SHARE",
    "SHARE_WINDOW_S",
    "Pacer",
    "RateLimitKind",
]

#: The answers the share of 429s is measured over: those of the last this many seconds.
SHARE_WINDOW_S: Final = 2.0
#: The fewest answers in that window for the share to count.
MIN_ANSWERS: Final = 50
#: The share of rate-limit 429s above which an unpaced client starts pacing.
CUT_SHARE: Final = 0.10
#: The share above which a paced client cuts its rate again.
PACED_CUT_SHARE: Final = 0.03
#: The share of a declared or measured rate the pacer sends at.
MARGIN: Final = 0.97
_PROBE: Final = 1.02  # a quiet, queued client raises its rate by this factor
_MIN_RATE: Final = 0.1
_QUIET_S: Final = 10.0  # no probe for this long after a probe met a 429

#: The kind of a rate-limit 429 (``_http/quota.py``).
RateLimitKind = Literal["quota", "unlabelled", "overload"]


class Pacer:
    """The shared cooldown, the key's window and the learned send rate (see the module
    docstring).

    Args:
        quota: the key's window.
    """

    __slots__ = (
        "_answers",
        "_ceiling",
        "_changed_at",
        "_last_429",
        "_last_spent",
        "_next",
        "_probed_from",
        "_queued",
        "_quiet_until",
        "_refused",
        "cooldown",
        "cuts",
        "kinds",
        "paced_s",
        "quota",
        "rate",
    )

    def __init__(self, quota: Quota) -> None:
        self.cooldown = Cooldown()
        self.quota = quota
        #: The learned send rate, requests per second (``None``: not paced).
        self.rate: float | None = None
        #: Times the rate was set or cut from the share of 429s.
        self.cuts = 0
        #: Rate-limit 429s by kind.
        self.kinds: dict[str, int] = {"quota": 0, "unlabelled": 0, "overload": 0}
        #: Total seconds requests waited for their send slot.
        self.paced_s = 0.0
        self._ceiling: float | None = None  # a declared rate: never probed above
        self._next = 0.0  # monotonic time of the next free send slot
        self._answers: deque[tuple[float, bool]] = deque()  # (time, a rate-limit 429)
        self._refused = 0  # rate-limit 429s in _answers
        self._changed_at = -float("inf")
        self._last_429 = -float("inf")
        self._last_spent = -float("inf")
        self._queued = False  # a request waited for its slot since the last probe
        self._probed_from: float | None = None  # the rate before the latest probe
        self._quiet_until = -float("inf")  # no probe before this (a probe was undone)

    def __repr__(self) -> str:
        rate = "unpaced" if self.rate is None else f"rate={self.rate:.2f}/s"
        return f"<Pacer {rate} {self.cooldown!r} {self.quota!r}>"

    @property
    def active(self) -> bool:
        """Whether an attempt must go through ``before_attempt`` (the loop's one check)."""
        return bool(self.cooldown.deadline or self.quota.active or self.rate)

    async def before_attempt(self) -> None:
        """Wait for the shared cooldown, the attempt's send slot and the key's window."""
        cooldown = self.cooldown
        if cooldown.deadline:
            await cooldown.wait()
        rate = self.rate
        if rate is not None:
            # One slot per request, 1/rate apart: requests released together (after a
            # pause, or a burst of retries) leave one by one.
            now = time.monotonic()
            slot = self._next if self._next > now else now
            self._next = slot + 1.0 / rate
            if slot > now:
                self._queued = True
                self.paced_s += slot - now
                await asyncio.sleep(slot - now)
                if cooldown.deadline:  # tripped while this one waited for its slot
                    await cooldown.wait()
        # The window's countdown, at the moment of sending (a request counted before its
        # slot's wait would land, uncounted, in the next window), unless its reset moves
        # from answer to answer within a window (a sliding window or a bucket, not windows
        # of the clock): once a rate is learned, the send slots pace those.
        quota = self.quota
        if quota.active and (rate is None or not quota.moving):
            pause = quota.before_send()
            if pause:
                cooldown.trip(pause)
                self._next = max(self._next, cooldown.deadline)
                await cooldown.wait()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read an answer's rate-limit headers (any status); the loop calls it for each."""
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None:
            quota = self.quota
            quota.observe(remaining, headers)
            if remaining == "0":
                self._last_spent = time.monotonic()
        elif self._ceiling is None:
            declared = declared_rate(headers)
            if declared is not None:
                self._declare(declared)
        elif quota_spent(headers):  # another shape, seen declaring its rate
            self._last_spent = time.monotonic()

    def _declare(self, rate: float) -> None:
        self._ceiling = rate
        if self.rate is None or self.rate > rate * MARGIN:
            self._set(rate * MARGIN, time.monotonic())

    def _set(self, rate: float, now: float) -> None:
        self.rate = max(rate, _MIN_RATE)
        self._probed_from = None
        self._changed_at = now
        self._answers.clear()
        self._refused = 0

    def answered(self, refused: bool) -> None:
        """Count one answer (``refused``: a rate-limit 429), and cut or probe the rate by
        the share of 429s (``_http/quota.py``, rule 3)."""
        now = time.monotonic()
        answers = self._answers
        answers.append((now, refused))
        if refused:
            self._refused += 1
            self._last_429 = now
            if self._probed_from is not None:
                # The probe went past the limit: back to the rate before it, and no probe
                # for a while (the limit is about here).
                self.rate = self._probed_from
                self._probed_from = None
                self._quiet_until = now + _QUIET_S
        horizon = now - SHARE_WINDOW_S
        while answers and answers[0][0] < horizon:
            if answers.popleft()[1]:
                self._refused -= 1
        if now - self._changed_at < SHARE_WINDOW_S:
            return
        rate = self.rate
        count = len(answers)
        if refused:
            share = self._refused / count
            if count >= MIN_ANSWERS and share > (CUT_SHARE if rate is None else PACED_CUT_SHARE):
                # The send rate times the share the server admitted of it; unpaced, the
                # answers over the window (at least a second: the first answers of an
                # unpaced client arrive together, and a burst is admitted at once).
                span = max(now - answers[0][0], 1.0)
                sent = rate if rate is not None else count / span
                cut = sent * (1.0 - share) * MARGIN
                # Answers counted over a second can span three short windows of the clock
                # and so exceed what the window admits: a cut never sets a rate above the
                # window's own (limit / length, once both are known and fixed).
                window_rate = self.quota.rate
                if window_rate is not None and not self.quota.moving:
                    cut = min(cut, window_rate * MARGIN)
                self._set(cut, now)
                self.cuts += 1
        elif (
            rate is not None
            and self._queued
            and now >= self._quiet_until
            and now - self._last_429 >= SHARE_WINDOW_S
            and now - self._last_spent >= SHARE_WINDOW_S
        ):
            raised = rate * _PROBE
            ceiling = self._ceiling
            if ceiling is not None:
                raised = min(raised, ceiling * MARGIN)
            if raised > rate:
                self._probed_from = rate
                self.rate = raised
                self._changed_at = now
                self._queued = False

    def report(self, stats: Any) -> None:
        """Copy what pacing did onto a ``BatchStats``: the learned rate (or, before one, the
        rate of the window the headers describe), cuts and slot waits."""
        stats.pacing_rate = self.rate if self.rate is not None else self.quota.rate
        stats.rate_cuts = self.cuts
        stats.paced_s = self.paced_s

    @staticmethod
    def rate_limited(error: APIError) -> bool:
        """Whether ``error`` is a rate-limit 429 (not the out-of-credits one)."""
        return isinstance(error, RateLimitError) and not isinstance(error, InsufficientCreditsError)

    @staticmethod
    def kind(error: APIError) -> RateLimitKind | None:
        """The kind of a rate-limit 429 (``_http/quota.py``, rule 1), ``None`` for any other
        error."""
        if not isinstance(error, APIStatusError) or not Pacer.rate_limited(error):
            return None
        headers = error.headers
        if quota_spent(headers):
            return "quota"
        return "overload" if has_rate_headers(headers) else "unlabelled"

    @staticmethod
    def spent(error: APIError) -> bool:
        """Whether a rate-limit 429's headers say the key's window is spent."""
        return Pacer.kind(error) == "quota"

    def refused(self, error: APIError, delay: float | None, max_wait: float) -> None:
        """A quota 429 pauses every request of the client: for ``delay`` when it is retried,
        or for the server's ``retry-after`` (when no longer than ``max_wait``) when it is
        not. The send slots after the pause start at its end."""
        if delay is None:
            wait = error.retry_after if isinstance(error, APIStatusError) else None
            if wait is not None and wait <= max_wait:
                self.cooldown.trip(wait)
        else:
            self.cooldown.trip(delay)
        self._next = max(self._next, self.cooldown.deadline)

    async def wait_retry(self, delay: float, spent: bool) -> None:
        """Sleep before a retry: a spent window waits for the shared cooldown (which another
        429 may extend), anything else for ``delay``."""
        if spent:
            await self.cooldown.wait()
        else:
            await asyncio.sleep(delay)
