"""``Gate``: what an attempt waits for before it is sent, and after it failed.

The shared cooldown, the key's window (``Quota``), the rate budgets, and the retry decision
with its wait (the two kinds of 429 are told apart here). A base class of ``Transport``,
split from ``transport.py``, which keeps the request loop.
"""

from __future__ import annotations

import asyncio
import logging

from .._exceptions import APIError, APIStatusError, InsufficientCreditsError, RateLimitError
from .budget import RateBudget
from .options import RequestOptions
from .quota import Quota, quota_spent
from .retry import Cooldown, RetryEvent, RetryPolicy

__all__ = ["Gate"]

logger = logging.getLogger("reka_async")


class Gate:
    """The waiting half of a ``Transport``: it sets the attributes below."""

    retry_policy: RetryPolicy
    cooldown: Cooldown
    quota: Quota
    budget: RateBudget | None

    async def wait_before_retry(
        self, method: str, path: str, error: APIError, attempt: int, opts: RequestOptions
    ) -> None:
        """Sleep before the next attempt, or raise ``error`` when it must not be retried.

        Two kinds of rate-limit 429 (see ``_http/quota.py``): one whose headers say the key's
        quota is spent (``x-ratelimit-remaining: 0``) trips the client's shared cooldown, so
        every other request of this client waits too; one that does not (an overload answer)
        delays this request alone.
        """
        policy = self.retry_policy
        delay = policy.delay_for(error, attempt, opts.max_retries)
        rate_limited = isinstance(error, RateLimitError) and not isinstance(
            error, InsufficientCreditsError
        )
        spent = rate_limited and isinstance(error, APIStatusError) and quota_spent(error.headers)
        if delay is None:
            if spent and isinstance(error, APIStatusError):
                # Out of retries, but the other requests of this client must still back off.
                wait = error.retry_after
                if wait is not None and wait <= policy.max_server_wait:
                    self.cooldown.trip(wait)
            raise error
        if spent:
            self.cooldown.trip(delay)
        may_bill_twice = policy.retry_may_bill_twice(error)
        logger.info(
            "retrying %s %s in %.2f s (attempt %d of %d failed%s): %s",
            method,
            path,
            delay,
            attempt + 1,
            opts.max_retries + 1,
            "; it may have reached the server, so this retry may bill twice"
            if may_bill_twice
            else "",
            error,
        )
        if opts.on_retry is not None:
            opts.on_retry(
                RetryEvent(
                    method=method,
                    path=path,
                    attempt=attempt,
                    error=error,
                    delay=delay,
                    rate_limited=rate_limited,
                    quota_spent=spent,
                    may_bill_twice=may_bill_twice,
                )
            )
        if spent:
            await self.cooldown.wait()
        else:
            await asyncio.sleep(delay)

    def _stale_retry(
        self, method: str, path: str, error: APIError, attempt: int, opts: RequestOptions
    ) -> None:
        """Report the transparent retry of a stale keep-alive connection: it may bill twice
        (``_http/retry.py``), so the retry hook and the log see it like any other retry."""
        logger.info(
            "retrying %s %s at once on a new connection (may bill twice: a reused connection "
            "failed before any answer): %s",
            method,
            path,
            error,
        )
        if opts.on_retry is not None:
            opts.on_retry(
                RetryEvent(
                    method=method,
                    path=path,
                    attempt=attempt,
                    error=error,
                    delay=0.0,
                    rate_limited=False,
                    may_bill_twice=True,
                )
            )

    async def before_send(self, opts: RequestOptions) -> None:
        """Wait for the shared cooldown, the key's window and the rate budgets (the slow path
        of every attempt: the request loop calls it only when one of them is in play)."""
        cooldown = self.cooldown
        if cooldown.deadline:
            await cooldown.wait()
        quota = self.quota
        if quota.active:
            pause = quota.before_send()
            if pause:
                cooldown.trip(pause)
                await cooldown.wait()
        if self.budget is not None and self.budget.requests is not None:
            await self.budget.requests.acquire()
        budget = opts.budget
        if budget is not None and budget.requests is not None:
            await budget.requests.acquire()
