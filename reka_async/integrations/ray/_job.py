"""`run_ray_job`: the ``reka-async batch`` job (same input and output formats) on Ray."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..._exceptions import BatchAbortedError, InvalidRequestError
from ...batch import (
    BatchResult,
    BudgetExceededError,
    CostBudget,
    PriceTable,
    UsageAboveBoundError,
)
from ...batch.bound import DEFAULT_MESSAGE_OVERHEAD
from ...jobs import (
    BadLine,
    JobInput,
    OutputLock,
    Writer,
    count_lines,
    input_format,
    record,
    start_output,
)
from ...jobs._carry import compact_carrying, spent_before
from ...jobs._spend import record_spend
from ._common import check_params, check_positive_int, default_batch_size, require
from ._cost import create_cost_ledger
from ._mapper import map_chat
from ._rows import plain
from ._secrets import Secret, resolve_key

__all__ = ["RayJobSummary", "run_ray_job"]

logger = logging.getLogger("reka_async")


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
        spent_usd: what the whole job was charged, every run and superseded record included
            (what ``max_cost`` caps; as ``JobReport.spent_usd``).
    """

    output_path: str
    ok: int
    failed: int
    not_sent: int
    skipped: int
    wall_s: float
    spent_usd: float = 0.0

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
    pq = require("pyarrow.parquet")
    with os.fdopen(out_fd, "w", encoding="utf-8") as out:
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            for row in record_batch.to_pylist():
                obj = plain(row)
                if isinstance(obj.get("messages"), str):
                    with contextlib.suppress(ValueError):
                        obj["messages"] = json.loads(obj["messages"])
                out.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


async def _load_blocks(
    ray: Any,
    pa: Any,
    source: JobInput,
    fd: int,
    writer: Writer,
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
            if isinstance(item, BadLine):
                custom_id = str(item["custom_id"])
                result = BatchResult(
                    index=index, custom_id=custom_id, request=None, error=item.error
                )
                writer.write(record(result, line))
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


def _check_cost(
    model: str,
    max_cost: float,
    prices: PriceTable,
    media_tokens: int | None,
    message_overhead: int,
) -> None:
    """Refuse a ``max_cost`` that cannot be kept, before the output is touched."""
    CostBudget(max_cost, prices, media_tokens=media_tokens, message_overhead=message_overhead)
    if prices.get(model) is None:
        raise InvalidRequestError(
            f"max_cost: no price is known for model {model!r}, so the budget cannot be kept; "
            f"give its price (prices={{{model!r}: {{'input': USD, 'output': USD}}}} per "
            f"million tokens)"
        )


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
    retry_failed: bool = False,
    overwrite: bool = False,
    num_cpus_per_actor: float = 0.5,
    max_cost: float | None = None,
    prices: PriceTable | Mapping[str, Any] | None = None,
    media_tokens: int | None = None,
    message_overhead: int = DEFAULT_MESSAGE_OVERHEAD,
    **params: Any,
) -> RayJobSummary:
    """Run a batch file on Ray: the ``reka-async batch`` job, spread over a pool of actors.

    The input is JSONL in the ``reka-async batch`` input format (or plain text in a ``.txt``
    file, one prompt per line), or a Parquet file whose rows are read like JSONL objects
    (columns ``prompt`` or ``messages``, optional ``custom_id`` and parameters; "line" is the
    1-based row).
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
        rpm: the job's requests per minute (shared by a limiter actor; see `map_chat`).
        tpm: the job's tokens per minute (likewise).
        api_key: the key (default ``REKA_API_KEY``); never written into the dataset.
        base_url: API base URL.
        shared_limiter: ``False`` splits ``rpm``/``tpm`` evenly across actors instead, and
            each actor paces alone (no shared pacing; see `map_chat`).
        batch_size: rows per batch (see `map_chat`).
        max_retries: retries per request.
        timeout_s: total seconds per request.
        resume: continue an existing output: skip the custom_ids already in it.
        retry_failed: with ``resume``, send again the inputs whose failure can change
            (connection errors, timeouts, 5xx, 429s, 401/403), as ``reka-async batch
            --retry-failed`` does; their new records supersede the old ones and the output
            is compacted to one record per input at the end. (Records written by Ray hold
            no request hash, so an edited input is not detected on resume, unlike the CLI.)
        overwrite: start the output afresh if it exists.
        num_cpus_per_actor: CPUs reserved per actor.
        max_cost: the job's budget in USD, as ``run_job``'s: every attempt on every actor
            reserves its bound (``batch/bound.py``) from one cost actor, which starts from
            the job's spend so far (its records, superseded ones included, plus the
            ``OUTPUT.spend.json`` sidecar), so the cost billed across all runs stays within
            it while the server bills no more than the bound. Each record holds what its
            item was charged (``charged_usd``).
        prices: the price table under ``max_cost`` (as ``BatchRunner``'s ``prices``).
        media_tokens: under ``max_cost``, the most tokens a media part may be billed (rows
            with media parts are refused unsent without it).
        message_overhead: under ``max_cost``, the tokens per message the bound adds.
        **params: chat parameters for every line (``max_tokens``, ``temperature``, ...).

    Returns:
        A `RayJobSummary`.

    Raises:
        FileNotFoundError: no input file.
        FileExistsError: the output exists and is not empty (pass ``resume`` or
            ``overwrite``).
        MissingAPIKeyError, InvalidRequestError, ValueError: before anything runs.
        BatchAbortedError: the circuit breaker stopped the job (a refused key, an account
            out of credits, a server wait too long); the results so far are in the output and
            ``resume=True`` continues.
        BudgetExceededError: ``max_cost`` stopped the job before it could be exceeded
            (raise it and resume).
        UsageAboveBoundError: an answer was billed above its bound: nothing more was sent
            (change the setting its message names, then resume).
    """
    started = time.monotonic()
    ray = require("ray")
    pa = require("pyarrow")
    in_path, out_path = os.fspath(input_path), os.fspath(output_path)
    if not os.path.exists(in_path):
        raise FileNotFoundError(f"input file not found: {in_path}")
    if os.path.isdir(in_path) or os.path.isdir(out_path):
        raise IsADirectoryError(f"input and output must be files: {in_path}, {out_path}")
    if os.path.exists(out_path) and os.path.samefile(in_path, out_path):
        raise ValueError("input and output are the same file")
    if resume and overwrite:
        raise ValueError("resume and overwrite contradict each other; choose one")
    if retry_failed and not resume:
        raise ValueError("retry_failed continues an output: pass resume=True too")
    check_positive_int("concurrency_per_actor", concurrency_per_actor)
    check_positive_int("num_actors", num_actors)
    key = resolve_key(api_key)
    check_params(model, params)
    table = PriceTable(prices) if not isinstance(prices, PriceTable) else prices
    if max_cost is not None:
        _check_cost(model, max_cost, table, media_tokens, message_overhead)

    # One writer per output, as the CLI: a second job on it is refused (OutputLocked).
    with OutputLock(out_path):
        try:
            resumed = start_output(out_path, resume=resume, overwrite=overwrite)
        except FileExistsError:
            raise FileExistsError(
                f"{out_path} already exists and is not empty; pass resume=True to continue "
                f"it or overwrite=True to start afresh"
            ) from None
        if resumed is not None and resumed.torn_removed:
            logger.warning("resume: removed a torn last line from %s", out_path)
        if resumed is not None and resumed.unreadable:
            logger.warning(
                "resume: ignored %d unreadable line(s) in %s", resumed.unreadable, out_path
            )
        fmt = "jsonl" if _is_parquet(in_path) else input_format(in_path)

        temp: str | None = None
        jsonl_path = in_path
        if _is_parquet(in_path):
            temp_fd, temp = tempfile.mkstemp(prefix="reka-ray-", suffix=".jsonl")
            _parquet_to_jsonl(in_path, temp_fd)
            jsonl_path = temp
        # The driver's resume scan and dedupe are the CLI's tables (``jobs._index``), the ids
        # seen sized from the line count: about 15 bytes an input, 33 a finished record.
        with open(jsonl_path, "rb") as counted:
            expected = count_lines(counted)
        source = JobInput(resumed, retry_failed=retry_failed, input_format=fmt, expected=expected)

        tasks_per_actor = 2
        if batch_size is None:
            batch_size = default_batch_size(concurrency_per_actor, tasks_per_actor)
        check_positive_int("batch_size", batch_size)

        # The job's spend before this run (its records and sidecar), as run_job counts it.
        spent = spent_before(out_path, resumed)
        ledger = create_cost_ledger(max_cost, spent=spent) if max_cost is not None else None
        cost_options: dict[str, Any] = {}
        if max_cost is not None:
            cost_options = {
                "max_cost": max_cost,
                "cost_ledger": ledger,
                "prices": table,
                "media_tokens": media_tokens,
                "message_overhead": message_overhead,
            }
        stop: BudgetExceededError | None = None
        ok = failed = not_sent = 0
        writer = Writer(out_path)
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
                    circuit_breaker=True,  # as the CLI: stop, resume later
                    num_cpus_per_actor=num_cpus_per_actor,
                    tasks_per_actor=tasks_per_actor,
                    **cost_options,
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
                        line = json.loads(record)
                        writer.write(line)
                        spent += record_spend(line)
                        if row_ok:
                            ok += 1
                        else:
                            failed += 1
            if ledger is not None:
                stop = ray.get(ledger.stopped.remote())
        finally:
            writer.close()
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        superseded = (resumed.superseded if resumed is not None else 0) + source.retried
        if superseded and not not_sent and stop is None:
            compact_carrying(out_path, spent)
        summary = RayJobSummary(
            output_path=out_path,
            ok=ok,
            failed=failed,
            not_sent=not_sent,
            skipped=source.skipped,
            wall_s=time.monotonic() - started,
            spent_usd=spent,
        )
        where = (
            f"; {summary.written} result(s) are in {out_path}, {not_sent} input(s) were not "
            f"sent (run again with resume=True)"
        )
        if isinstance(stop, UsageAboveBoundError):
            raise UsageAboveBoundError(
                str(stop) + where,
                usage_input=stop.usage_input,
                usage_output=stop.usage_output,
                bound=stop.bound,
            )
        if stop is not None:
            raise BudgetExceededError(str(stop) + where)
        if not_sent:
            raise BatchAbortedError(
                f"job stopped by the circuit breaker (a refused key, an account out of "
                f"credits or a server wait too long: see the failed records); "
                f"{summary.written} result(s) are in {out_path}, {not_sent} input(s) were not "
                f"sent (run again with resume=True)"
            )
        return summary
