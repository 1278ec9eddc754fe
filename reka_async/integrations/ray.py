"""Ray Data integration: chat requests over a ``ray.data.Dataset`` on a pool of actors.

Install with ``pip install 'reka-async[ray]'``. This module imports without Ray; Ray and
pyarrow are imported when first needed.

Three layers, each built on the one before:

- `RekaChatMapper`: a callable class for ``Dataset.map_batches(RekaChatMapper, ...)``. Each
  actor builds one ``AsyncClient`` and one ``BatchRunner`` lazily, on its own event loop, and
  feeds every batch it is running at once into that runner's single request stream, so
  ``concurrency_per_actor`` is one limit per actor however many batches Ray runs
  concurrently. Every input row gives exactly one output row; a failed request is a row with
  ``ok=False`` and the error columns set, never a failed block.
- `map_chat`: applies `RekaChatMapper` to a dataset with settings that keep the actors busy
  (async batches, two concurrent tasks per actor, a shared rate limiter).
- `run_ray_job`: a JSONL (or Parquet) file in, a JSONL file out, in the same line formats as
  ``reka-async batch`` (resume included).

Global rate limits. A budget (``rpm``/``tpm``) is for the whole job, not per actor. Two ways
to split it, both built here:

- Per-actor share (``RekaChatMapper(rpm=..., num_actors=N)``): each actor's own token
  bucket gets ``rpm / N``. No coordination and no extra actor, but the share is fixed: an
  idle actor's share is wasted (at the tail of a job, or with uneven blocks), and more
  actors than ``N`` exceed the budget.
- Shared limiter (`create_rate_limiter`, the default of `map_chat` and `run_ray_job`): one
  small async actor holds the RPM and TPM token buckets; each worker takes permits from it
  in chunks (about a quarter of a second of budget, at least one request) and spends them
  locally, so busy actors get more of the budget and idle ones none. Costs: one round trip
  per chunk; permits a worker holds can be spent a little later than granted (at most one
  chunk per actor, so short windows may see up to ``num_actors`` chunks above the bucket);
  the limiter is one more actor (zero CPUs) and a single point of coordination. TPM is
  estimated before each request, like ``BatchRunner``; the unused part of an estimate stays
  with the worker for its next requests, and a surplus above two chunks goes back to the
  limiter. The limiter belongs to the driver that created it and ends with it.

Either way the buckets start full, as in ``BatchRunner``: up to one minute of budget may go
out at once before the steady rate applies.

Secrets: the API key travels to the actors as a constructor argument wrapped in `Secret`
(never in the dataset, never in ``runtime_env`` environment variables, which the Ray
dashboard shows), and neither `Secret` nor `RekaChatMapper` shows it in its ``repr``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import inspect
import json
import math
import os
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

import attrs

from .._cli import _BadLine, _CliRunner, _Input, _record, _scan_output, _Writer
from .._client import AsyncClient
from .._exceptions import (
    BatchAbortedError,
    InsufficientCreditsError,
    InvalidRequestError,
    MissingAPIKeyError,
)
from .._wire import request_body
from ..batch import BatchResult, BatchRunner, BatchStats, TokenBucket
from ..batch import estimate_tokens as _estimate_tokens

__all__ = [
    "OUTPUT_COLUMNS",
    "RayJobSummary",
    "RekaChatMapper",
    "Secret",
    "create_rate_limiter",
    "map_chat",
    "run_ray_job",
]

INSTALL_HINT: Final = "pip install 'reka-async[ray]'"

OUTPUT_COLUMNS: Final[tuple[str, ...]] = (
    "custom_id",
    "text",
    "error_type",
    "error_message",
    "input_tokens",
    "output_tokens",
    "latency_s",
    "attempts",
    "ok",
)
"""The columns `RekaChatMapper` returns (plus ``record`` with ``include_record=True``)."""

#: Ray Data runs this many batches of one block at once on an async UDF (its default).
_ASYNC_BATCHES_PER_TASK: Final = int(
    os.environ.get("RAY_DATA_DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY", "4")
)
_NOT_SENT: Final = "not sent: the account is out of credits (an earlier request said so)"


def _require(module: str) -> Any:
    """Import an optional dependency, or fail with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"reka_async.integrations.ray needs Ray Data, and {module!r} is not installed: "
            f"{INSTALL_HINT}"
        ) from exc


# --------------------------------------------------------------------------- secrets


class Secret:
    """A string (the API key) that never shows in ``repr``, ``str`` or logs.

    `map_chat` and `run_ray_job` wrap the key in one before handing it to Ray, so that a
    printed ``fn_constructor_kwargs`` or dataset plan shows ``Secret('**********')``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("Secret: the value must be a non-empty string")
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def _resolve_key(api_key: str | Secret | None) -> Secret:
    if isinstance(api_key, Secret):
        return api_key
    key = api_key if api_key is not None else os.environ.get("REKA_API_KEY")
    if not key:
        raise MissingAPIKeyError(
            "no API key: pass api_key=... or set the REKA_API_KEY environment variable"
        )
    return Secret(key)


# --------------------------------------------------------------------------- shared limiter


class _RateLimiter:
    """The limiter actor's class: the job's RPM and TPM token buckets, granted in chunks."""

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        request_chunk: float,
        token_chunk: float,
    ) -> None:
        self._rpm = TokenBucket(rpm) if rpm else None
        self._tpm = TokenBucket(tpm) if tpm else None
        self._limits = (rpm, tpm, request_chunk, token_chunk)
        self._granted_requests = 0.0
        self._granted_tokens = 0.0
        self._refunded_tokens = 0.0
        self._calls = 0

    async def limits(self) -> tuple[float | None, float | None, float, float]:
        """``(rpm, tpm, request_chunk, token_chunk)``."""
        return self._limits

    async def acquire(self, requests: float, tokens: float) -> None:
        """Wait until ``requests`` and ``tokens`` are available, then grant them."""
        self._calls += 1
        if requests and self._rpm is not None:
            await self._rpm.acquire(requests)
            self._granted_requests += requests
        if tokens and self._tpm is not None:
            await self._tpm.acquire(tokens)
            self._granted_tokens += tokens

    async def refund(self, requests: float = 0.0, tokens: float = 0.0) -> None:
        """Give back permits a worker will not use."""
        if requests and self._rpm is not None:
            self._rpm.refund(requests)
            self._granted_requests -= requests
        if tokens and self._tpm is not None:
            self._tpm.refund(tokens)
            self._refunded_tokens += tokens

    async def stats(self) -> dict[str, float]:
        """Counters: acquire calls, requests and tokens granted, tokens refunded."""
        return {
            "acquire_calls": float(self._calls),
            "granted_requests": self._granted_requests,
            "granted_tokens": self._granted_tokens,
            "refunded_tokens": self._refunded_tokens,
        }


@functools.cache
def _limiter_actor_class() -> Any:
    ray = _require("ray")
    # Zero CPUs: it only sleeps on its buckets. An async actor serves many waiters at once.
    return ray.remote(num_cpus=0, max_concurrency=1000, max_restarts=-1)(_RateLimiter)


def create_rate_limiter(
    rpm: float | None = None,
    tpm: float | None = None,
    *,
    request_chunk: float | None = None,
    token_chunk: float | None = None,
    name: str | None = None,
) -> Any:
    """Start the shared rate-limiter actor for a job; pass it as ``limiter=`` to the mappers.

    Args:
        rpm: the job's requests-per-minute budget, or ``None``.
        tpm: the job's tokens-per-minute budget (estimated per request), or ``None``.
        request_chunk: requests a worker takes per round trip (default: a quarter second of
            budget, at least 1).
        token_chunk: tokens a worker takes per round trip (default: a quarter second of
            budget; a request needing more takes what it needs).
        name: a Ray actor name, to find the same limiter from several drivers
            (``get_if_exists``).

    Returns:
        The Ray actor handle.
    """
    for label, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and not value > 0:
            raise ValueError(f"{label}: must be positive or None, got {value!r}")
    if rpm is None and tpm is None:
        raise ValueError("create_rate_limiter needs rpm and/or tpm")
    if request_chunk is None:
        request_chunk = max(1.0, math.floor(rpm / 240.0)) if rpm else 1.0
    if token_chunk is None:
        token_chunk = max(1.0, tpm / 240.0) if tpm else 0.0
    if rpm is not None:
        request_chunk = min(request_chunk, rpm)
    if tpm is not None:
        token_chunk = min(token_chunk, tpm)
    cls = _limiter_actor_class()
    if name is not None:
        cls = cls.options(name=name, get_if_exists=True)
    return cls.remote(rpm, tpm, float(request_chunk), float(token_chunk))


class _SharedBudget:
    """A worker's local balance of permits, topped up from the limiter actor in chunks."""

    def __init__(self, limiter: Any) -> None:
        self._limiter = limiter
        self._lock = asyncio.Lock()
        self._limits: tuple[float | None, float | None, float, float] | None = None
        self._requests = 0.0
        self._tokens = 0.0

    async def take(self, tokens: float) -> float:
        """Take one request and ``tokens`` tokens; returns the tokens actually taken."""
        async with self._lock:
            if self._limits is None:
                got = await self._limiter.limits.remote()
                self._limits = (got[0], got[1], float(got[2]), float(got[3]))
            rpm, tpm, request_chunk, token_chunk = self._limits
            tokens = min(tokens, tpm) if tpm else 0.0
            need_requests = rpm is not None and self._requests < 1.0
            need_tokens = tpm is not None and self._tokens < tokens
            if need_requests or need_tokens:
                ask_r = request_chunk if need_requests else 0.0
                ask_t = 0.0
                if need_tokens and tpm is not None:
                    ask_t = min(tpm, max(token_chunk, tokens - self._tokens))
                await self._limiter.acquire.remote(ask_r, ask_t)
                self._requests += ask_r
                self._tokens += ask_t
            if rpm is not None:
                self._requests -= 1.0
            self._tokens -= tokens
            return tokens

    def settle(self, estimate: float, used: float) -> None:
        """Correct a TPM estimate once ``usage`` is known (locally; a surplus goes back)."""
        if self._limits is None or self._limits[1] is None:
            return
        self._tokens += estimate - used
        chunk = max(self._limits[3], 1.0)
        if self._tokens > 2 * chunk:
            surplus = self._tokens - chunk
            self._tokens -= surplus
            self._limiter.refund.remote(0.0, surplus)  # fire and forget

    async def give_back(self) -> None:
        """Return the unused balance to the limiter (on close)."""
        requests, tokens = max(self._requests, 0.0), max(self._tokens, 0.0)
        self._requests = self._tokens = 0.0
        if requests or tokens:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._limiter.refund.remote(requests, tokens), 5.0)


# --------------------------------------------------------------------------- input rows


@attrs.frozen
class _Row:
    item: dict[str, Any] | None
    error: InvalidRequestError | None
    custom_id: str | None
    line: int | None


def _plain(value: Any) -> Any:
    """numpy/arrow values as plain Python; ``None`` fields of dicts (arrow structs) dropped."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return _plain(tolist())
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _batch_columns(batch: Any) -> dict[str, list[Any]]:
    """The batch as ``{column: values}``: dict of numpy arrays, pyarrow Table or DataFrame."""
    if isinstance(batch, Mapping):
        return {str(k): list(v) for k, v in batch.items()}
    to_pydict = getattr(batch, "to_pydict", None)  # pyarrow.Table
    if callable(to_pydict):
        columns: dict[str, list[Any]] = to_pydict()
        return columns
    to_dict = getattr(batch, "to_dict", None)  # pandas.DataFrame
    if callable(to_dict):
        return {str(k): list(v) for k, v in to_dict("list").items()}
    raise TypeError(
        f"RekaChatMapper: unsupported batch type {type(batch).__name__}; use "
        f"batch_format='pyarrow', 'numpy' or 'pandas'"
    )


def _json_value(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise InvalidRequestError(f"{name}: invalid JSON: {exc}") from None
    return _plain(value)


def _row_item(columns: Mapping[str, list[Any]], i: int) -> tuple[dict[str, Any], str | None]:
    """One row's batch item (in the ``reka-async batch`` line format) and its custom_id."""
    cid_value = columns["custom_id"][i] if "custom_id" in columns else None
    custom_id = None if _missing(cid_value) else str(_plain(cid_value))
    request = columns["request"][i] if "request" in columns else None
    messages = columns["messages"][i] if "messages" in columns else None
    prompt = columns["prompt"][i] if "prompt" in columns else None
    item: dict[str, Any]
    if not _missing(request):
        parsed = _json_value(request, "request")
        if not isinstance(parsed, dict):
            raise InvalidRequestError(
                f"request: expected a JSON object, got {type(parsed).__name__}"
            )
        item = parsed
        if isinstance(item.get("messages"), str):
            item["messages"] = _json_value(item["messages"], "messages")
        if custom_id is None and item.get("custom_id") is not None:
            custom_id = str(item["custom_id"])
    elif not _missing(messages):
        item = {"messages": _json_value(messages, "messages")}
    elif not _missing(prompt):
        prompt = _plain(prompt)
        if not isinstance(prompt, str):
            raise InvalidRequestError(f"prompt: must be a string, got {type(prompt).__name__}")
        item = {"prompt": prompt}
    else:
        raise InvalidRequestError("the row has no 'prompt', 'messages' or 'request' value")
    if custom_id is not None:
        item["custom_id"] = custom_id
    return item, custom_id


def _rows(columns: Mapping[str, list[Any]]) -> list[_Row]:
    if not {"prompt", "messages", "request"} & columns.keys():
        raise ValueError(
            "RekaChatMapper needs a 'prompt' column (strings), a 'messages' column (lists "
            "of messages or their JSON) or a 'request' column (JSON objects in the "
            f"'reka-async batch' line format); got columns {sorted(columns)}"
        )
    n = len(next(iter(columns.values())))
    rows: list[_Row] = []
    for i in range(n):
        line_value = columns["line"][i] if "line" in columns else None
        line = None if _missing(line_value) else int(_plain(line_value))
        try:
            item, custom_id = _row_item(columns, i)
        except InvalidRequestError as exc:
            cid = columns["custom_id"][i] if "custom_id" in columns else None
            rows.append(_Row(None, exc, None if _missing(cid) else str(_plain(cid)), line))
        else:
            rows.append(_Row(item, None, custom_id, line))
    return rows


# --------------------------------------------------------------------------- output


def _schema(pa: Any, include_record: bool) -> Any:
    fields = [
        ("custom_id", pa.string()),
        ("text", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("latency_s", pa.float64()),
        ("attempts", pa.int64()),
        ("ok", pa.bool_()),
    ]
    if include_record:
        fields.append(("record", pa.string()))
    return pa.schema(fields)


def _results_table(
    pa: Any, results: Sequence[BatchResult], rows: Sequence[_Row], include_record: bool
) -> Any:
    data: dict[str, list[Any]] = {name: [] for name in OUTPUT_COLUMNS}
    records: list[str] = []
    for result, row in zip(results, rows, strict=True):
        response, error = result.response, result.error
        data["custom_id"].append(row.custom_id)
        data["text"].append(response.text if response is not None else None)
        data["error_type"].append(type(error).__name__ if response is None else None)
        data["error_message"].append(str(error) if response is None else None)
        data["input_tokens"].append(response.usage.input_tokens if response else None)
        data["output_tokens"].append(response.usage.output_tokens if response else None)
        data["latency_s"].append(result.latency_s)
        data["attempts"].append(result.attempts)
        data["ok"].append(result.ok)
        if include_record:
            record = _record(result, row.line)  # the CLI's own output record
            record["custom_id"] = row.custom_id
            records.append(json.dumps(record, ensure_ascii=False))
    if include_record:
        data["record"] = records
    return pa.table(data, schema=_schema(pa, include_record))


def _input_table(pa: Any, batch: Any, columns: Mapping[str, list[Any]]) -> Any:
    if hasattr(batch, "column_names") and hasattr(batch, "append_column"):
        return batch
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):
        return pa.Table.from_pandas(batch, preserve_index=False)
    return pa.table({name: pa.array([_plain(v) for v in vals]) for name, vals in columns.items()})


# --------------------------------------------------------------------------- the actor


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


class _Runner(_CliRunner):
    """The CLI's runner (input errors name their line) for rows that carry a line number."""

    def prepare(self, index: int, item: Any) -> tuple[str, dict[str, Any]]:
        """Like ``BatchRunner.prepare``; errors name the input line when the row has one."""
        if index in self.lines:
            return super().prepare(index, item)
        return BatchRunner.prepare(self, index, item)


class _Engine:
    """Everything bound to the actor's event loop: one client, one runner, one stream.

    Every batch the actor runs puts its rows on one queue; the runner's single stream pulls
    from it, so ``concurrency`` bounds the requests of all batches together, and one
    dispatcher task routes each result back to its batch.
    """

    def __init__(
        self,
        client: AsyncClient,
        runner: _Runner,
        budget: _SharedBudget | None,
        stop_on_insufficient_credits: bool,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.runner = runner
        self.budget = budget
        self.stop_on_credits = stop_on_insufficient_credits
        self.queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self.pending: dict[int, tuple[_Job, float]] = {}
        self.next_index = 0
        self.failure: BaseException | None = None
        self.aborted: BaseException | None = None
        self.stream = runner.stream(self._feed())
        self.task = self.loop.create_task(self._dispatch(), name="reka-ray-dispatch")

    async def run(self, rows: Sequence[_Row]) -> list[BatchResult]:
        if self.failure is not None:
            raise RuntimeError("RekaChatMapper: the request stream failed") from self.failure
        ticket = _Ticket(len(rows), self.loop)
        for position, row in enumerate(rows):
            if row.item is None:
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

    async def _feed(self) -> AsyncIterator[dict[str, Any]]:
        runner = self.runner
        while True:
            job = await self.queue.get()
            if job is None:
                return
            if job.ticket.cancelled:
                continue
            if self.aborted is not None:
                custom_id = str(job.item.get("custom_id", job.position))
                error = BatchAbortedError(_NOT_SENT, cause=self.aborted)
                job.ticket.put(
                    job.position,
                    BatchResult(index=-1, custom_id=custom_id, request=None, error=error),
                )
                continue
            # The stream numbers items in the order it pulls them: this one is next_index.
            index = self.next_index
            if job.line is not None:
                runner.lines[index] = job.line
            estimate = 0.0
            if self.budget is not None:
                try:
                    _, body = runner.prepare(index, job.item)
                except InvalidRequestError:
                    pass  # nothing will be sent: no permit needed
                else:
                    estimate = await self.budget.take(float(_estimate_tokens(body)))
            self.pending[index] = (job, estimate)
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
        except Exception as exc:  # a bug: every waiting batch fails loudly
            failure = exc
        self.failure = failure
        self._fail_all(failure)

    def _deliver(self, result: BatchResult) -> None:
        job, estimate = self.pending.pop(result.index)
        self.runner.lines.pop(result.index, None)
        if self.budget is not None and estimate and result.response is not None:
            usage = result.response.usage
            self.budget.settle(estimate, usage.input_tokens + usage.output_tokens)
        if (
            self.stop_on_credits
            and self.aborted is None
            and isinstance(result.error, InsufficientCreditsError)
        ):
            self.aborted = result.error
        job.ticket.put(job.position, result)

    def _fail_all(self, exc: BaseException) -> None:
        for job, _ in self.pending.values():
            job.ticket.fail(exc)
        self.pending.clear()
        while not self.queue.empty():
            queued = self.queue.get_nowait()
            if queued is not None:
                queued.ticket.fail(exc)

    async def aclose(self) -> None:
        self.queue.put_nowait(None)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if self.budget is not None:
            await self.budget.give_back()
        await self.client.aclose()


class RekaChatMapper:
    """A callable class for ``Dataset.map_batches``: one chat request per row.

    Use it through `map_chat`, or directly (Ray 2.5x spelling)::

        ds.map_batches(
            RekaChatMapper,
            fn_constructor_kwargs={"model": "reka-flash", "concurrency_per_actor": 64,
                                   "api_key": Secret(key)},
            batch_format="pyarrow", batch_size=16, num_cpus=0.5,
            compute=ray.data.ActorPoolStrategy(size=4, max_concurrent_calls_per_actor=2),
        )

    Ray Data runs up to 4 batches of a block at once on the actor's event loop, times the
    blocks the actor works on at once; keep ``batch_size`` times that at or above
    ``concurrency_per_actor`` so the actor's requests stay busy.

    Input columns (any batch format: ``"pyarrow"``, ``"numpy"`` or ``"pandas"``):
    ``prompt`` (a string), or ``messages`` (a list of messages, or its JSON), or ``request``
    (a JSON object in the ``reka-async batch`` input-line format, parameters included);
    optional ``custom_id`` (echoed back) and ``line`` (used in error messages and records).

    Output: a pyarrow Table with `OUTPUT_COLUMNS`, one row per input row, in order:
    ``custom_id``, ``text`` (null on failure), ``error_type``/``error_message`` (null on
    success), ``input_tokens``/``output_tokens`` (null on failure), ``latency_s``,
    ``attempts`` and ``ok``. A failed request never fails the block.

    The client, runner and limiter state are built lazily on the first call, on the event
    loop Ray runs the actor's async batches on, and are shared by all batches the actor runs
    at once: at most ``concurrency_per_actor`` requests are in flight per actor.

    Args:
        model: model for rows naming none.
        concurrency_per_actor: most requests in flight per actor (all its batches together).
        api_key: the key (a `Secret` or a string); default ``REKA_API_KEY`` in the actor.
        base_url: API base URL (default ``REKA_BASE_URL``, else the public API).
        rpm, tpm: the job's budget, split evenly: each actor allows ``rpm / num_actors``.
        num_actors: how many actors share ``rpm``/``tpm``.
        limiter: a shared limiter from `create_rate_limiter` (instead of ``rpm``/``tpm``).
        max_retries: retries per request.
        timeout_s: total seconds per request (default: the client's timeout).
        adaptive: AIMD concurrency per actor (see ``BatchRunner``).
        stop_on_insufficient_credits: after an out-of-credits 429, send nothing more from
            this actor: later rows get ``error_type="BatchAbortedError"`` (not sent).
        include_record: add a ``record`` column: the row's ``reka-async batch`` output
            record as a JSON string.
        keep_input_columns: append the input columns to the output (ours win on a clash).
        **params: chat parameters (``max_tokens``, ``temperature``, ...) for every row; a
            ``request`` row's own values win.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
        InvalidRequestError: invalid ``params`` or ``model``.
        ValueError: invalid sizes or limits.
    """

    def __init__(
        self,
        *,
        model: str = "reka-flash",
        concurrency_per_actor: int = 32,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        num_actors: int = 1,
        limiter: Any = None,
        max_retries: int = 2,
        timeout_s: float | None = None,
        adaptive: bool = True,
        stop_on_insufficient_credits: bool = False,
        include_record: bool = False,
        keep_input_columns: bool = False,
        **params: Any,
    ) -> None:
        _check_positive_int("concurrency_per_actor", concurrency_per_actor)
        _check_positive_int("num_actors", num_actors)
        for label, value in (("rpm", rpm), ("tpm", tpm), ("timeout_s", timeout_s)):
            if value is not None and not value > 0:
                raise ValueError(f"{label}: must be positive or None, got {value!r}")
        if limiter is not None and (rpm is not None or tpm is not None):
            raise ValueError(
                "pass either limiter= (a shared budget) or rpm=/tpm= (split per actor), "
                "not both; give the budget to create_rate_limiter(rpm=..., tpm=...)"
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries: must be a non-negative integer, got {max_retries!r}")
        _check_params(model, params)
        self._key = _resolve_key(api_key)
        self._model = model
        self._concurrency = concurrency_per_actor
        self._base_url = base_url
        self._rpm = rpm / num_actors if rpm is not None else None
        self._tpm = tpm / num_actors if tpm is not None else None
        self._limiter = limiter
        self._max_retries = max_retries
        self._timeout_s = timeout_s
        self._adaptive = adaptive
        self._stop_on_credits = stop_on_insufficient_credits
        self._include_record = include_record
        self._keep_input_columns = keep_input_columns
        self._params = dict(params)
        self._engine: _Engine | None = None

    def __repr__(self) -> str:
        if self._limiter is not None:
            limits = "limiter=shared"
        else:
            limits = f"rpm={self._rpm} tpm={self._tpm}"
        return (
            f"<RekaChatMapper model={self._model!r} "
            f"concurrency_per_actor={self._concurrency} {limits}>"
        )

    @property
    def stats(self) -> BatchStats | None:
        """This actor's live counters (``None`` before the first batch)."""
        return self._engine.runner.stats if self._engine is not None else None

    async def __call__(self, batch: Any) -> AsyncIterator[Any]:
        """Ray Data's entry point (an async generator of one output table per batch)."""
        yield await self.process(batch)

    async def process(self, batch: Any) -> Any:
        """Run one batch and return its output as a pyarrow Table (see the class docs)."""
        pa = _require("pyarrow")
        columns = _batch_columns(batch)
        rows = _rows(columns) if columns else []
        results = await self._get_engine().run(rows) if rows else []
        table = _results_table(pa, results, rows, self._include_record)
        if self._keep_input_columns and columns:
            inputs = _input_table(pa, batch, columns)
            for name in inputs.column_names:
                if name not in table.column_names:
                    table = table.append_column(name, inputs.column(name))
        return table

    def _get_engine(self) -> _Engine:
        loop = asyncio.get_running_loop()
        engine = self._engine
        if engine is not None:
            if engine.loop is not loop:
                raise RuntimeError(
                    "RekaChatMapper is bound to the event loop of its first call; "
                    "create one mapper per event loop"
                )
            return engine
        options: dict[str, Any] = {}
        if self._timeout_s is not None:
            options["timeout"] = self._timeout_s
        client = AsyncClient(
            self._key.get_secret_value(),
            self._base_url,
            max_retries=self._max_retries,
            max_connections=self._concurrency,
            **options,
        )
        runner = _Runner(
            client,
            lines={},
            concurrency=self._concurrency,
            model=self._model,
            rpm=self._rpm,
            tpm=self._tpm,
            adaptive=self._adaptive,
            stop_on_insufficient_credits=False,  # a failed row never fails the block
            **self._params,
        )
        budget = _SharedBudget(self._limiter) if self._limiter is not None else None
        self._engine = _Engine(client, runner, budget, self._stop_on_credits)
        return self._engine

    async def aclose(self) -> None:
        """Stop the request stream and close the client (idempotent)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.aclose()

    def __del__(self) -> None:
        # Ray Data drops the UDF when the actor exits gracefully: close the client on the
        # loop it lives on (a daemon thread that is still running), from this other thread.
        engine = getattr(self, "_engine", None)
        if engine is None or engine.loop.is_closed() or not engine.loop.is_running():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            if running is engine.loop:
                running.create_task(self.aclose())
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.aclose(), engine.loop).result(timeout=10)


def _check_positive_int(label: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{label}: must be a positive integer, got {value!r}")


def _check_params(model: str, params: Mapping[str, Any]) -> None:
    # Once, up front, with a dummy message (as BatchRunner does).
    request_body(
        model=model,
        messages=[{"role": "user", "content": "x"}],
        params=params,
        stream=False,
    )


# --------------------------------------------------------------------------- map_chat


def map_chat(
    ds: Any,
    *,
    model: str = "reka-flash",
    num_actors: int = 2,
    concurrency_per_actor: int = 32,
    batch_size: int | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    shared_limiter: bool = True,
    limiter: Any = None,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    max_retries: int = 2,
    timeout_s: float | None = None,
    include_record: bool = False,
    keep_input_columns: bool = False,
    stop_on_insufficient_credits: bool = False,
    num_cpus_per_actor: float = 0.5,
    tasks_per_actor: int = 2,
    **params: Any,
) -> Any:
    """Add one chat request per row of a Ray dataset; returns the mapped (lazy) Dataset.

    The rows need a ``prompt``, ``messages`` or ``request`` column (see `RekaChatMapper`);
    the result has `OUTPUT_COLUMNS`, one row per input row.

    Args:
        ds: a ``ray.data.Dataset``.
        model: model for rows naming none.
        num_actors: size of the actor pool.
        concurrency_per_actor: most requests in flight per actor.
        batch_size: rows per batch (default: enough batches in flight to keep
            ``concurrency_per_actor`` requests busy).
        rpm, tpm: the job's budget. With ``shared_limiter`` (and more than one actor) a
            limiter actor shares it; otherwise each actor gets ``1 / num_actors`` of it.
        shared_limiter: use a shared limiter actor for ``rpm``/``tpm``.
        limiter: an existing limiter from `create_rate_limiter` (then no ``rpm``/``tpm``).
        api_key: the key; default ``REKA_API_KEY`` of the driver. It reaches the actors as a
            `Secret` constructor argument, never through the dataset or the environment.
        base_url, max_retries, timeout_s, include_record, keep_input_columns,
            stop_on_insufficient_credits: as in `RekaChatMapper`.
        num_cpus_per_actor: CPUs reserved per actor (the work is I/O-bound).
        tasks_per_actor: blocks an actor works on at once (Ray's ``max_concurrency``).
        **params: chat parameters for every row (``max_tokens``, ``temperature``, ...).
    """
    _check_positive_int("num_actors", num_actors)
    _check_positive_int("concurrency_per_actor", concurrency_per_actor)
    _check_positive_int("tasks_per_actor", tasks_per_actor)
    if batch_size is not None:
        _check_positive_int("batch_size", batch_size)
    key = _resolve_key(api_key)
    if limiter is None and shared_limiter and num_actors > 1 and (rpm or tpm):
        limiter = create_rate_limiter(rpm, tpm)
        rpm = tpm = None
    kwargs: dict[str, Any] = {
        "model": model,
        "concurrency_per_actor": concurrency_per_actor,
        "api_key": key,
        "base_url": base_url,
        "rpm": rpm,
        "tpm": tpm,
        "num_actors": num_actors,
        "limiter": limiter,
        "max_retries": max_retries,
        "timeout_s": timeout_s,
        "stop_on_insufficient_credits": stop_on_insufficient_credits,
        "include_record": include_record,
        "keep_input_columns": keep_input_columns,
        **params,
    }
    RekaChatMapper(**kwargs)  # validate here, on the driver, before any actor starts
    if batch_size is None:
        in_flight_batches = _ASYNC_BATCHES_PER_TASK * tasks_per_actor
        batch_size = max(1, math.ceil(2 * concurrency_per_actor / in_flight_batches))
    return ds.map_batches(
        RekaChatMapper,
        fn_constructor_kwargs=kwargs,
        batch_size=batch_size,
        batch_format="pyarrow",
        num_cpus=num_cpus_per_actor,
        **_actor_pool_args(num_actors, tasks_per_actor),
    )


def _actor_pool_args(num_actors: int, tasks_per_actor: int) -> dict[str, Any]:
    """A fixed pool of ``num_actors``, each running ``tasks_per_actor`` blocks at once.

    Recent Ray names the per-actor concurrency ``max_concurrent_calls_per_actor`` (and
    deprecates the ``max_concurrency`` remote argument); older Ray only has the latter.
    """
    strategy = _require("ray.data").ActorPoolStrategy
    params = inspect.signature(strategy).parameters
    if "max_concurrent_calls_per_actor" in params:
        compute = strategy(size=num_actors, max_concurrent_calls_per_actor=tasks_per_actor)
        return {"compute": compute}
    return {"compute": strategy(size=num_actors), "max_concurrency": tasks_per_actor}


# --------------------------------------------------------------------------- run_ray_job


@attrs.frozen(kw_only=True)
class RayJobSummary:
    """What `run_ray_job` did.

    Attributes:
        output_path: the JSONL results file.
        ok: inputs answered in this run.
        failed: inputs that ended as error lines in this run (bad input lines included).
        not_sent: inputs not sent after an out-of-credits error (not in the output; a run
            with ``resume=True`` picks them up).
        skipped: inputs skipped because the output already had them (``resume=True``).
        wall_s: seconds from start to finish.
    """

    output_path: str
    ok: int
    failed: int
    not_sent: int
    skipped: int
    wall_s: float

    @property
    def written(self) -> int:
        """Result lines written in this run."""
        return self.ok + self.failed

    @property
    def rows_per_s(self) -> float:
        """Result lines written per second of wall time."""
        return self.written / self.wall_s if self.wall_s > 0 else 0.0


def _is_parquet(path: str) -> bool:
    if path.endswith((".parquet", ".pq")):
        return True
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def _parquet_to_jsonl(path: str, out_fd: int) -> None:
    """Rewrite a Parquet file as JSONL lines (one per row, null fields dropped)."""
    pq = _require("pyarrow.parquet")
    with os.fdopen(out_fd, "w", encoding="utf-8") as out:
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            for row in record_batch.to_pylist():
                obj = _plain(row)
                if isinstance(obj.get("messages"), str):
                    with contextlib.suppress(ValueError):
                        obj["messages"] = json.loads(obj["messages"])
                out.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


async def _load_blocks(
    ray: Any,
    pa: Any,
    source: _Input,
    fd: int,
    writer: _Writer,
    *,
    rows_per_block: int,
    min_blocks: int,
) -> tuple[list[Any], int]:
    """Parse the input the way ``reka-async batch`` does; put the rows in Ray in blocks.

    Lines that cannot become requests are written to the output at once (as the CLI does).
    Rows go into the object store ``rows_per_block`` at a time; a short input is split into
    ``min_blocks`` blocks so that every actor gets work. The driver holds at most
    ``rows_per_block * min_blocks`` rows. Returns the block references and the number of
    error lines written.
    """
    schema = pa.schema([("custom_id", pa.string()), ("line", pa.int64()), ("request", pa.string())])
    refs: list[Any] = []
    pending: list[tuple[str, int | None, str]] = []
    bad = 0

    def put(rows: Sequence[tuple[str, int | None, str]]) -> None:
        columns = list(zip(*rows, strict=True))
        table = pa.table(
            dict(zip(("custom_id", "line", "request"), columns, strict=True)), schema=schema
        )
        refs.append(ray.put(table))

    index = 0
    async with contextlib.aclosing(source.items(fd)) as items:
        async for item in items:
            line = source.line_of.pop(index, None)
            if isinstance(item, _BadLine):
                custom_id = str(item["custom_id"])
                result = BatchResult(
                    index=index, custom_id=custom_id, request=None, error=item.error
                )
                writer.write(_record(result, line))
                bad += 1
            else:
                pending.append((str(item["custom_id"]), line, json.dumps(item, ensure_ascii=False)))
                if len(pending) >= rows_per_block * min_blocks:
                    put(pending[:rows_per_block])
                    del pending[:rows_per_block]
            index += 1
    blocks = max(math.ceil(len(pending) / rows_per_block), min_blocks if not refs else 1)
    blocks = min(blocks, len(pending))
    for i in range(blocks):
        chunk = pending[i * len(pending) // blocks : (i + 1) * len(pending) // blocks]
        if chunk:
            put(chunk)
    return refs, bad


def run_ray_job(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    concurrency_per_actor: int,
    num_actors: int,
    model: str,
    rpm: float | None = None,
    tpm: float | None = None,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    shared_limiter: bool = True,
    batch_size: int | None = None,
    max_retries: int = 2,
    timeout_s: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    num_cpus_per_actor: float = 0.5,
    **params: Any,
) -> RayJobSummary:
    """Run a batch file on Ray: the ``reka-async batch`` job, spread over a pool of actors.

    The input is JSONL in the ``reka-async batch`` input format (or plain text, one prompt
    per line), or a Parquet file whose rows are read like JSONL objects (columns ``prompt``
    or ``messages``, optional ``custom_id`` and parameters; "line" is the 1-based row).
    The output is one JSON line per input, in the CLI's output-record format, appended as
    blocks finish (completion order: join on ``custom_id``). Lines that cannot become
    requests and duplicate ``custom_id`` values become error lines, as in the CLI.

    Uses the running Ray cluster (or starts a local one, as Ray Data does). The driver
    parses the input and puts it into Ray's object store in blocks (its own memory stays
    bounded; the object store holds the input, spilling to disk when needed). Call it from
    synchronous code.

    Args:
        input_path: JSONL, plain-text or Parquet file.
        output_path: JSONL results file.
        concurrency_per_actor: most requests in flight per actor.
        num_actors: size of the actor pool.
        model: model for lines naming none.
        rpm, tpm: the job's budget (shared by a limiter actor; see `map_chat`).
        api_key: the key (default ``REKA_API_KEY``); never written into the dataset.
        base_url: API base URL.
        shared_limiter: ``False`` splits ``rpm``/``tpm`` evenly across actors instead.
        batch_size: rows per batch (see `map_chat`).
        max_retries: retries per request.
        timeout_s: total seconds per request.
        resume: continue an existing output: skip the custom_ids already in it.
        overwrite: start the output afresh if it exists.
        num_cpus_per_actor: CPUs reserved per actor.
        **params: chat parameters for every line (``max_tokens``, ``temperature``, ...).

    Returns:
        A `RayJobSummary`.

    Raises:
        FileNotFoundError: no input file.
        FileExistsError: the output exists and is not empty (pass ``resume`` or
            ``overwrite``).
        MissingAPIKeyError, InvalidRequestError, ValueError: before anything runs.
        BatchAbortedError: the account ran out of credits; the results so far are in the
            output and ``resume=True`` continues.
    """
    started = time.monotonic()
    ray = _require("ray")
    pa = _require("pyarrow")
    in_path, out_path = os.fspath(input_path), os.fspath(output_path)
    if not os.path.exists(in_path):
        raise FileNotFoundError(f"input file not found: {in_path}")
    if os.path.isdir(in_path) or os.path.isdir(out_path):
        raise IsADirectoryError(f"input and output must be files: {in_path}, {out_path}")
    if os.path.exists(out_path) and os.path.samefile(in_path, out_path):
        raise ValueError("input and output are the same file")
    if resume and overwrite:
        raise ValueError("resume and overwrite contradict each other; choose one")
    _check_positive_int("concurrency_per_actor", concurrency_per_actor)
    _check_positive_int("num_actors", num_actors)
    key = _resolve_key(api_key)
    _check_params(model, params)

    done_ok: set[str] = set()
    done_failed: set[str] = set()
    dup_lines: set[int] = set()
    if overwrite and os.path.exists(out_path):
        os.truncate(out_path, 0)
    if os.path.exists(out_path) and os.path.getsize(out_path) > 0:
        if not resume:
            raise FileExistsError(
                f"{out_path} already exists and is not empty; pass resume=True to continue "
                f"it or overwrite=True to start afresh"
            )
        done_ok, done_failed, dup_lines, _ = _scan_output(out_path)
    source = _Input(done_ok=done_ok, done_failed=done_failed, done_dup_lines=dup_lines)

    temp: str | None = None
    jsonl_path = in_path
    if _is_parquet(in_path):
        temp_fd, temp = tempfile.mkstemp(prefix="reka-ray-", suffix=".jsonl")
        _parquet_to_jsonl(in_path, temp_fd)
        jsonl_path = temp

    tasks_per_actor = 2
    if batch_size is None:
        in_flight_batches = _ASYNC_BATCHES_PER_TASK * tasks_per_actor
        batch_size = max(1, math.ceil(2 * concurrency_per_actor / in_flight_batches))
    _check_positive_int("batch_size", batch_size)

    ok = failed = not_sent = 0
    writer = _Writer(out_path)
    try:
        fd = os.open(jsonl_path, os.O_RDONLY)
        try:
            refs, failed = asyncio.run(
                _load_blocks(
                    ray,
                    pa,
                    source,
                    fd,
                    writer,
                    rows_per_block=batch_size * 8,
                    min_blocks=num_actors,
                )
            )
        finally:
            os.close(fd)
        if refs:
            mapped = map_chat(
                ray.data.from_arrow_refs(refs),
                model=model,
                num_actors=num_actors,
                concurrency_per_actor=concurrency_per_actor,
                batch_size=batch_size,
                rpm=rpm,
                tpm=tpm,
                shared_limiter=shared_limiter,
                api_key=key,
                base_url=base_url,
                max_retries=max_retries,
                timeout_s=timeout_s,
                include_record=True,
                stop_on_insufficient_credits=True,  # as the CLI: stop, resume later
                num_cpus_per_actor=num_cpus_per_actor,
                tasks_per_actor=tasks_per_actor,
                **params,
            ).select_columns(["record", "error_type", "ok"])
            for batch in mapped.iter_batches(batch_format="pyarrow", batch_size=None):
                for record, error_type, row_ok in zip(
                    batch.column("record").to_pylist(),
                    batch.column("error_type").to_pylist(),
                    batch.column("ok").to_pylist(),
                    strict=True,
                ):
                    if error_type == BatchAbortedError.__name__:
                        not_sent += 1
                        continue
                    writer.write(json.loads(record))
                    if row_ok:
                        ok += 1
                    else:
                        failed += 1
    finally:
        writer.close()
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    summary = RayJobSummary(
        output_path=out_path,
        ok=ok,
        failed=failed,
        not_sent=not_sent,
        skipped=source.skipped,
        wall_s=time.monotonic() - started,
    )
    if not_sent:
        raise BatchAbortedError(
            f"job stopped: the account is out of credits; {summary.written} result(s) are in "
            f"{out_path}, {not_sent} input(s) were not sent (run again with resume=True)"
        )
    return summary
