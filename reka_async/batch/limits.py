"""Batch-side limits: the AIMD concurrency gate (the token buckets live in ``_http/budget.py``,
where every request of a client can hold them; ``TokenBucket`` is re-exported here).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from .._http.budget import TokenBucket

__all__ = ["AdaptiveLimit", "TokenBucket"]

_SHARE_WEIGHT = 0.02  # the exponential average's weight: about the last 50 outcomes


class AdaptiveLimit:
    """A concurrency gate whose limit follows AIMD: +1 per window of successes, halved on overload.

    A batch holds its requests in flight to ``concurrency`` with one, adaptive or not (a
    fixed one is never told of successes or overloads).

    The limit moves between 1 and ``maximum``; a decrease happens at most once per
    ``decrease_interval`` seconds so one burst of 429s counts as one signal. With a
    ``tolerance`` above 0, an overload signal decreases the limit only while the share of
    overload signals among recent outcomes (an exponential average over about the last 50)
    exceeds it: a few stray overload 429s in a healthy run do not cost half the throughput,
    a server that keeps refusing does.

    Overload signals are overload 429s (not a spent quota: pacing handles that), timeouts
    and running out of file descriptors (``EMFILE``).
    """

    __slots__ = (
        "_clock",
        "_last_decrease",
        "_waiters",
        "decrease_interval",
        "in_use",
        "limit",
        "maximum",
        "min_seen",
        "overload_share",
        "tolerance",
    )

    def __init__(
        self,
        maximum: int,
        *,
        decrease_interval: float = 1.0,
        tolerance: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.min_seen = float(maximum)
        self.in_use = 0
        self.decrease_interval = decrease_interval
        self.tolerance = tolerance
        #: The recent share of overload signals among outcomes (an exponential average).
        self.overload_share = 0.0
        self._clock = clock
        self._last_decrease = -float("inf")
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return f"<AdaptiveLimit limit={self.limit:.1f}/{self.maximum} in_use={self.in_use}>"

    def try_acquire(self) -> bool:
        """Take a free slot if there is one and nobody is queued for it (no await: the
        batch's hot path, once per item)."""
        if self.in_use < int(self.limit) and not self._waiters:
            self.in_use += 1
            return True
        return False

    @property
    def spare(self) -> bool:
        """Whether a slot is free with nobody queued for it."""
        return self.in_use < int(self.limit) and not self._waiters

    async def acquire(self) -> None:
        """Take a slot, waiting (first come, first served) while ``limit`` are in use."""
        if self.try_acquire():  # a free slot, nobody queued before us
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake()  # a free slot (cancelled waiters ahead of us): taken at once
        try:
            await waiter  # whoever wakes us has counted the slot as ours
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release_nowait()  # woken, then cancelled before running: pass it on
            raise

    def release_nowait(self) -> None:
        """Free a slot and hand it to the first waiter, if any (synchronous)."""
        self.in_use -= 1
        if self._waiters:
            self._wake()

    async def release(self) -> None:
        """Free a slot (``release_nowait``, for callers that await it)."""
        self.release_nowait()

    def _wake(self) -> None:
        # O(1) per slot handed over: a deque of futures instead of an asyncio.Condition,
        # whose notify walks its waiters and whose lock costs two awaits per release (with
        # thousands of workers the walk was a measurable share of a C=4,096 batch's CPU).
        waiters = self._waiters
        while waiters and self.in_use < int(self.limit):
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                self.in_use += 1
                waiter.set_result(None)

    def on_success(self) -> None:
        """Additive increase: about +1 per ``limit`` successes."""
        self.overload_share *= 1.0 - _SHARE_WEIGHT
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            if self._waiters:
                self._wake()

    def on_overload(self) -> None:
        """Multiplicative decrease (halve), at most once per interval and only while the
        recent share of overload signals is above ``tolerance``."""
        self.overload_share += (1.0 - self.overload_share) * _SHARE_WEIGHT
        if self.overload_share <= self.tolerance:
            return
        now = self._clock()
        if now - self._last_decrease >= self.decrease_interval:
            self._last_decrease = now
            self.limit = max(1.0, self.limit / 2.0)
            self.min_seen = min(self.min_seen, self.limit)
