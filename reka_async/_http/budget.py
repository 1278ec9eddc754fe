"""Client-side rate budgets: ``TokenBucket`` (with refunds and debt) and ``RateBudget``.

The bound a budget holds
------------------------
A ``RateBudget(rpm=R, tpm=T)`` lets through, in any window of ``W`` seconds, at most
``R * W / 60 + request_burst`` requests (HTTP attempts: a retry is a request the server sees)
and ``T * W / 60 + token_burst`` tokens, where each burst is one second's worth by default
(at least one request). That is a token bucket of capacity ``burst`` that starts full and
refills continuously. Tokens are reserved on an estimate (``estimate_tokens``) before each
attempt and settled by its outcome (``accounting.py``: refunded when it was refused or not
sent, corrected with the answer's ``usage``, kept when that is unknown); a request whose estimate is
larger than the whole burst waits for a full bucket and then goes, leaving the bucket in
debt that later requests wait off (it never fails, and the long-run rate still holds).

Who holds one: ``AsyncClient(rpm=..., tpm=...)`` (every request of that client: plain calls,
streams, batches, the sync facade) and ``BatchRunner(rpm=..., tpm=...)`` (every run and stream
of that runner, concurrent ones included); pass the same ``RateBudget`` as ``rate_budget=``
to several clients or runners to share one budget between them (on one event loop).

Why not aiolimiter: its leaky bucket cannot give capacity back, and a TPM budget must refund
the unused part of an estimate once ``usage`` is known.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .accounting import Budget

if TYPE_CHECKING:
    from .._models import Usage

__all__ = ["RateBudget", "TokenBucket", "estimate_tokens", "make_budget"]


class TokenBucket:
    """``rate`` units per ``period`` seconds, refilled continuously, holding up to ``capacity``.

    ``acquire(n)`` waits until ``n`` units are available (first come, first served); an
    amount above ``capacity`` waits for a full bucket and leaves it in debt. ``refund(n)``
    returns units that turned out unused; ``consume(n)`` takes units without waiting (the
    level may go negative: later callers then wait it off).

    Args:
        rate: units per ``period``.
        period: seconds (default a minute).
        capacity: the burst; default one second's worth (``rate / period``), at least 1.
        clock: the monotonic clock (tests pass a fake one).
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
        if not rate > 0 or not period > 0:
            raise ValueError(f"rate and period must be positive, got rate={rate}, period={period}")
        if capacity is not None and not capacity > 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.per_second = rate / period
        self.capacity = float(capacity if capacity is not None else max(1.0, self.per_second))
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
        """Units available now (negative while in debt)."""
        self._refill()
        return self._level

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.per_second)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> float:
        """Wait until ``amount`` units are available and take them; returns ``amount``.

        An amount above ``capacity`` waits for a full bucket, then takes all of it (the level
        goes negative, so the following callers wait for the excess to refill).
        """
        amount = float(amount)
        needed = min(amount, self.capacity)
        async with self._lock:
            self._refill()
            # A hair of tolerance: float rounding must not leave it a femto-unit short forever.
            while self._level < needed - 1e-9:
                await asyncio.sleep((needed - self._level) / self.per_second)
                self._refill()
            self._level -= amount
        return amount

    def consume(self, amount: float) -> None:
        """Take ``amount`` units without waiting (the level may go below zero)."""
        self._refill()
        self._level -= amount

    def refund(self, amount: float) -> None:
        """Give back ``amount`` unused units (never above capacity)."""
        if amount > 0:
            self._refill()
            self._level = min(self.capacity, self._level + amount)


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """A cheap upper-ish estimate: ~4 characters a token, plus the completion budget."""
    chars = 0
    for message in body.get("messages", ()):
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    chars += len(str(part.get("text", part.get("output", ""))))
    return chars // 4 + 1 + int(body.get("max_tokens") or 1024)


def _check_rate(name: str, value: float | None) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
    ):
        raise ValueError(f"{name}: must be a positive number or None, got {value!r}")


class RateBudget:
    """A requests-per-minute and tokens-per-minute budget (see the module docstring).

    Args:
        rpm: requests per minute, or ``None`` for no request budget.
        tpm: tokens per minute (input + output), or ``None``.
        request_burst: requests that may go at once; default one second's worth (at least 1).
        token_burst: tokens that may go at once; default one second's worth.

    Raises:
        ValueError: a rate or burst is not a positive number.
    """

    __slots__ = ("requests", "tokens")

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        request_burst: float | None = None,
        token_burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (
            ("rpm", rpm),
            ("tpm", tpm),
            ("request_burst", request_burst),
            ("token_burst", token_burst),
        ):
            _check_rate(name, value)
        self.requests = (
            TokenBucket(rpm, capacity=request_burst, clock=clock) if rpm is not None else None
        )
        self.tokens = (
            TokenBucket(tpm, capacity=token_burst, clock=clock) if tpm is not None else None
        )

    def __repr__(self) -> str:
        return f"<RateBudget requests={self.requests!r} tokens={self.tokens!r}>"

    @property
    def rpm(self) -> float | None:
        """The request budget per minute, or ``None``."""
        return self.requests.per_second * 60.0 if self.requests is not None else None

    @property
    def tpm(self) -> float | None:
        """The token budget per minute, or ``None``."""
        return self.tokens.per_second * 60.0 if self.tokens is not None else None

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        """Before an attempt: take one request (``rpm``) and ``body``'s token estimate
        (``tpm``), waiting for both; returns the tokens reserved (``accounting.py``)."""
        if self.requests is not None:
            await self.requests.acquire()
        if self.tokens is None or body is None:
            return 0.0
        return await self.tokens.acquire(float(estimate_tokens(body)))

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        """The tokens an answer used: input and output."""
        return float(usage.input_tokens + usage.output_tokens)

    def settle(self, reserved: float, used: float | None) -> None:
        """Correct a token reservation with the tokens used (``0.0``: refund it all;
        ``None``: unknown, keep it). A request taken stays taken: it was an attempt."""
        bucket = self.tokens
        if bucket is None or used is None or not reserved:
            return
        if used < reserved:
            bucket.refund(reserved - used)
        elif used > reserved:
            bucket.consume(used - reserved)


def make_budget(rpm: float | None, tpm: float | None, rate_budget: Budget | None) -> Budget | None:
    """The budget of ``rpm=``/``tpm=``/``rate_budget=`` options (``ValueError`` on a mix-up).

    ``rate_budget`` is a ``RateBudget``, or any other ``Budget`` (``accounting.py``), such as
    the Ray integration's job-wide shared budget.
    """
    if rate_budget is not None:
        if rpm is not None or tpm is not None:
            raise ValueError("pass rpm/tpm or rate_budget, not both")
        if not isinstance(rate_budget, Budget):
            raise ValueError(
                "rate_budget: must be a RateBudget (or another Budget), got "
                f"{type(rate_budget).__name__}"
            )
        return rate_budget
    if rpm is None and tpm is None:
        return None
    return RateBudget(rpm, tpm)
