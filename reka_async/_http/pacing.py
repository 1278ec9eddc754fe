"""``Pacer``: what an attempt waits for before it is sent, shared by a client's copies.

It holds the client's shared ``Cooldown`` (tripped by a 429 that says the key's window is
spent, so every request of the client waits) and the key's window as the server's
``x-ratelimit-*`` headers describe it (``Quota``). The request loop holds one (composition:
``Transport.pacer``); its copies made by ``with_options`` share it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from .._exceptions import APIError, APIStatusError, InsufficientCreditsError, RateLimitError
from .quota import Quota, quota_spent
from .retry import Cooldown

__all__ = ["Pacer"]


class Pacer:
    """The shared cooldown and the key's window (see the module docstring).

    Args:
        quota: the key's window.
    """

    __slots__ = ("cooldown", "quota")

    def __init__(self, quota: Quota) -> None:
        self.cooldown = Cooldown()
        self.quota = quota

    def __repr__(self) -> str:
        return f"<Pacer {self.cooldown!r} {self.quota!r}>"

    async def before_attempt(self) -> None:
        """Wait for the shared cooldown and the key's window (the loop calls this only while
        ``cooldown.deadline`` or ``quota.active`` is set)."""
        cooldown = self.cooldown
        if cooldown.deadline:
            await cooldown.wait()
        quota = self.quota
        if quota.active:
            pause = quota.before_send()
            if pause:
                cooldown.trip(pause)
                await cooldown.wait()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read an answer's rate-limit headers (any status)."""
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None:
            self.quota.observe(remaining, headers)

    @staticmethod
    def rate_limited(error: APIError) -> bool:
        """Whether ``error`` is a rate-limit 429 (not the out-of-credits one)."""
        return isinstance(error, RateLimitError) and not isinstance(error, InsufficientCreditsError)

    @staticmethod
    def spent(error: APIError) -> bool:
        """Whether a rate-limit 429's headers say the key's window is spent (``_http/quota.py``:
        the two kinds of 429)."""
        return (
            isinstance(error, APIStatusError)
            and Pacer.rate_limited(error)
            and quota_spent(error.headers)
        )

    def refused(self, error: APIError, delay: float | None, max_wait: float) -> None:
        """A 429 that says the window is spent pauses every request of the client: for
        ``delay`` when it is retried, or for the server's ``retry-after`` (when no longer
        than ``max_wait``) when it is not."""
        if delay is None:
            wait = error.retry_after if isinstance(error, APIStatusError) else None
            if wait is not None and wait <= max_wait:
                self.cooldown.trip(wait)
        else:
            self.cooldown.trip(delay)

    async def wait_retry(self, delay: float, spent: bool) -> None:
        """Sleep before a retry: a spent window waits for the shared cooldown (which another
        429 may extend), anything else for ``delay``."""
        if spent:
            await self.cooldown.wait()
        else:
            await asyncio.sleep(delay)
