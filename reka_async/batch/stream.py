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

from .._exceptions import (
    APITimeoutError,
    BatchAbortedError,
    InsufficientCreditsError,
    InvalidRequestError,
    RateLimitError,
)
from .._http import RetryEvent
from .._models import ChatResponse
from .items import estimate_tokens, item_custom_id
from .limits import AdaptiveLimit, TokenBucket
from .results import BatchResult, BatchStats

if TYPE_CHECKING:
    from .runner import BatchRunner

__all__ = ["BatchStream"]


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
        self._finished = False
        self._closed = False
        self._limit = AdaptiveLimit(runner.concurrency) if runner.adaptive else None
        self._rpm = TokenBucket(runner.rpm) if runner.rpm else None
        self._tpm = TokenBucket(runner.tpm) if runner.tpm else None
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
        """The TPM bucket, when a ``tpm`` budget is set (exposed for inspection)."""
        return self._tpm

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

    async def aclose(self) -> None:
        """Cancel in-flight requests and wait until every worker has stopped."""
        self._closed = True
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        if self._runner.stats.finished_at is None:
            self._runner.stats.finished_at = time.monotonic()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._runner.stats = stats = BatchStats()
        stats.concurrency_limit = float(self._runner.concurrency)
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
                    raise StopAsyncIteration
            got = await self._out.get()
            if got is _END:
                self._finished = True
            elif isinstance(got, BatchResult):
                if not self._ordered:
                    return self._emit(got)
                self._reorder[got.index] = got

    async def _next_item(self) -> tuple[int, Any] | None:
        async with self._input_lock:
            if self._exhausted:
                return None
            try:
                item = await anext(self._source) if self._is_async else next(self._source)
            except (StopIteration, StopAsyncIteration):
                self._exhausted = True
                return None
            index = self._next_index
            self._next_index += 1
            return index, item

    async def _worker(self) -> None:
        runner = self._runner
        try:
            while not self._closed:
                await self._window.acquire()
                try:
                    nxt = await self._next_item()
                except Exception as exc:  # the caller's iterator failed: surface it
                    self._exhausted = True
                    self._fail(exc)
                    return
                if nxt is None:
                    self._window.release()
                    return
                result = await self._run_one(*nxt)
                runner.stats.record(result)
                if runner.on_result is not None:
                    try:
                        runner.on_result(result, runner.stats)
                    except Exception as exc:  # a broken hook stops the batch, loudly
                        self._out.put_nowait(result)
                        self._fail(exc)
                        return
                self._out.put_nowait(result)
                if not result.ok:
                    err = result.error
                    if runner.stop_on_insufficient_credits and isinstance(
                        err, InsufficientCreditsError
                    ):
                        self._fail(
                            BatchAbortedError(
                                f"batch stopped: the account is out of credits ({err}); "
                                f"{runner.stats.done} items finished, the rest were not sent",
                                cause=err,
                            )
                        )
                        return
                    if runner.fail_fast and err is not None:
                        self._fail(err)
                        return
        finally:
            self._alive -= 1
            if self._alive == 0:
                self._out.put_nowait(_END)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self._closed = True
        self._out.put_nowait(_WAKE)

    async def _run_one(self, index: int, item: Any) -> BatchResult:
        runner = self._runner
        try:
            custom_id, body = runner.prepare(index, item)
        except InvalidRequestError as exc:
            custom_id = item_custom_id(item, index)
            return BatchResult(index=index, custom_id=custom_id, request=None, error=exc)
        estimate = 0.0
        if self._rpm is not None:
            await self._rpm.acquire(1)
        if self._tpm is not None:
            # acquire() takes at most a full bucket; the correction below must start from
            # what was actually taken, or an estimate above capacity over-refunds.
            estimate = min(float(estimate_tokens(body)), self._tpm.capacity)
            await self._tpm.acquire(estimate)
        limit = self._limit
        if limit is not None:
            await limit.acquire()
        attempts = [1]

        def on_retry(event: RetryEvent) -> None:
            attempts[0] += 1
            runner.stats.retries += 1
            runner.stats.may_bill_twice += event.may_bill_twice
            if event.rate_limited:
                runner.stats.rate_limited += 1
            if limit is not None and (
                event.rate_limited or isinstance(event.error, APITimeoutError)
            ):
                limit.on_overload()
                runner.stats.concurrency_limit = limit.limit

        start = time.monotonic()
        response: ChatResponse | None = None
        error: BaseException | None = None
        try:
            response = await runner.client.chat.send_body(
                body, timeout=runner.timeout, max_retries=runner.max_retries, on_retry=on_retry
            )
        except Exception as exc:  # every item ends as a result, even on an unexpected error
            error = exc
            # The last attempt's 429 (retries exhausted, or a wait too long to honour) is an
            # overload signal too; on_retry only saw the ones that were retried.
            rate_limited = isinstance(exc, RateLimitError) and not isinstance(
                exc, InsufficientCreditsError
            )
            if rate_limited:
                runner.stats.rate_limited += 1
            if limit is not None and (rate_limited or isinstance(exc, APITimeoutError)):
                limit.on_overload()
                runner.stats.concurrency_limit = limit.limit
        finally:
            if limit is not None:
                await limit.release()
        if response is not None:
            if limit is not None:
                limit.on_success()
                runner.stats.concurrency_limit = limit.limit
            if self._tpm is not None:
                used = response.usage.input_tokens + response.usage.output_tokens
                if used < estimate:
                    self._tpm.refund(estimate - used)
                elif used > estimate:
                    self._tpm.consume(used - estimate)
        return BatchResult(
            index=index,
            custom_id=custom_id,
            request=body,
            response=response,
            error=error,
            attempts=attempts[0],
            latency_s=time.monotonic() - start,
        )
