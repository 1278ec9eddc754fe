"""The one accounting protocol: what every budget reserves before an attempt and how the
attempt's outcome settles it.

Every budget (a client's or a runner's ``RateBudget``, a batch's ``max_cost`` budget,
Ray's job-wide shared budget) is a ``Budget``: it ``reserve``-s room for a request before
each HTTP *attempt* (a retry is a new attempt, reserved again), measures what an answer
``used``, and ``settle``-s a reservation with what was used. The request loop
(``transport.py``) is the only caller, for plain calls and streams alike, so the rule below
is written once, here (``Ledger.close``):

=====================================================  ====================================
the attempt's outcome                                   its reservation
=====================================================  ====================================
``NOT_SENT``: failed before the server could read it    refunded
(refused, DNS, TLS, a connect timeout, cancelled
while waiting to be sent)
``REFUSED``: answered with an error status (4xx/5xx)    refunded (nothing was generated)
``ANSWERED`` with ``usage``                             settled to the usage
``ANSWERED`` without usage, or ``UNKNOWN``: no answer   kept in full (it may have been
(a read timeout, a dropped connection), a body of the   generated and billed)
wrong shape, a stream broken or cancelled after it
was sent
=====================================================  ====================================

A retried attempt that may have been billed (``UNKNOWN``) therefore stays charged, and the
retry reserves again: a cost budget counts both. A 429 is ``REFUSED`` like any status, so
pacing may retry it without spending anything.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._exceptions import APIConnectionError, APIStatusError

if TYPE_CHECKING:
    from .._models import Usage

__all__ = ["Budget", "Ledger", "Outcome", "outcome_of"]


class Outcome(enum.Enum):
    """How an attempt ended, as far as billing goes (the table in the module docstring)."""

    NOT_SENT = "not_sent"
    REFUSED = "refused"
    ANSWERED = "answered"
    UNKNOWN = "unknown"


@runtime_checkable
class Budget(Protocol):
    """A budget the request loop reserves from before every attempt.

    Amounts are in the budget's own unit (tokens, USD); the loop only hands them back.
    """

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        """Wait until ``body`` (the canonical request body, ``None`` for a GET) fits, and
        reserve its worst case; returns the amount reserved. May raise to refuse it."""
        ...

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        """What an answer with ``usage`` used, in this budget's unit."""
        ...

    def settle(self, reserved: float, used: float | None) -> None:
        """Replace a reservation by what was used (``0.0``: refund it; ``None``: keep it)."""
        ...


class Ledger:
    """The reservations of one attempt, across every budget of the request."""

    __slots__ = ("_body", "_held")

    def __init__(self, body: Mapping[str, Any] | None) -> None:
        self._body = body
        self._held: list[tuple[Budget, float]] | None = []

    @classmethod
    async def reserve(cls, budgets: Sequence[Budget], body: Mapping[str, Any] | None) -> Ledger:
        """Reserve ``body`` from each budget in turn; if one refuses (or the wait is
        cancelled), what the others reserved is given back and the error raised."""
        ledger = cls(body)
        held = ledger._held
        assert held is not None
        try:
            for budget in budgets:
                held.append((budget, await budget.reserve(body)))
        except BaseException:
            ledger.close(Outcome.NOT_SENT)
            raise
        return ledger

    def close(self, outcome: Outcome, usage: Usage | None = None) -> None:
        """Settle every reservation by ``outcome`` (the module's rule). Idempotent: only the
        first call counts."""
        held, self._held = self._held, None
        if not held:
            return
        for budget, reserved in held:
            if outcome is Outcome.NOT_SENT or outcome is Outcome.REFUSED:
                budget.settle(reserved, 0.0)
            elif outcome is Outcome.ANSWERED and usage is not None:
                budget.settle(reserved, budget.used(self._body, usage))
            else:
                budget.settle(reserved, None)

    @property
    def open(self) -> bool:
        """Whether the reservations are still held (not yet closed)."""
        return self._held is not None


def outcome_of(error: BaseException) -> Outcome:
    """The outcome of an attempt that failed with ``error`` before any usage was known."""
    if isinstance(error, APIStatusError):
        return Outcome.REFUSED
    if isinstance(error, APIConnectionError) and not error.may_have_reached_server:
        return Outcome.NOT_SENT
    return Outcome.UNKNOWN
