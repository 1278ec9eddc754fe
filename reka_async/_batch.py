"""``BatchRunner``: many chat requests at bounded concurrency, with bounded memory.

A fixed pool of ``concurrency`` worker tasks pulls items lazily from the input (never one task
per item), so memory stays flat however long the input is. Each item ends as exactly one
``BatchResult`` (a response or an error). Rate limits (RPM/TPM token buckets), the client's
shared cooldown after a 429, and an AIMD concurrency gate sit between the input and the API.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final

import attrs

from ._client import NOT_GIVEN, AsyncClient, _NotGiven
from ._converter import request_body, request_from_model
from ._exceptions import (
    APITimeoutError,
    BatchAbortedError,
    InsufficientCreditsError,
    InvalidRequestError,
    RateLimitError,
)
from ._models import ChatRequest, ChatResponse
from ._ratelimit import AdaptiveLimit, TokenBucket
from ._transport import RetryEvent, TimeoutLike, as_timeout

__all__ = ["BatchResult", "BatchRunner", "BatchStats", "BatchStream"]

logger = logging.getLogger("reka_async")

Item = str | list[Any] | Mapping[str, Any] | ChatRequest
ResultHook = Callable[["BatchResult", "BatchStats"], None]
Prepare = Callable[[int, Any], tuple[str, dict[str, Any]]]

_ITEM_KEYS: Final = frozenset(("messages", "prompt", "custom_id", "model", "extra_body"))
_RESERVOIR: Final = 16384


@attrs.frozen(kw_only=True)
class BatchResult:
    """The outcome of one batch item: a response or an error, never both.

    Attributes:
        index: position of the item in the input (0-based).
        custom_id: the item's ``custom_id``, or ``str(index)`` when it had none.
        request: the JSON body that was (or would have been) sent; ``None`` if the item was
            invalid before a body could be built.
        response: the ``ChatResponse`` on success.
        error: the exception on failure (a ``RekaError`` subclass for API and input errors).
        attempts: HTTP attempts made (0 when nothing was sent).
        latency_s: seconds from getting a slot to the final outcome, retries included.
    """

    index: int
    custom_id: str
    request: dict[str, Any] | None
    response: ChatResponse | None = None
    error: BaseException | None = None
    attempts: int = 0
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the item has a response."""
        return self.response is not None

    @property
    def text(self) -> str:
        """The response text ("" on failure)."""
        return self.response.text if self.response is not None else ""


@attrs.define(kw_only=True)
class BatchStats:
    """Live counters of a batch; percentiles come from a bounded reservoir of latencies."""

    ok: int = 0
    failed: int = 0
    retried: int = 0
    retries: int = 0
    rate_limited: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    started_at: float = attrs.field(factory=time.monotonic)
    finished_at: float | None = None
    concurrency_limit: float = 0.0
    _latencies: list[float] = attrs.field(factory=list, repr=False, alias="_latencies")
    _seen: int = attrs.field(default=0, repr=False, alias="_seen")

    @property
    def done(self) -> int:
        """Items finished (ok + failed)."""
        return self.ok + self.failed

    @property
    def wall_s(self) -> float:
        """Seconds since the batch started (until it finished, once it has)."""
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return end - self.started_at

    @property
    def requests_per_s(self) -> float:
        """Finished items per second of wall time."""
        wall = self.wall_s
        return self.done / wall if wall > 0 else 0.0

    def latency_percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of item latency in seconds (0.0 when empty)."""
        if not self._latencies:
            return 0.0
        data = sorted(self._latencies)
        k = min(len(data) - 1, max(0, math.ceil(q / 100.0 * len(data)) - 1))
        return data[k]

    @property
    def p50(self) -> float:
        """Median latency in seconds."""
        return self.latency_percentile(50)

    @property
    def p95(self) -> float:
        """95th percentile latency in seconds."""
        return self.latency_percentile(95)

    @property
    def p99(self) -> float:
        """99th percentile latency in seconds."""
        return self.latency_percentile(99)

    def _record(self, result: BatchResult) -> None:
        if result.ok:
            self.ok += 1
            assert result.response is not None
            usage = result.response.usage
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
        else:
            self.failed += 1
        if result.attempts > 1:
            self.retried += 1
        if result.attempts:
            self._seen += 1
            if len(self._latencies) < _RESERVOIR:
                self._latencies.append(result.latency_s)
            else:  # reservoir sampling keeps memory flat on huge batches
                j = random.randrange(self._seen)
                if j < _RESERVOIR:
                    self._latencies[j] = result.latency_s

    def summary(self) -> str:
        """A one-paragraph human summary."""
        return (
            f"{self.done} done: {self.ok} ok, {self.failed} failed ({self.retried} retried); "
            f"tokens in/out {self.input_tokens}/{self.output_tokens}; "
            f"{self.wall_s:.2f} s, {self.requests_per_s:.1f} req/s; "
            f"latency p50 {self.p50 * 1000:.0f} ms, p95 {self.p95 * 1000:.0f} ms, "
            f"p99 {self.p99 * 1000:.0f} ms"
        )

    def as_dict(self) -> dict[str, Any]:
        """The stats as plain JSON-able data."""
        return {
            "done": self.done,
            "ok": self.ok,
            "failed": self.failed,
            "retried": self.retried,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "wall_s": round(self.wall_s, 3),
            "requests_per_s": round(self.requests_per_s, 2),
            "latency_p50_s": round(self.p50, 4),
            "latency_p95_s": round(self.p95, 4),
            "latency_p99_s": round(self.p99, 4),
        }


def _estimate_tokens(body: Mapping[str, Any]) -> int:
    """A cheap upper-ish estimate: ~4 characters a token, plus the completion budget."""
    chars = 0
    for message in body.get("messages", ()):
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    chars += len(str(part.get("text", part.get("output", ""))))
    return chars // 4 + 1 + int(body.get("max_tokens") or 1024)


def prepare_item(
    item: Any, index: int, *, model: str, params: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Turn an input item into ``(custom_id, wire body)`` (``BatchRunner``'s default ``prepare``).

    Args:
        item: a prompt string, a list of messages, a mapping with ``messages`` or ``prompt``
            (other keys are chat parameters), or a ``ChatRequest``.
        index: the item's position in the input (its custom_id when it names none).
        model: model for items that name none.
        params: default chat parameters; a mapping item's own values win.

    Raises:
        InvalidRequestError: the item cannot become a request.
    """
    custom_id: Any = None
    if isinstance(item, str):
        messages: Any = [{"role": "user", "content": item}]
        return str(index), request_body(model=model, messages=messages, params=params, stream=False)
    if isinstance(item, ChatRequest):
        body = request_from_model(item)
        body.pop("stream", None)  # the runner reads whole responses, never SSE
        return str(index), body
    if isinstance(item, list):
        return str(index), request_body(model=model, messages=item, params=params, stream=False)
    if isinstance(item, Mapping):
        custom_id = item.get("custom_id")
        if "messages" in item:
            messages = item["messages"]
        elif isinstance(item.get("prompt"), str):
            messages = [{"role": "user", "content": item["prompt"]}]
        else:
            raise InvalidRequestError("item needs 'messages' (a list) or 'prompt' (a string)")
        merged = dict(params)
        for key, value in item.items():
            if key not in _ITEM_KEYS:
                merged[key] = value
        extra = item.get("extra_body")
        body = request_body(
            model=item.get("model") or model,
            messages=messages,
            params=merged,
            stream=False,
            extra_body=extra if isinstance(extra, Mapping) else None,
        )
        return (str(custom_id) if custom_id is not None else str(index)), body
    raise InvalidRequestError(
        f"item must be a prompt string, a list of messages, a dict with 'messages', or a "
        f"ChatRequest; got {type(item).__name__}"
    )


class BatchRunner:
    """Run many chat requests through one ``AsyncClient`` at bounded concurrency.

    Args:
        client: the client to send through (its pool must hold ``concurrency`` connections).
        concurrency: most requests in flight at once.
        model: model for items that name none.
        rpm: requests-per-minute budget (client-side), or ``None``.
        tpm: tokens-per-minute budget, estimated before each call and corrected with ``usage``.
        adaptive: AIMD concurrency: halve the limit on rate-limit 429s and timeouts, then grow
            by one per window of successes, never above ``concurrency``.
        fail_fast: raise the first error and cancel the rest instead of collecting it.
        stop_on_insufficient_credits: stop the whole batch with ``BatchAbortedError`` on an
            out-of-credits 429 (default). ``False`` records it on the item like any other error.
        max_retries: retries per request (default: the client's).
        timeout: per-request timeout (starts when the request gets its slot).
        on_result: ``hook(result, stats)`` called for every finished item (progress bars).
        prepare: ``prepare(index, item)`` returns the item's ``(custom_id, wire body)`` or
            raises ``InvalidRequestError`` (default: `prepare_item` with ``model`` and the
            default parameters).
        **default_params: chat parameters (``max_tokens``, ``temperature``, ...) for every
            item; an item's own values win.

    An out-of-credits 429 stops the batch with ``BatchAbortedError`` (retrying cannot help).
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        concurrency: int = 64,
        model: str = "reka-flash",
        rpm: float | None = None,
        tpm: float | None = None,
        adaptive: bool = True,
        fail_fast: bool = False,
        stop_on_insufficient_credits: bool = True,
        max_retries: int | None = None,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        on_result: ResultHook | None = None,
        prepare: Prepare | None = None,
        **default_params: Any,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidRequestError(
                f"concurrency: must be a positive integer, got {concurrency!r}"
            )
        if concurrency > client.max_connections:
            raise InvalidRequestError(
                f"concurrency={concurrency} exceeds the client's connection pool "
                f"(max_connections={client.max_connections}); create the client with "
                f"AsyncClient(max_connections={concurrency}) or lower the concurrency"
            )
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value <= 0:
                raise InvalidRequestError(f"{name}: must be positive or None, got {value!r}")
        # Checked here, once: a bad value would otherwise fail every item the same way.
        if max_retries is not None and (isinstance(max_retries, bool) or max_retries < 0):
            raise InvalidRequestError(
                f"max_retries: must be a non-negative integer or None, got {max_retries!r}"
            )
        if not isinstance(timeout, _NotGiven):
            try:
                as_timeout(timeout, client._transport.timeout)
            except ValueError as exc:
                raise InvalidRequestError(str(exc)) from None
        # Validate the defaults once, up front, with a dummy message.
        request_body(
            model=model,
            messages=[{"role": "user", "content": "x"}],
            params=default_params,
            stream=False,
        )
        self.client = client
        self.concurrency = concurrency
        self.model = model
        self.rpm = rpm
        self.tpm = tpm
        self.adaptive = adaptive
        self.fail_fast = fail_fast
        self.stop_on_insufficient_credits = stop_on_insufficient_credits
        self.max_retries = max_retries
        self.timeout = timeout
        self.on_result = on_result
        self._prepare = prepare
        self.default_params = dict(default_params)
        self.stats = BatchStats()

    def __repr__(self) -> str:
        return (
            f"<BatchRunner concurrency={self.concurrency} model={self.model!r} rpm={self.rpm} "
            f"tpm={self.tpm} adaptive={self.adaptive}>"
        )

    def stream(
        self, items: Iterable[Any] | AsyncIterable[Any], *, ordered: bool = False
    ) -> BatchStream:
        """Results as they complete (or in input order with ``ordered=True``).

        Memory stays bounded: at most ``concurrency`` requests in flight plus a small
        look-ahead (and, when ordered, a reorder window of ``4 * concurrency``).
        Use ``async with runner.stream(items) as results:`` to guarantee that leaving early
        cancels in-flight requests at once; a plain ``async for`` with ``break`` does so when
        the stream is garbage-collected.
        """
        self.stats = BatchStats()
        return BatchStream(self, items, ordered=ordered)

    async def run(self, items: Iterable[Any] | AsyncIterable[Any]) -> list[BatchResult]:
        """Run every item and return the results in input order.

        Raises:
            BatchAbortedError: out of credits; ``.results`` holds the items finished so far.
            Exception: with ``fail_fast=True``, the first item error.
        """
        results: list[BatchResult] = []
        try:
            async with self.stream(items) as stream:
                async for result in stream:
                    results.append(result)
        except BatchAbortedError as exc:
            results.sort(key=lambda r: r.index)
            exc.results = results
            raise
        results.sort(key=lambda r: r.index)
        return results

    # --- per item ---------------------------------------------------------------------------

    def prepare(self, index: int, item: Any) -> tuple[str, dict[str, Any]]:
        """Turn an input item into ``(custom_id, wire body)`` with the configured ``prepare``.

        Raises:
            InvalidRequestError: the item cannot become a request.
        """
        if self._prepare is not None:
            return self._prepare(index, item)
        return prepare_item(item, index, model=self.model, params=self.default_params)


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
                runner.stats._record(result)
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
            custom_id = _item_custom_id(item, index)
            return BatchResult(index=index, custom_id=custom_id, request=None, error=exc)
        estimate = 0.0
        if self._rpm is not None:
            await self._rpm.acquire(1)
        if self._tpm is not None:
            # acquire() takes at most a full bucket; the correction below must start from
            # what was actually taken, or an estimate above capacity over-refunds.
            estimate = min(float(_estimate_tokens(body)), self._tpm.capacity)
            await self._tpm.acquire(estimate)
        limit = self._limit
        if limit is not None:
            await limit.acquire()
        attempts = [1]

        def on_retry(event: RetryEvent) -> None:
            attempts[0] += 1
            runner.stats.retries += 1
            if event.rate_limited:
                runner.stats.rate_limited += 1
            if limit is not None and (
                event.rate_limited or isinstance(event.error, APITimeoutError)
            ):
                limit.on_overload()
                runner.stats.concurrency_limit = limit.limit

        start = time.monotonic()
        try:
            response = await runner.client._send_chat(
                body, timeout=runner.timeout, max_retries=runner.max_retries, on_retry=on_retry
            )
        except Exception as exc:  # every item ends as a result, even on an unexpected error
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
            return BatchResult(
                index=index,
                custom_id=custom_id,
                request=body,
                error=exc,
                attempts=attempts[0],
                latency_s=time.monotonic() - start,
            )
        finally:
            if limit is not None:
                await limit.release()
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
            attempts=attempts[0],
            latency_s=time.monotonic() - start,
        )


def _item_custom_id(item: Any, index: int) -> str:
    if isinstance(item, Mapping) and item.get("custom_id") is not None:
        return str(item["custom_id"])
    return str(index)
