"""``BatchRunner``: many chat requests at bounded concurrency, with bounded memory.

A fixed pool of ``concurrency`` worker tasks pulls items lazily from the input (never one task
per item), so memory stays flat however long the input is; while items wait out a retry's
delay, as many extra workers (at most ``concurrency``) send the next items in their slots.
Each item ends as exactly one ``BatchResult`` (a response or an error). Rate limits (RPM/TPM
token buckets), the client's shared cooldown after a 429, and an AIMD concurrency gate sit
between the input and the API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Iterable
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import BatchAbortedError, InvalidRequestError
from .._http import coerce_timeout
from .._http.budget import RateBudget, make_budget
from .._http.options import check_max_retries
from .._types import NOT_GIVEN, PARAM_NAMES, NotGiven
from .._wire import request_body
from .._wire.hashing import request_hasher_for
from .bound import DEFAULT_MESSAGE_OVERHEAD
from .breaker import check_max_error_rate
from .cache import RequestCache
from .collector import GC_CONCURRENCY
from .cost import CostBudget, PriceTable
from .fds import fit_concurrency
from .items import BatchOptions, Prepare, prepare_item
from .progress import BatchProgress
from .results import BatchResult, BatchStats
from .stream import BatchStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._client import AsyncClient

__all__ = ["BatchRunner"]

logger = logging.getLogger("reka_async")

_RUN_OPTIONS: Final = frozenset(BatchOptions.__annotations__) - frozenset(PARAM_NAMES)


class BatchRunner:
    """Run many chat requests through one ``AsyncClient`` at bounded concurrency.

    Args:
        client: the client to send through (its pool must hold ``concurrency`` connections).
        **options: how to run (``concurrency``, ``model``, ``rpm``, ``tpm``, ``adaptive``,
            ``fail_fast``, ``circuit_breaker``, ``max_retries``, ``timeout``,
            ``on_result``, ``prepare``) and chat parameters (``max_tokens``,
            ``temperature``, ...) for every item; each key is documented on
            ``reka_async.BatchOptions``.

    An out-of-credits 429 stops the batch with ``BatchAbortedError`` (retrying cannot help).
    A ``concurrency`` the open-file limit cannot hold runs at what it can (``fd_note``).

    Raises:
        InvalidRequestError: an option is invalid (checked once, here, rather than failing
            every item the same way).
    """

    def __init__(self, client: AsyncClient, **options: Unpack[BatchOptions]) -> None:
        concurrency = options.get("concurrency", 64)
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
        rpm, tpm = options.get("rpm"), options.get("tpm")
        max_retries = options.get("max_retries")
        timeout = options.get("timeout", NOT_GIVEN)
        try:
            budget = make_budget(rpm, tpm, options.get("rate_budget"))
            check_max_retries(max_retries, allow_none=True)
            max_error_rate = check_max_error_rate(options.get("max_error_rate"))
            if not isinstance(timeout, NotGiven):
                coerce_timeout(timeout, client.timeout)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        model = options.get("model", "reka-flash")
        params = {k: v for k, v in options.items() if k not in _RUN_OPTIONS}
        # Validate the defaults once, up front, with a dummy message.
        request_body(
            model=model, messages=[{"role": "user", "content": "x"}], params=params, stream=False
        )
        self.client = client
        # A concurrency the open-file limit cannot hold is lowered to what it can: items
        # then never fail for descriptors (said on the logger, as it changes the run).
        fitted, fd_note = fit_concurrency(
            concurrency, raise_limit=options.get("raise_fd_limit", False)
        )
        if fd_note is not None:
            logger.warning("BatchRunner: %s", fd_note)
        #: The concurrency the run uses: ``concurrency``, or less when the open-file limit
        #: cannot hold that many connections (``fd_note`` says so).
        self.concurrency = fitted
        #: What was done about the open-file limit (raised, or the concurrency lowered), or
        #: ``None`` when it was enough.
        self.fd_note = fd_note
        self.model = model
        #: The runner's rate budget, shared by every run and stream of it (or ``None``).
        self.budget = budget
        self.rpm = budget.rpm if isinstance(budget, RateBudget) else None
        self.tpm = budget.tpm if isinstance(budget, RateBudget) else None
        self.adaptive = options.get("adaptive", True)
        self.fail_fast = options.get("fail_fast", False)
        #: Whether a run at ``concurrency >= 256`` raises the collector's first threshold (only
        #: when asked: a library leaves the process's collector alone by default).
        self.gc_tuning = bool(options.get("gc_tuning", False)) and concurrency >= GC_CONCURRENCY
        self.circuit_breaker = options.get("circuit_breaker", True)
        #: Stop once more than this share of the last ``ERROR_RATE_WINDOW`` items failed.
        self.max_error_rate = max_error_rate
        #: The results finished by the last ``run()`` that did not complete (cancelled,
        #: or stopped by an error), in input order; empty after a complete run.
        self.partial_results: list[BatchResult] = []
        self.max_retries = max_retries
        self.timeout = timeout
        self.on_result = options.get("on_result")
        self.default_params: dict[str, Any] = params
        self._prepare: Prepare | None = options.get("prepare")
        self.stats = BatchStats()
        prices = options.get("prices")
        #: The prices of ``cost_usd`` (the defaults unless ``prices=`` was given).
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        max_cost = options.get("max_cost")
        #: The ``max_cost`` budget (``None``: no budget); shared by every run of this runner.
        self.cost_budget = (
            CostBudget(
                max_cost,
                self.prices,
                spent=options.get("cost_spent", 0.0),
                media_tokens=options.get("media_tokens"),
                message_overhead=options.get("message_overhead", DEFAULT_MESSAGE_OVERHEAD),
            )
            if max_cost is not None
            else None
        )
        if self.cost_budget is not None and self.prices.get(model) is None:
            raise InvalidRequestError(
                f"max_cost: no price is known for model {model!r}, so the budget cannot be "
                f"kept; give its price (prices={{{model!r}: {{'input': USD, 'output': USD}}}} "
                f"per million tokens, or --prices FILE)"
            )
        cache = options.get("cache")
        #: The request cache (``None``: none).
        self.cache = RequestCache(cache) if isinstance(cache, str) else cache
        #: The request identity (the one ``--resume`` stores); the cache keys by it and
        #: ``cache_scope``.
        self.hash_body = request_hasher_for(client.base_url, client.api)
        #: The endpoint and account the cache keys by (``RequestCache.scope_for``).
        self.cache_scope = (
            self.cache.scope_for(
                client.base_url, client.api, client._transport.credential_fingerprint
            )
            if self.cache is not None
            else ""
        )
        progress = options.get("progress", False)
        #: The live progress display (``None``: none).
        self.progress: BatchProgress | None = (
            BatchProgress() if progress is True else progress or None
        )

    def __repr__(self) -> str:
        return (
            f"<BatchRunner concurrency={self.concurrency} model={self.model!r} rpm={self.rpm} "
            f"tpm={self.tpm} adaptive={self.adaptive}>"
        )

    def prepare(self, index: int, item: Any) -> tuple[str, dict[str, Any]]:
        """Turn an input item into ``(custom_id, wire body)`` with this runner's defaults.

        Uses the ``prepare`` option when one was given, else ``prepare_item``.

        Raises:
            InvalidRequestError: the item cannot become a request.
        """
        if self._prepare is not None:
            return self._prepare(index, item)
        return prepare_item(item, index, model=self.model, params=self.default_params)

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
        progress = self.progress
        if progress is not None and progress.total is None and hasattr(items, "__len__"):
            progress.total = len(items)  # type: ignore[arg-type]
        return BatchStream(self, items, ordered=ordered)

    async def run(self, items: Iterable[Any] | AsyncIterable[Any]) -> list[BatchResult]:
        """Run every item and return the results in input order.

        Finished results are never lost: when the run stops early, the error carries them.

        Raises:
            BatchAbortedError: the circuit breaker stopped the batch (a refused key, no
                credits, a server wait above the cap, ``max_error_rate``), the input
                iterator raised, or the ``on_result`` hook raised (the original error is
                its ``__cause__``); ``.results`` holds the items finished so far, in input order.
            asyncio.CancelledError: the run was cancelled; the finished results are in
                ``runner.partial_results`` (and on the error as ``.results`` where the awaiter
                sees the instance ``run()`` raised: not through a ``Task`` on Python 3.10).
            Exception: with ``fail_fast=True``, the first item error (the finished results
                are in ``runner.partial_results``).
        """
        results: list[BatchResult] = []
        self.partial_results = []
        stream = self.stream(items)
        try:
            async with stream:
                async for result in stream:
                    results.append(result)
        except BatchAbortedError as exc:
            exc.results = self.partial_results = _kept(results, stream)
            raise
        except asyncio.CancelledError as exc:
            self.partial_results = _kept(results, stream)
            exc.results = self.partial_results  # type: ignore[attr-defined]
            raise
        except Exception as exc:
            self.partial_results = _kept(results, stream)
            if self.fail_fast and _is_item_error(exc, results):
                raise  # the item's own error, as fail_fast promises
            aborted = BatchAbortedError(
                f"batch stopped: {type(exc).__name__}: {exc}; {len(results)} items finished, "
                f"the rest were not sent",
                cause=exc,
            )
            aborted.results = self.partial_results
            raise aborted from exc
        return _in_order(results)


def _kept(results: list[BatchResult], stream: BatchStream) -> list[BatchResult]:
    """What a run that stopped early keeps: the results it read, and those that finished
    but were still queued when it stopped (the stream is closed by then), in input order."""
    results += stream.unclaimed()
    return _in_order(results)


def _in_order(results: list[BatchResult]) -> list[BatchResult]:
    results.sort(key=lambda r: r.index)
    return results


def _is_item_error(exc: BaseException, results: list[BatchResult]) -> bool:
    """Whether ``exc`` is an item's own error (raised by ``fail_fast``)."""
    return any(r.error is exc for r in results)
