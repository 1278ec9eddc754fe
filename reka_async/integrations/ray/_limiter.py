"""The shared rate limiter: one actor holds the job's buckets, workers take permits in chunks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...batch import TokenBucket, estimate_tokens
from ._common import check_positive_or_none, require

if TYPE_CHECKING:
    from ..._models import Usage

__all__ = ["SharedBudget", "create_rate_limiter"]


class _RateLimiter:
    """The limiter actor's class: the job's RPM and TPM token buckets, granted in chunks."""

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        request_chunk: float,
        token_chunk: float,
    ) -> None:
        self._rpm = TokenBucket(rpm) if rpm else None
        self._tpm = TokenBucket(tpm) if tpm else None
        self._limits = (rpm, tpm, request_chunk, token_chunk)
        self._granted_requests = 0.0
        self._granted_tokens = 0.0
        self._refunded_tokens = 0.0
        self._calls = 0

    async def limits(self) -> tuple[float | None, float | None, float, float]:
        """``(rpm, tpm, request_chunk, token_chunk)``."""
        return self._limits

    async def acquire(self, requests: float, tokens: float) -> None:
        """Wait until ``requests`` and ``tokens`` are available, then grant them."""
        self._calls += 1
        if requests and self._rpm is not None:
            await self._rpm.acquire(requests)
            self._granted_requests += requests
        if tokens and self._tpm is not None:
            await self._tpm.acquire(tokens)
            self._granted_tokens += tokens

    async def refund(self, requests: float = 0.0, tokens: float = 0.0) -> None:
        """Give back permits a worker will not use."""
        if requests and self._rpm is not None:
            self._rpm.refund(requests)
            self._granted_requests -= requests
        if tokens and self._tpm is not None:
            self._tpm.refund(tokens)
            self._refunded_tokens += tokens

    async def stats(self) -> dict[str, float]:
        """Counters: acquire calls, requests and tokens granted, tokens refunded."""
        return {
            "acquire_calls": float(self._calls),
            "granted_requests": self._granted_requests,
            "granted_tokens": self._granted_tokens,
            "refunded_tokens": self._refunded_tokens,
        }


@functools.cache
def _limiter_actor_class() -> Any:
    ray = require("ray")
    # Zero CPUs: it only sleeps on its buckets. An async actor serves many waiters at once.
    return ray.remote(num_cpus=0, max_concurrency=1000, max_restarts=-1)(_RateLimiter)


def create_rate_limiter(
    rpm: float | None = None,
    tpm: float | None = None,
    *,
    request_chunk: float | None = None,
    token_chunk: float | None = None,
    name: str | None = None,
) -> Any:
    """Start the shared rate-limiter actor for a job; pass it as ``limiter=`` to the mappers.

    The bound it holds: the actor's buckets are ``RateBudget``'s (a burst of one second's
    worth), so permits are *granted* at most ``rpm * W / 60 + rpm / 60`` in any window of
    ``W`` seconds. Workers take permits in chunks and may hold a chunk unused for a while,
    so requests *sent* in a window can exceed that by at most the permits held by workers:
    ``num_workers * request_chunk`` (a quarter second of budget each by default), tokens
    likewise with ``token_chunk``.

    Args:
        rpm: the job's requests-per-minute budget, or ``None``.
        tpm: the job's tokens-per-minute budget (estimated per request), or ``None``.
        request_chunk: requests a worker takes per round trip (default: a quarter second of
            budget, at least 1).
        token_chunk: tokens a worker takes per round trip (default: a quarter second of
            budget; a request needing more takes what it needs).
        name: a Ray actor name, to find the same limiter from several drivers
            (``get_if_exists``).

    Returns:
        The Ray actor handle.
    """
    check_positive_or_none(rpm=rpm, tpm=tpm)
    if rpm is None and tpm is None:
        raise ValueError("create_rate_limiter needs rpm and/or tpm")
    if request_chunk is None:
        request_chunk = max(1.0, math.floor(rpm / 240.0)) if rpm else 1.0
    if token_chunk is None:
        token_chunk = max(1.0, tpm / 240.0) if tpm else 0.0
    if rpm is not None:
        request_chunk = min(request_chunk, rpm)
    if tpm is not None:
        token_chunk = min(token_chunk, tpm)
    cls = _limiter_actor_class()
    if name is not None:
        cls = cls.options(name=name, get_if_exists=True)
    return cls.remote(rpm, tpm, float(request_chunk), float(token_chunk))


class SharedBudget:
    """A worker's local balance of permits, topped up from the limiter actor in chunks.

    A ``Budget`` (``reka_async/_http/accounting.py``): the actor's client reserves from it
    before every attempt (one request and the body's token estimate) and settles by the
    attempt's outcome, as it does a ``RateBudget``: refunded when refused or not sent,
    corrected with the usage, kept when unknown.
    """

    def __init__(self, limiter: Any) -> None:
        self._limiter = limiter
        self._lock = asyncio.Lock()
        self._limits: tuple[float | None, float | None, float, float] | None = None
        self._requests = 0.0
        self._tokens = 0.0

    @property
    def balance(self) -> tuple[float, float]:
        """The permits this worker holds and has not used: ``(requests, tokens)``."""
        return self._requests, self._tokens

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        """Take one request and ``body``'s token estimate; returns the tokens taken."""
        return await self.take(float(estimate_tokens(body)) if body is not None else 0.0)

    async def take(self, tokens: float) -> float:
        """Take one request and ``tokens`` tokens; returns the tokens actually taken."""
        async with self._lock:
            if self._limits is None:
                got = await self._limiter.limits.remote()
                self._limits = (got[0], got[1], float(got[2]), float(got[3]))
            rpm, tpm, request_chunk, token_chunk = self._limits
            tokens = min(tokens, tpm) if tpm else 0.0
            need_requests = rpm is not None and self._requests < 1.0
            need_tokens = tpm is not None and self._tokens < tokens
            if need_requests or need_tokens:
                ask_r = request_chunk if need_requests else 0.0
                ask_t = 0.0
                if need_tokens and tpm is not None:
                    ask_t = min(tpm, max(token_chunk, tokens - self._tokens))
                await self._limiter.acquire.remote(ask_r, ask_t)
                self._requests += ask_r
                self._tokens += ask_t
            if rpm is not None:
                self._requests -= 1.0
            self._tokens -= tokens
            return tokens

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        """The tokens an answer used: input and output."""
        return float(usage.input_tokens + usage.output_tokens)

    def settle(self, reserved: float, used: float | None) -> None:
        """Correct a token reservation (locally; a surplus goes back to the actor):
        ``0.0`` refunds it, ``None`` (unknown) keeps it."""
        if used is None or not reserved or self._limits is None or self._limits[1] is None:
            return
        self._tokens += reserved - used
        chunk = max(self._limits[3], 1.0)
        if self._tokens > 2 * chunk:
            surplus = self._tokens - chunk
            self._tokens -= surplus
            self._limiter.refund.remote(0.0, surplus)  # fire and forget

    async def give_back(self) -> None:
        """Return the unused balance to the limiter (on close)."""
        requests, tokens = max(self._requests, 0.0), max(self._tokens, 0.0)
        self._requests = self._tokens = 0.0
        if requests or tokens:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._limiter.refund.remote(requests, tokens), 5.0)
