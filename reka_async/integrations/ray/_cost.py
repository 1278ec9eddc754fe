"""The job's ``max_cost`` across actors: one actor holds the budget, workers reserve from it.

The cost actor (``create_cost_ledger``) holds one ``CostBudget``: what the job spent, what
the attempts in flight on every actor reserved, and the first breach of the bound. Each
worker's ``SharedCostBudget`` prices an attempt locally (the same bound as ``run_job``:
``batch/bound.py``) and reserves that amount from the actor before sending it; the actor
grants it only if the job's spend plus every actor's reservations stay within ``max_cost``
(waiting for in-flight attempts to settle if not), so the guarantee of ``batch/cost.py``
holds across actors. Settling is sent to the actor without waiting for it: until it
arrives, the reservation stays counted, which errs on the safe side.

The actor's verdicts are returned, not raised (a Ray task error would wrap them): a
``BudgetExceededError`` latches, so after one request did not fit no actor sends anything
more (as ``run_job``'s batch stops); a breach (an answer billed above its bound) reported by
one worker makes every later reservation on every actor fail with it. The overspend after a
breach is at most what the attempts in flight on all actors, when it arrived, were billed
above their bounds; ``run_ray_job`` asks the actor (``stopped``) which error stopped the job.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...batch import BudgetExceededError, CostBudget, PriceTable, UsageAboveBoundError
from ...batch.bound import DEFAULT_MESSAGE_OVERHEAD
from ._common import require

if TYPE_CHECKING:
    from ..._models import Usage

__all__ = ["SharedCostBudget", "create_cost_ledger"]


class _CostLedger:
    """The cost actor's class: the job's ``CostBudget``, reserved by amount."""

    def __init__(self, max_cost: float, spent: float) -> None:
        # Workers price their requests; the actor only adds amounts up, so it needs no prices.
        self._budget = CostBudget(max_cost, PriceTable(defaults=False), spent=spent)
        self._stop: BudgetExceededError | None = None

    async def reserve(self, amount: float) -> float | BudgetExceededError:
        """Reserve ``amount`` USD for one attempt, or the error that stops the job."""
        if self._stop is not None:
            return self._stop
        try:
            return await self._budget.reserve_amount(amount)
        except BudgetExceededError as exc:  # UsageAboveBoundError included
            self._stop = exc
            return exc

    async def settle(self, reserved: float, used: float | None) -> None:
        """``CostBudget.settle``: replace a reservation by what the attempt cost."""
        self._budget.settle(reserved, used)

    async def breach(self, error: UsageAboveBoundError) -> None:
        """An answer was billed above its bound: every later reservation fails with it."""
        self._budget.set_breach(error)
        if self._stop is None:
            self._stop = error

    async def stopped(self) -> BudgetExceededError | None:
        """The error that stopped the job (``None``: it was not stopped)."""
        return self._stop

    async def totals(self) -> tuple[float, float]:
        """``(spent, reserved)`` in USD, across every actor."""
        return self._budget.spent, self._budget.reserved


@functools.cache
def _ledger_actor_class() -> Any:
    ray = require("ray")
    # Zero CPUs: it only adds numbers. Async: reservations wait on it for others to settle.
    return ray.remote(num_cpus=0, max_concurrency=1000)(_CostLedger)


def create_cost_ledger(max_cost: float, *, spent: float = 0.0) -> Any:
    """Start the job's cost actor: ``max_cost`` USD, of which ``spent`` is already spent.

    Raises:
        InvalidRequestError: ``max_cost`` or ``spent`` is out of range.
    """
    CostBudget(max_cost, PriceTable(defaults=False), spent=spent)  # validate on the driver
    return _ledger_actor_class().remote(float(max_cost), float(spent))


class SharedCostBudget(CostBudget):
    """A worker's door to the cost actor: a ``CostBudget`` whose reservations are the job's.

    It prices each attempt itself (``check``: a model without a price or an unbounded media
    part is refused unsent, as in ``run_job``) and checks each answer against its bound
    (``used``), but reserves from and settles with the actor, so ``max_cost`` holds across
    every actor. Its own ``spent`` and ``reserved`` are this worker's share only.

    Args:
        ledger: the cost actor (``create_cost_ledger``).
        max_cost, prices, media_tokens, message_overhead: as in ``CostBudget``.
    """

    def __init__(
        self,
        ledger: Any,
        max_cost: float,
        prices: PriceTable,
        *,
        media_tokens: int | None = None,
        message_overhead: int = DEFAULT_MESSAGE_OVERHEAD,
    ) -> None:
        super().__init__(
            max_cost, prices, media_tokens=media_tokens, message_overhead=message_overhead
        )
        self._ledger = ledger

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        """Price ``body`` and reserve it from the job's budget (``CostBudget.reserve``)."""
        amount = self.check(body or {})
        if self.breach is not None:
            raise self.breach
        got = await self._ledger.reserve.remote(amount)
        if isinstance(got, BaseException):
            if isinstance(got, UsageAboveBoundError) and self.breach is None:
                self.breach = got  # another actor's answer broke the bound: stop this one
            raise got
        self.reserved += amount
        self._in_flight += 1
        return amount

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        """``CostBudget.used``; a breach found here is told to the actor at once."""
        had = self.breach
        cost = super().used(body, usage)
        if had is None and self.breach is not None:
            self._ledger.breach.remote(self.breach)  # fire and forget: ordered before settle
        return cost

    def settle(self, reserved: float, used: float | None) -> None:
        """Settle locally and with the actor (without waiting for it)."""
        super().settle(reserved, used)
        self._ledger.settle.remote(reserved, used)
