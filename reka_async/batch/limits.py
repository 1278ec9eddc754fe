"""Batch-side limits: the AIMD concurrency gate (the token buckets live in ``_http/budget.py``,
where every request of a client can hold them; ``TokenBucket`` is re-exported here).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .._http.budget import TokenBucket

__all__ = ["AdaptiveLimit", "TokenBucket"]

_SHARE_WEIGHT = 0.02  # the exponential average's weight: about the last 50 outcomes


class AdaptiveLimit:
    """A concurrency gate whose limit follows AIMD: +1 per window of successes, halved on overload.

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
        "_cond",
        "_last_decrease",
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
        self._cond = asyncio.Condition()

    def __repr__(self) -> str:
        return f"<AdaptiveLimit limit={self.limit:.1f}/{self.maximum} in_use={self.in_use}>"

    async def acquire(self) -> None:
        """Wait for a slot under the current limit."""
        if self.in_use < int(self.limit):
            self.in_use += 1
            return
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_use < int(self.limit))
            self.in_use += 1

    async def release(self) -> None:
        """Free a slot."""
        self.in_use -= 1
        free = int(self.limit) - self.in_use
        if free > 0:
            async with self._cond:
                self._cond.notify(free)

    def on_success(self) -> None:
        """Additive increase: about +1 per ``limit`` successes."""
        self.overload_share *= 1.0 - _SHARE_WEIGHT
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)

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
