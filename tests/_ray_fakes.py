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
    in chunks of 1e5 tokens; ``granted`` counts the tokens handed out. Its shared pacing is
    the real actor's."""

    def __init__(self) -> None:
        from reka_async.integrations.ray._limiter import _RateLimiter

        self.granted = 0.0
        self.limits = Remote(lambda: (None, 1e6, 1.0, 1e5))
        self.acquire = Remote(self._acquire)
        self.refund = Remote(lambda requests=0.0, tokens=0.0: None)
        self.actor = _RateLimiter(None, 1e6, 1.0, 1e5)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.pacing = AsyncRemote(self.actor.pacing, self.tasks)

    def _acquire(self, requests: float, tokens: float) -> None:
        self.granted += tokens


class LocalSharedActor:
    """The shared actor (``reka_async/integrations/ray/_limiter.py``) run in-process: the
    real actor class behind ``.remote`` stand-ins, shared by several mappers ("actors"), on
    ``clock`` (its members' last syncs)."""

    def __init__(
        self, rpm: float | None = None, tpm: float | None = None, *, clock: Any = None
    ) -> None:
        import time

        from reka_async.integrations.ray._limiter import _RateLimiter

        self.actor = _RateLimiter(rpm, tpm, 1.0, 1.0, clock=clock or time.monotonic)
        self.tasks: set[asyncio.Task[Any]] = set()
        for name in ("limits", "acquire", "refund", "pacing", "stats"):
            setattr(self, name, AsyncRemote(getattr(self.actor, name), self.tasks))


class AsyncRemote:
    """A Ray async-actor method stand-in: ``.remote(...)`` schedules the coroutine as a task
    (awaitable, or dropped for fire-and-forget calls: the tasks are kept until done, and run
    in the order they were submitted, as one caller's actor calls do)."""

    def __init__(self, fn: Any, tasks: set[asyncio.Task[Any]]) -> None:
        self.fn = fn
        self.tasks = tasks

    def remote(self, *args: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(self.fn(*args))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


class LocalCostLedger:
    """The job's cost actor (``reka_async/integrations/ray/_cost.py``), run in-process: the
    real actor class behind ``.remote`` stand-ins, shared by several mappers ("actors")."""

    def __init__(self, max_cost: float, spent: float = 0.0) -> None:
        from reka_async.integrations.ray._cost import _CostLedger

        self.actor = _CostLedger(max_cost, spent)
        self.tasks: set[asyncio.Task[Any]] = set()
        for name in ("reserve", "settle", "breach", "stopped", "totals"):
            setattr(self, name, AsyncRemote(getattr(self.actor, name), self.tasks))

    async def drain(self) -> None:
        """Wait for the fire-and-forget calls (settles) to run."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks))
