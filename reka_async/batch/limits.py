"""Client-side rate limiting: a token bucket that can refund, and an AIMD concurrency gate.

Why not aiolimiter: its leaky bucket cannot give back capacity, and TPM budgets must refund the
unused part of a token estimate once ``usage`` is known. The bucket below is the same idea in
~60 lines with ``refund``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["AdaptiveLimit", "TokenBucket"]


class TokenBucket:
    """``rate`` units per ``period`` seconds, refilled continuously, bursting up to ``capacity``.

    ``acquire(n)`` waits until ``n`` units are available (first come, first served);
    ``refund(n)`` returns units that turned out unused; ``consume(n)`` takes units without
    waiting (the level may go negative: later callers then wait it off).
    """

    __slots__ = ("_clock", "_level", "_lock", "_stamp", "capacity", "per_second")

    def __init__(
        self,
        rate: float,
        *,
        period: float = 60.0,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or period <= 0:
            raise ValueError(f"rate and period must be positive, got rate={rate}, period={period}")
        self.per_second = rate / period
        self.capacity = float(capacity if capacity is not None else rate)
        self._clock = clock
        self._level = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"<TokenBucket level={self.level:.1f}/{self.capacity:g} "
            f"rate={self.per_second * 60:g}/min>"
        )

    @property
    def level(self) -> float:
        """Units available now."""
        self._refill()
        return self._level

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.per_second)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` units are available and take them.

        An amount above ``capacity`` waits for a full bucket rather than forever.
        """
        amount = min(float(amount), self.capacity)
        async with self._lock:
            self._refill()
            while self._level < amount:
                await asyncio.sleep((amount - self._level) / self.per_second)
                self._refill()
            self._level -= amount

    def consume(self, amount: float) -> None:
        """Take ``amount`` units without waiting (the level may go below zero)."""
        self._refill()
        self._level -= amount

    def refund(self, amount: float) -> None:
        """Give back ``amount`` unused units (never above capacity)."""
        if amount > 0:
            self._refill()
            self._level = min(self.capacity, self._level + amount)


class AdaptiveLimit:
    """A concurrency gate whose limit follows AIMD: +1 per window of successes, halved on overload.

    The limit moves between 1 and ``maximum``; a decrease happens at most once per
    ``decrease_interval`` seconds so one burst of 429s counts as one signal.
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
    )

    def __init__(
        self,
        maximum: int,
        *,
        decrease_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.min_seen = float(maximum)
        self.in_use = 0
        self.decrease_interval = decrease_interval
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
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)

    def on_overload(self) -> None:
        """Multiplicative decrease (halve), at most once per interval."""
        now = self._clock()
        if now - self._last_decrease >= self.decrease_interval:
            self._last_decrease = now
            self.limit = max(1.0, self.limit / 2.0)
            self.min_seen = min(self.min_seen, self.limit)
