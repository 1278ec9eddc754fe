"""A mapper's engine: one client, one runner and one request stream on the actor's loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

import attrs

from ..._client import AsyncClient
from ..._exceptions import BatchAbortedError, InvalidRequestError
from ...batch import BatchResult, BatchRunner, BudgetExceededError
from ...batch.breaker import fatal_reason
from ...jobs import prepare_line
from ._cost import SharedCostBudget
from ._limiter import SharedBudget, SharedPacing
from ._rows import Row

__all__ = ["Engine"]

_NOT_SENT: Final = "not sent: the circuit breaker stopped this actor"


class _Ticket:
    """The results of one batch, filled in by position as they arrive."""

    __slots__ = ("cancelled", "future", "remaining", "results")

    def __init__(self, n: int, loop: asyncio.AbstractEventLoop) -> None:
        self.results: list[BatchResult | None] = [None] * n
        self.remaining = n
        self.future: asyncio.Future[None] = loop.create_future()
        self.cancelled = False
        if n == 0:
            self.future.set_result(None)

    def put(self, position: int, result: BatchResult) -> None:
        if self.results[position] is None:
            self.results[position] = result
            self.remaining -= 1
            if self.remaining == 0 and not self.future.done():
                self.future.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if not self.cancelled and not self.future.done():
            self.future.set_exception(exc)


@attrs.frozen
class _Job:
    ticket: _Ticket
    position: int
    item: dict[str, Any]
    line: int | None


@attrs.frozen
class _Pending:
    """A job the stream has pulled, with what ``_feed`` prepared for it (once)."""

    job: _Job
    prepared: tuple[str, dict[str, Any]] | InvalidRequestError


class Engine:
    """Everything bound to the actor's event loop: one client, one runner, one stream.

    Every batch the actor runs puts its rows on one queue; the runner's single stream pulls
    from it, so ``concurrency`` bounds the requests of all batches together, and one
    dispatcher task routes each result back to its batch. Each item is prepared once, as it
    is pulled; the runner's ``prepare`` hands that result over. The shared budget is the
    client's (``AsyncClient(rate_budget=...)``): every attempt reserves from it.

    Args:
        client: the client the runner sends through (closed by `aclose`).
        budget: the worker's share of a shared limiter (the client's ``rate_budget``), or
            ``None``; its unused balance goes back on `aclose`.
        pacing: the link of the client's pacer with the shared actor's pacing, or ``None``:
            synced before the first request and then every ``SYNC_PERIOD_S`` until `aclose`.
        cost: the job's ``max_cost`` budget, shared by every actor (``_cost.py``), or
            ``None``. When it stops the job (a request does not fit, or an answer broke its
            bound), the stream ends and every row not answered gets a not-sent
            ``BatchAbortedError`` (the job's other actors stop at their next reservation).
        circuit_breaker: after an error the runner's breaker stops on (``fatal_reason``),
            send nothing more (the runner itself never stops: a failed row never fails the
            block).
        model, params: the defaults of every item (as in ``prepare_item``).
        **runner_options: the rest of the ``BatchRunner`` arguments.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        budget: SharedBudget | None,
        circuit_breaker: bool,
        model: str,
        params: Mapping[str, Any],
        cost: SharedCostBudget | None = None,
        pacing: SharedPacing | None = None,
        **runner_options: Any,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.pacing = pacing
        self.pacing_task = (
            self.loop.create_task(pacing.run(client.pacer), name="reka-ray-pacing")
            if pacing is not None
            else None
        )
        self.model = model
        self.params = params
        self.runner = BatchRunner(
            client,
            model=model,
            circuit_breaker=False,
            prepare=self._prepared,
            **runner_options,
            **params,
        )
        if cost is not None:
            # The runner reserves every attempt from its cost budget (and records what it
            # charged each item, ``charged_usd``); here that budget is the job's, across actors.
            self.runner.cost_budget = cost
        self.budget = budget
        self.circuit_breaker = circuit_breaker
        self.queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self.pending: dict[int, _Pending] = {}
        self.next_index = 0
        self.failure: BaseException | None = None
        self.aborted: BaseException | None = None
        self.abort_reason = ""
        #: The cost budget's error that ended the stream (``None``: it did not).
        self.stopped: BudgetExceededError | None = None
        self.stream = self.runner.stream(self._feed())
        self.task = self.loop.create_task(self._dispatch(), name="reka-ray-dispatch")

    async def run(self, rows: Sequence[Row]) -> list[BatchResult]:
        """Run one batch's rows through the shared stream; results in row order."""
        if self.failure is not None:
            raise RuntimeError("RekaChatMapper: the request stream failed") from self.failure
        if self.pacing is not None:
            await self.pacing.ready()  # a client started afresh starts at the job's rate
        ticket = _Ticket(len(rows), self.loop)
        for position, row in enumerate(rows):
            if self.stopped is not None and row.item is not None:
                ticket.put(position, self._not_sent(row.item, position))
            elif row.item is None:
                assert row.error is not None
                custom_id = row.custom_id if row.custom_id is not None else str(position)
                error = BatchResult(index=-1, custom_id=custom_id, request=None, error=row.error)
                ticket.put(position, error)
            else:
                self.queue.put_nowait(_Job(ticket, position, row.item, row.line))
        try:
            await ticket.future
        except asyncio.CancelledError:
            ticket.cancelled = True  # its queued rows are dropped, not sent
            raise
        return [r for r in ticket.results if r is not None]

    def _prepared(self, index: int, item: Any) -> tuple[str, dict[str, Any]]:
        """The runner's ``prepare``: what ``_feed`` prepared for ``index``."""
        prepared = self.pending[index].prepared
        if isinstance(prepared, InvalidRequestError):
            raise prepared
        return prepared

    async def _feed(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            job = await self.queue.get()
            if job is None:
                return
            if job.ticket.cancelled:
                continue
            if self.aborted is not None:
                job.ticket.put(job.position, self._not_sent(job.item, job.position))
                continue
            # The stream numbers items in the order it pulls them: this one is next_index.
            index = self.next_index
            prepared: tuple[str, dict[str, Any]] | InvalidRequestError
            try:
                prepared = prepare_line(
                    job.item, index, job.line, model=self.model, params=self.params
                )
            except InvalidRequestError as exc:
                prepared = exc  # nothing will be sent: no permit needed
            self.pending[index] = _Pending(job, prepared)
            self.next_index += 1
            yield job.item

    async def _dispatch(self) -> None:
        failure: BaseException = RuntimeError("RekaChatMapper was closed")
        try:
            async with self.stream as results:
                async for result in results:
                    self._deliver(result)
        except asyncio.CancelledError:
            self._fail_all(failure)
            raise
        except BudgetExceededError as exc:
            # The cost budget stopped the stream: nothing more is sent from this actor, and
            # every row without an answer is a not-sent row (resumed later), not a failure.
            self.stopped = exc
            if self.aborted is None:
                self.aborted = exc
                self.abort_reason = str(exc).removeprefix("batch stopped: ")
            self._abort_all()
            return
        except Exception as exc:  # a bug: every waiting batch fails loudly
            failure = exc
        self.failure = failure
        self._fail_all(failure)

    def _deliver(self, result: BatchResult) -> None:
        pending = self.pending.pop(result.index)
        if self.aborted is None and result.error is not None:
            reason = fatal_reason(
                result.error,
                enabled=self.circuit_breaker,
                max_wait=self.client.retry_policy.max_server_wait,
            )
            if reason is not None:
                self.aborted = result.error
                self.abort_reason = reason
        pending.job.ticket.put(pending.job.position, result)

    def _not_sent(self, item: Mapping[str, Any], position: int) -> BatchResult:
        custom_id = str(item.get("custom_id", position))
        error = BatchAbortedError(f"{_NOT_SENT}: {self.abort_reason}", cause=self.aborted)
        return BatchResult(index=-1, custom_id=custom_id, request=None, error=error)

    def _abort_all(self) -> None:
        """Give every pulled and queued row a not-sent result (the stream has ended)."""
        for pending in self.pending.values():
            job = pending.job
            job.ticket.put(job.position, self._not_sent(job.item, job.position))
        self.pending.clear()
        while not self.queue.empty():
            queued = self.queue.get_nowait()
            if queued is not None:
                queued.ticket.put(queued.position, self._not_sent(queued.item, queued.position))

    def _fail_all(self, exc: BaseException) -> None:
        for pending in self.pending.values():
            pending.job.ticket.fail(exc)
        self.pending.clear()
        while not self.queue.empty():
            queued = self.queue.get_nowait()
            if queued is not None:
                queued.ticket.fail(exc)

    def cancel(self) -> None:
        """Cancel the request stream from any thread, without waiting (for finalizers)."""
        if self.loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        tasks = [self.task] if self.pacing_task is None else [self.task, self.pacing_task]
        for task in tasks:
            if running is self.loop:
                task.cancel()
            else:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self.loop.call_soon_threadsafe(task.cancel)

    async def aclose(self) -> None:
        """Stop the stream, give the unused budget back and close the client."""
        self.queue.put_nowait(None)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if self.pacing_task is not None:
            self.pacing_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pacing_task
        if self.budget is not None:
            await self.budget.give_back()
        await self.client.aclose()
