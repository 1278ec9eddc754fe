"""The Ray integration's shared limiter actor, faked in-process (no cluster): for the tests
of ``SharedBudget`` and the mapper's engine."""

from __future__ import annotations

import asyncio
from typing import Any


class Remote:
    """A Ray actor method stand-in: ``.remote(...)`` returns a finished future."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def remote(self, *args: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(self.fn(*args))
        return future


class LocalLimiter:
    """The shared limiter actor's interface: a TPM budget of 1e6 that grants what is asked,
    in chunks of 1e5 tokens; ``granted`` counts the tokens handed out."""

    def __init__(self) -> None:
        self.granted = 0.0
        self.limits = Remote(lambda: (None, 1e6, 1.0, 1e5))
        self.acquire = Remote(self._acquire)
        self.refund = Remote(lambda requests=0.0, tokens=0.0: None)

    def _acquire(self, requests: float, tokens: float) -> None:
        self.granted += tokens
