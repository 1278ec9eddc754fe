"""A batch worker's retry bookkeeping: the hook that counts an item's attempts and feeds the
run's statistics and adaptive limit, and the request options that carry it, with the
client's own hooks guarded (``guard_hook``: a raising hook never fails an answered item)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import APITimeoutError
from .._http import Hooks, RetryEvent
from .cost import ItemCharge
from .fds import fd_exhausted

if TYPE_CHECKING:
    from .stream import BatchStream

__all__ = ["ItemRetries", "guard_hook"]

logger = logging.getLogger("reka_async")


class ItemRetries:
    """The retry hook and request options of one worker, reused for each of its items.

    Made once per worker task and handed down to each item it sends, so an item costs no
    closure, no cells and no ``RequestOptions`` of its own: with
    thousands of items in flight, those were objects the garbage collector walked for every
    request's whole latency.
    """

    __slots__ = ("_client_retry", "attempts", "charge", "held", "opts", "stream")

    def __init__(self, stream: BatchStream) -> None:
        runner = stream._runner
        self.stream = stream
        self.attempts = 1
        #: Whether this worker holds one of the batch's slots (a request in flight).
        self.held = False
        #: What the cost budget charged the item being sent (``None``: no ``max_cost``).
        self.charge = ItemCharge(runner.cost_budget) if runner.cost_budget is not None else None
        # The runner's rate and cost budgets are reserved before every attempt, and settled
        # by its outcome, in the client's request loop (``_http/accounting.py``).
        budgets = tuple(b for b in (runner.budget, self.charge) if b is not None)
        base = runner.client._transport.default_options
        opts = base.override(
            timeout=runner.timeout,
            max_retries=runner.max_retries,
            extra_headers=None,
            budgets=budgets,
        )
        # The client's hooks run guarded: one that raises never turns an answered (billed)
        # item into a failure (``guard_hook``), nor skips this worker's own retry bookkeeping,
        # which runs after the client's ``on_retry``, as it did when they were chained.
        hooks = base.hooks
        self._client_retry = (
            guard_hook(stream, "on_retry", base.on_retry) if base.on_retry is not None else None
        )
        self.opts = attrs.evolve(
            opts,
            on_retry=self.on_retry,
            slot=self,
            hooks=None
            if hooks is None
            else Hooks(
                [guard_hook(stream, "on_request", h) for h in hooks.on_request],
                [guard_hook(stream, "on_response", h) for h in hooks.on_response],
            ),
        )

    def give(self) -> None:
        """Give this worker's slot back, if it holds one."""
        if self.held:
            self.held = False
            self.stream._slots.release_nowait()

    def leave(self) -> None:
        """The request waits before a retry: its slot goes to the next item meanwhile
        (``RequestOptions.slot``; the request loop calls it)."""
        self.give()
        self.stream._lend()

    async def rejoin(self) -> None:
        """Take a slot before the next attempt, waiting for one (first come, first served:
        the item that waited queues as any other)."""
        await self.stream._slots.acquire()
        self.held = True

    def on_retry(self, event: RetryEvent) -> None:
        if self._client_retry is not None:
            self._client_retry(event)
        self.count_retry(event)

    def count_retry(self, event: RetryEvent) -> None:
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


def guard_hook(
    stream: BatchStream, kind: str, hook: Callable[[Any], None]
) -> Callable[[Any], None]:
    """``hook`` (a client's ``on_request``, ``on_response`` or ``on_retry``) as a batch calls
    it: an exception it raises is counted in ``stats.hook_errors[kind]`` and logged once per
    kind and exception type in the run, never raised into the request (which would fail an
    item whose answer was read, and billed)."""

    def guarded(event: Any) -> None:
        try:
            hook(event)
        except Exception as exc:
            stats = stream._runner.stats
            stats.hook_errors[kind] = stats.hook_errors.get(kind, 0) + 1
            seen = stream.hook_errors_logged
            if (kind, type(exc)) not in seen:
                seen.add((kind, type(exc)))
                logger.warning(
                    "the client's %s hook raised %s: %s; the batch goes on and keeps the "
                    "answer (further errors like it are counted in stats.hook_errors, not "
                    "logged)",
                    kind,
                    type(exc).__name__,
                    exc,
                )

    return guarded
