"""A batch worker's retry bookkeeping: the hook that counts an item's attempts and feeds the
run's statistics and adaptive limit, and the request options that carry it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import APITimeoutError
from .._http import RetryEvent
from .fds import fd_exhausted

if TYPE_CHECKING:
    from .stream import BatchStream

__all__ = ["ItemRetries"]


class ItemRetries:
    """The retry hook and request options of one worker, reused for each of its items.

    Made once per worker task and handed down to each item it sends, so an item costs no
    closure, no cells and no ``RequestOptions`` of its own: with
    thousands of items in flight, those were objects the garbage collector walked for every
    request's whole latency.
    """

    __slots__ = ("attempts", "opts", "stream")

    def __init__(self, stream: BatchStream) -> None:
        runner = stream._runner
        self.stream = stream
        self.attempts = 1
        # The runner's rate and cost budgets are reserved before every attempt, and settled
        # by its outcome, in the client's request loop (``_http/accounting.py``).
        budgets = tuple(b for b in (runner.budget, runner.cost_budget) if b is not None)
        self.opts = runner.client._transport.default_options.override(
            timeout=runner.timeout,
            max_retries=runner.max_retries,
            extra_headers=None,
            on_retry=self.on_retry,
            budgets=budgets,
        )

    def on_retry(self, event: RetryEvent) -> None:
        stream = self.stream
        runner = stream._runner
        self.attempts += 1
        stats = runner.stats
        stats.retries += 1
        if event.may_bill_twice:
            stats.may_bill_twice += 1
        if event.rate_limited:
            stats.rate_limited += 1
            kind = event.rate_limit_kind
            if kind == "quota" or event.quota_spent:
                stats.quota_pauses += 1
            elif kind == "unlabelled":
                # Ambiguous on the wire: the client's send rate answers the share of them
                # (``_http/quota.py``), the concurrency does not halve on them too.
                stats.unlabelled_429s += 1
            else:
                stats.overload_429s += 1
                stream._overload()
        elif isinstance(event.error, APITimeoutError) or fd_exhausted(event.error):
            stream._overload()
