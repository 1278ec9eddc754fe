"""``BatchStream``: the worker pool behind ``BatchRunner.stream()``.

``concurrency`` workers pull ``(index, item)`` pairs from the input under a lock; a window
semaphore bounds how far they read ahead of the caller; each item passes the RPM/TPM buckets
and the AIMD gate, is sent with the client's retries and shared cooldown, and ends as exactly
one ``BatchResult`` on the output queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._exceptions import (
    APIStatusError,
    APITimeoutError,
    BatchAbortedError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
)
from .._http.budget import RateBudget, TokenBucket
from .._http.pacing import Pacer
from .._models import ChatResponse
from .breaker import ErrorRate, ErrorRateExceededError, fatal_reason, unknown_model
from .cache import CacheError
from .collector import GcRelief
from .cost import BudgetExceededError
from .fds import fd_exhausted
from .items import item_custom_id
from .limits import AdaptiveLimit
from .results import BatchResult, BatchStats
from .retries import ItemRetries

if TYPE_CHECKING:
    from .runner import BatchRunner

__all__ = ["OVERLOAD_TOLERANCE", "BatchStream"]

#: The share of recent outcomes that must be overload signals before the adaptive limit
#: decreases (``AdaptiveLimit.tolerance``): a stray overload 429 in a hundred is not one.
OVERLOAD_TOLERANCE: Final = 0.1


class _Marker:
    __slots__ = ()


_END: Final = _Marker()  # the last worker has stopped
_WAKE: Final = _Marker()  # a worker recorded a failure


class BatchStream:
    """Async iterator of ``BatchResult`` driven by a fixed pool of worker tasks.

    Returned by ``BatchRunner.stream()``; also an async context manager whose exit cancels
    whatever is still running and waits for it.
    """

    def __init__(
        self, runner: BatchRunner, items: Iterable[Any] | AsyncIterable[Any], *, ordered: bool
    ) -> None:
        self._runner = runner
        self._items = items
        self._ordered = ordered
        self._source: Any = None
        self._is_async = isinstance(items, AsyncIterable)
        self._next_index = 0
        self._input_lock = asyncio.Lock()
        self._exhausted = False
        self._out: asyncio.Queue[BatchResult | _Marker] = asyncio.Queue()
        # Bounds items taken from the input but not yet handed to the caller: in flight,
        # queued, or (ordered) waiting in the reorder buffer.
        window = (4 if ordered else 2) * runner.concurrency
        self._window = asyncio.Semaphore(window)
        self._workers: list[asyncio.Task[None]] = []
        self._alive = 0
        self._failure: BaseException | None = None
        self._started = False
        self._gc_held = False  # this stream counts in GcRelief (released once, in aclose)
        self._finished = False
        self._closed = False
        self._limit = (
            AdaptiveLimit(runner.concurrency, tolerance=OVERLOAD_TOLERANCE)
            if runner.adaptive
            else None
        )
        # The requests in flight: at most ``concurrency`` (or the adaptive limit). An item
        # waiting out a retry's delay gives its slot up meanwhile (``ItemRetries.leave``)
        # and an extra worker sends the next item in it (``_lend``); so up to
        # ``concurrency`` more items may be held, waiting, beside those in flight.
        self._slots = self._limit or AdaptiveLimit(runner.concurrency)
        self._extras = 0  # extra workers alive
        self._hook_failed = False
        #: The (hook kind, exception type) pairs a raising client hook was logged for.
        self.hook_errors_logged: set[tuple[str, type[BaseException]]] = set()
        rate = runner.max_error_rate
        self._error_rate = ErrorRate(rate) if rate is not None else None
        self._input_error: Exception | None = None
        # Models an item's 404 said do not exist: later items naming them are not sent.
        self._missing_models: dict[Any, APIStatusError] = {}
        self._reorder: dict[int, BatchResult] = {}
        self._emit_next = 0

    def __repr__(self) -> str:
        return (
            f"<BatchStream workers={self._alive} done={self._runner.stats.done} "
            f"ordered={self._ordered} closed={self._closed}>"
        )

    @property
    def stats(self) -> BatchStats:
        """The live statistics of this run."""
        return self._runner.stats

    @property
    def tpm_bucket(self) -> TokenBucket | None:
        """The runner's TPM bucket, when it has a ``tpm`` budget (exposed for inspection)."""
        budget = self._runner.budget
        return budget.tokens if isinstance(budget, RateBudget) else None

    @property
    def concurrency_limit(self) -> AdaptiveLimit | None:
        """The adaptive concurrency gate, when ``adaptive=True``."""
        return self._limit

    async def __aenter__(self) -> BatchStream:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> BatchStream:
        return self

    def __del__(self) -> None:
        # Fallback for a bare ``async for ... break``: cancelling is synchronous.
        for task in getattr(self, "_workers", ()):
            if not task.done():
                task.cancel()
        if getattr(self, "_gc_held", False):  # never closed: the collector's threshold back
            self._gc_held = False
            GcRelief.release()

    async def aclose(self) -> None:
        """Cancel in-flight requests and wait until every worker has stopped."""
        self._closed = True
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        if self._gc_held:
            self._gc_held = False
            GcRelief.release()
        if self._runner.stats.finished_at is None:
            self._runner.stats.finished_at = time.monotonic()
        progress = self._runner.progress
        if progress is not None and self._started:
            await progress.aclose()

    def unclaimed(self) -> list[BatchResult]:
        """Take the results that finished but were not handed out (the stream was closed or
        its consumer cancelled before it read them), in the order they finished. Call it
        once the stream is closed (``aclose``, or its ``async with`` left).

        ``BatchRunner.run`` adds them to what it keeps, so a cancelled or stopped run loses
        no answer that was read (and billed).
        """
        taken: list[BatchResult] = []
        while not self._out.empty():
            got = self._out.get_nowait()
            if isinstance(got, BatchResult):
                taken.append(got)
        taken += self._reorder.values()
        self._reorder.clear()
        return taken

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._runner.gc_tuning:
            GcRelief.acquire()
            self._gc_held = True
        self._runner.stats = stats = BatchStats()
        stats.concurrency_limit = float(self._runner.concurrency)
        if self._runner.progress is not None:
            self._runner.progress.start(stats)
        items = self._items
        self._source = aiter(items) if isinstance(items, AsyncIterable) else iter(items)
        self._alive = self._runner.concurrency
        self._workers = [
            asyncio.create_task(self._worker(), name=f"reka-batch-worker-{i}")
            for i in range(self._runner.concurrency)
        ]

    def _emit(self, result: BatchResult) -> BatchResult:
        self._window.release()
        return result

    async def __anext__(self) -> BatchResult:
        self._start()
        while True:
            if self._ordered and self._emit_next in self._reorder:
                self._emit_next += 1
                return self._emit(self._reorder.pop(self._emit_next - 1))
            if self._out.empty():
                if self._failure is not None:
                    if self._reorder:  # hand out what finished before raising
                        return self._emit(self._reorder.pop(min(self._reorder)))
                    failure, self._failure = self._failure, None
                    await self.aclose()
                    raise failure
                if self._finished:
                    await self.aclose()
                    if self._input_error is not None:
                        error, self._input_error = self._input_error, None
                        raise error
                    raise StopAsyncIteration
            got = await self._out.get()
            if got is _END:
                self._finished = True
            elif isinstance(got, BatchResult):
                if not self._ordered:
                    return self._emit(got)
                self._reorder[got.index] = got

    async def _next_item(self) -> tuple[int, Any] | None:
        if not self._is_async:  # next() cannot be interleaved on one event loop: no lock
            return self._take_next()
        async with self._input_lock:  # an async source may suspend inside __anext__
            if self._exhausted:
                return None
            try:
                item = await anext(self._source)
            except StopAsyncIteration:
                self._exhausted = True
                return None
            index = self._next_index
            self._next_index += 1
            return index, item

    def _take_next(self) -> tuple[int, Any] | None:
        if self._exhausted:
            return None
        try:
            item = next(self._source)
        except StopIteration:
            self._exhausted = True
            return None
        index = self._next_index
        self._next_index += 1
        return index, item

    def _lend(self) -> None:
        """An item gave its slot up to wait before a retry: while a slot is spare, an extra
        worker sends the next items in it (at most ``concurrency`` extras at a time); it
        stops after an item once no slot is spare (the item that waited queues for one in
        ``rejoin``, and the extra gives its slot to it)."""
        if (
            self._closed
            or self._exhausted
            or not self._slots.spare
            or self._extras >= self._runner.concurrency
        ):
            return
        self._extras += 1
        self._alive += 1
        workers = self._workers
        if len(workers) >= 4 * self._runner.concurrency:  # drop the extras that stopped
            workers[:] = [task for task in workers if not task.done()]
        extra = asyncio.create_task(self._worker(extra=True), name="reka-batch-worker-extra")
        workers.append(extra)

    async def _worker(self, extra: bool = False) -> None:
        runner = self._runner
        retries = ItemRetries(self)  # this worker's retry hook and options, for every item
        pacer = runner.client.pacer
        try:
            while not self._closed:
                await self._window.acquire()
                try:
                    nxt = self._take_next() if not self._is_async else await self._next_item()
                except Exception as exc:  # the caller's iterator failed: surface it once
                    # the items already sent have finished (they are paid for), not before.
                    self._exhausted = True
                    if self._input_error is None:
                        self._input_error = exc
                    self._window.release()
                    return
                if nxt is None:
                    self._window.release()
                    return
                result = await self._run_one(*nxt, retries)
                if result is None:  # the budget stopped the batch before sending it
                    self._window.release()
                    return
                runner.stats.record(result)
                pacer.report(runner.stats)
                hook = runner.on_result
                if hook is not None and not self._hook_failed:
                    try:
                        hook(result, runner.stats)
                    except Exception as exc:  # a broken hook stops the batch, loudly, once
                        self._hook_failed = True
                        self._out.put_nowait(result)
                        self._fail(exc)
                        return
                self._out.put_nowait(result)
                budget = runner.cost_budget
                if budget is not None and budget.breach is not None:
                    # An answer was billed above its bound: stop now, before anything else
                    # is sent (the in-flight attempts are cancelled by the stream's close).
                    self._fail(budget.breach)
                    return
                err = result.error
                if err is not None:
                    reason = fatal_reason(
                        err,
                        enabled=runner.circuit_breaker,
                        max_wait=runner.client.retry_policy.max_server_wait,
                    )
                    if reason is not None:
                        self._fail(
                            BatchAbortedError(
                                f"batch stopped: {reason}; {runner.stats.done} items "
                                f"finished, the rest were not sent",
                                cause=err,
                            )
                        )
                        return
                    if runner.fail_fast:
                        self._fail(err)
                        return
                if self._error_rate is not None and result.request is not None:
                    # result.request is None: an input error, which says nothing of the API.
                    reason = self._error_rate.record(err is not None)
                    if reason is not None:
                        self._fail(
                            ErrorRateExceededError(
                                f"batch stopped: {reason}; {runner.stats.done} items "
                                f"finished, the rest were not sent",
                                cause=err,
                            )
                        )
                        return
                if extra and not self._slots.spare:
                    return  # the slot it was lent is wanted back (or taken)
        finally:
            if extra:
                self._extras -= 1
            self._alive -= 1
            if self._alive == 0:
                self._out.put_nowait(_END)

    def _keep(self, result: BatchResult) -> None:
        """Count a finished item and queue it for the caller (``unclaimed`` finds it if the
        caller has gone)."""
        self._runner.stats.record(result)
        self._out.put_nowait(result)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self._closed = True
        self._out.put_nowait(_WAKE)

    def _overload(self) -> None:
        limit = self._limit
        if limit is not None:
            limit.on_overload()
            self._runner.stats.concurrency_limit = limit.limit

    async def _run_one(self, index: int, item: Any, retries: ItemRetries) -> BatchResult | None:
        runner = self._runner
        metadata = item.get("metadata") if isinstance(item, dict) else None
        try:
            custom_id, body = runner.prepare(index, item)
        except InvalidRequestError as exc:
            custom_id = item_custom_id(item, index)
            return BatchResult(
                index=index, custom_id=custom_id, request=None, error=exc, metadata=metadata
            )
        cache = runner.cache
        digest = cache.key(runner.hash_body(body), runner.cache_scope) if cache is not None else ""
        if cache is not None:
            try:
                hit = await cache.get(digest)
            except CacheError as exc:
                self._fail(exc)
                return None
            if hit is not None:
                return BatchResult(
                    index=index,
                    custom_id=custom_id,
                    request=body,
                    response=hit,
                    cached=True,
                    cost_usd=0.0,
                    metadata=metadata,
                )
        result = await self._send_one(index, custom_id, body, retries)
        if isinstance(result.error, BudgetExceededError) and result.attempts == 1:
            # The budget refused the first attempt: nothing was sent. The batch stops and
            # the item has no result (a resume sends it).
            self._fail(result.error)
            return None
        if cache is not None and result.response is not None:
            try:
                await cache.put(digest, result.response)
            except CacheError as exc:  # the answer is kept; the batch stops, loudly
                self._fail(exc)
            except asyncio.CancelledError:
                # Cancelled while caching an answer that was read (and billed): the result is
                # kept where ``unclaimed`` finds it, then the cancel goes on.
                self._keep(attrs.evolve(result, metadata=metadata) if metadata else result)
                raise
        if metadata is not None:
            result = attrs.evolve(result, metadata=metadata)
        return result

    async def _send_one(
        self,
        index: int,
        custom_id: str,
        body: dict[str, Any],
        retries: ItemRetries,
    ) -> BatchResult:
        runner = self._runner
        missing = self._missing_models.get(body.get("model"))
        if missing is not None:
            # An earlier item's 404 said this model does not exist: do not send this one.
            not_sent = NotFoundError(
                f"not sent: model {body.get('model')!r} was not found for an earlier item "
                f"({missing})",
                status_code=missing.status_code,
                body=missing.body,
                request_id=None,
                error_type=missing.error_type,
            )
            return BatchResult(index=index, custom_id=custom_id, request=body, error=not_sent)
        limit = self._limit
        if self._slots.try_acquire():
            retries.held = True
        else:
            await retries.rejoin()
        retries.attempts = 1
        charge = retries.charge
        if charge is not None:
            charge.charged = 0.0
        stats = runner.stats
        start = time.monotonic()
        response: ChatResponse | None = None
        error: BaseException | None = None
        try:
            response = await runner.client.chat._send(body, None, retries.opts)
        except Exception as exc:  # every item ends as a result, even on an unexpected error
            error = exc
            # The last attempt's 429 (retries exhausted, or a wait too long to honour) is an
            # overload signal too; on_retry only saw the ones that were retried.
            kind = Pacer.kind(exc) if isinstance(exc, RateLimitError) else None
            if kind is not None:
                stats.rate_limited += 1
                if kind == "overload":
                    stats.overload_429s += 1
                    self._overload()
                elif kind == "unlabelled":
                    stats.unlabelled_429s += 1
            elif isinstance(exc, APITimeoutError) or fd_exhausted(exc):
                self._overload()
            elif isinstance(exc, NotFoundError) and unknown_model(exc, body.get("model")):
                self._missing_models[body["model"]] = exc
        finally:
            retries.give()
        if response is not None and limit is not None:
            limit.on_success()
            stats.concurrency_limit = limit.limit
        cost = None
        if response is not None:
            cost = runner.prices.cost(str(body.get("model", "")), response.usage)
        return BatchResult(
            index=index,
            custom_id=custom_id,
            request=body,
            response=response,
            error=error,
            attempts=retries.attempts,
            latency_s=time.monotonic() - start,
            cost_usd=cost,
            charged_usd=charge.charged if charge is not None else None,
        )
