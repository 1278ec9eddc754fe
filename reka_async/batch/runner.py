"""``BatchRunner``: many chat requests at bounded concurrency, with bounded memory.

A fixed pool of ``concurrency`` worker tasks pulls items lazily from the input (never one task
per item), so memory stays flat however long the input is. Each item ends as exactly one
``BatchResult`` (a response or an error). Rate limits (RPM/TPM token buckets), the client's
shared cooldown after a 429, and an AIMD concurrency gate sit between the input and the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import BatchAbortedError, InvalidRequestError
from .._http import coerce_timeout
from .._http.options import check_max_retries
from .._types import NOT_GIVEN, PARAM_NAMES, NotGiven
from .._wire import request_body
from .items import BatchOptions, Prepare, prepare_item
from .results import BatchResult, BatchStats
from .stream import BatchStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._client import AsyncClient

__all__ = ["BatchRunner"]

_RUN_OPTIONS: Final = frozenset(BatchOptions.__annotations__) - frozenset(PARAM_NAMES)


class BatchRunner:
    """Run many chat requests through one ``AsyncClient`` at bounded concurrency.

    Args:
        client: the client to send through (its pool must hold ``concurrency`` connections).
        **options: how to run (``concurrency``, ``model``, ``rpm``, ``tpm``, ``adaptive``,
            ``fail_fast``, ``stop_on_insufficient_credits``, ``max_retries``, ``timeout``,
            ``on_result``, ``prepare``) and chat parameters (``max_tokens``,
            ``temperature``, ...) for every item; each key is documented on
            ``reka_async.BatchOptions``.

    An out-of-credits 429 stops the batch with ``BatchAbortedError`` (retrying cannot help).

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
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value <= 0:
                raise InvalidRequestError(f"{name}: must be positive or None, got {value!r}")
        max_retries = options.get("max_retries")
        timeout = options.get("timeout", NOT_GIVEN)
        try:
            check_max_retries(max_retries, allow_none=True)
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
        self.concurrency = concurrency
        self.model = model
        self.rpm = rpm
        self.tpm = tpm
        self.adaptive = options.get("adaptive", True)
        self.fail_fast = options.get("fail_fast", False)
        self.stop_on_insufficient_credits = options.get("stop_on_insufficient_credits", True)
        self.max_retries = max_retries
        self.timeout = timeout
        self.on_result = options.get("on_result")
        self.default_params: dict[str, Any] = params
        self._prepare: Prepare | None = options.get("prepare")
        self.stats = BatchStats()

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
