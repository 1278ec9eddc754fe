"""``reka-async batch``: a JSONL file through ``reka_async.jobs.Job``, one output line per input.

The job (input lines, duplicates, resume, the lock, request hashes, compaction) is
``reka_async.jobs``; this module checks the paths, raises the open-file limit, handles
SIGTERM like SIGINT, shows progress and maps each ending to its exit status
(``cli/_exit.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import sys
from typing import Any, Final

from .._client import DEFAULT_MAX_CONNECTIONS, AsyncClient
from .._exceptions import BatchAbortedError, InvalidRequestError
from .._files import real_path
from ..batch import BatchProgress, CacheError, PriceTable, RequestCache
from ..batch.bound import token_bound
from ..batch.breaker import ErrorRateExceededError
from ..batch.collector import GC_CONCURRENCY, GC_THRESHOLD
from ..batch.cost import BudgetExceededError, UsageAboveBoundError, load_prices
from ..batch.fds import fit_concurrency
from ..jobs import (
    InputChanged,
    JobInput,
    JobIOError,
    JobReport,
    OutputLocked,
    export_format,
    export_output,
    input_format,
    prepare_line,
    scan_output,
)
from ..jobs._run import Job  # not public: the CLI reads a run's live state after a stop
from ._common import UsageError, api_key, chat_params, client, logger, say
from ._exit import ExitCode, StopReason, continue_line
from ._parser import PROG

__all__ = ["cmd_batch", "cmd_export"]


#: Inputs up to this size are counted before the run (one quick read, from the page cache
#: afterwards); a larger input shows its total as unknown rather than be read twice.
_COUNT_LIMIT: Final = 64 * 1024 * 1024


def _count_lines(path: str) -> int | None:
    if path == "-" or os.path.getsize(path) > _COUNT_LIMIT:
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _job_path(out_path: str) -> str:
    """The JSONL job file of OUTPUT: itself, or ``name.jsonl`` beside a .csv/.parquet (beside
    the real file when OUTPUT is a link, so two paths to one export are one job)."""
    if export_format(out_path) is None:
        return out_path
    named = real_path(out_path) if os.path.islink(out_path) else out_path
    return os.path.splitext(named)[0] + ".jsonl"


def _check_args(args: argparse.Namespace) -> None:
    out_path: str = args.output
    try:
        args.input_format = input_format(args.input, args.format)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if export_format(out_path) == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise UsageError("a .parquet OUTPUT needs pyarrow: pip install 'reka-async[parquet]'")
    args.job_path = _job_path(out_path)
    if args.dry_run:
        if args.input != "-" and not os.path.exists(args.input):
            raise UsageError(f"input file not found: {args.input}")
        return
    if out_path == "-":
        raise UsageError("OUTPUT must be a file (it is appended to and read back by --resume)")
    if args.input != "-":
        if not os.path.exists(args.input):
            raise UsageError(f"input file not found: {args.input}")
        if os.path.isdir(args.input):
            raise UsageError(f"INPUT is a directory: {args.input}")
        for path in {out_path, args.job_path}:
            if os.path.exists(path) and os.path.samefile(args.input, path):
                raise UsageError("INPUT and OUTPUT are the same file")
    if os.path.isdir(out_path):
        raise UsageError(f"OUTPUT is a directory: {out_path}")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; choose one")
    for flag in ("retry_failed", "rerun_changed"):
        if getattr(args, flag) and not args.resume:
            raise UsageError(f"--{flag.replace('_', '-')} continues an output: add --resume")
    api_key(args)  # fail before creating OUTPUT
    args.prices_table = _prices(args)
    args.cache_db = _open_cache(args.cache, mock=args.mock)


def _prices(args: argparse.Namespace) -> PriceTable:
    table = PriceTable()
    if args.prices:
        table = table.with_prices(load_prices(args.prices))
    return table


def _open_cache(path: str | None, *, mock: bool) -> RequestCache | None:
    if path is None:
        return None
    # The in-process mock listens on a fresh port each run: its answers are keyed by one
    # name of their own, which no real endpoint's identity can equal.
    endpoint = "reka-async --mock" if mock else None
    try:
        return RequestCache(path, endpoint=endpoint)
    except CacheError as exc:
        raise UsageError(str(exc)) from None


def _stop_reason(exc: BatchAbortedError) -> StopReason:
    """Why a ``BatchAbortedError`` stopped the run (its advice differs: ``cli/_exit.py``)."""
    errors = (exc, exc.cause)
    if any(isinstance(e, UsageAboveBoundError) for e in errors):
        return StopReason.BOUND_EXCEEDED
    if any(isinstance(e, BudgetExceededError) for e in errors):
        return StopReason.BUDGET
    if isinstance(exc, ErrorRateExceededError):
        return StopReason.ERROR_RATE
    return StopReason.BREAKER


#: Descriptors a batch run opens after its open-file check (see ``cmd_batch``).
_RUN_FDS = 16


class _Terminated(Exception):
    """SIGTERM arrived: the run was cancelled like an interrupt."""


def cmd_batch(args: argparse.Namespace) -> int:
    """Run ``batch``; returns the exit status."""
    _check_args(args)
    if args.dry_run:
        return _dry_run(args)
    # The in-process mock holds the server's end of every connection in this process too;
    # the reserve is what the run opens after this check (the output, its lock, the cache,
    # the event loop, the mock's listening sockets), so the runner's own check agrees.
    args.concurrency, note = fit_concurrency(
        args.concurrency,
        per_connection=2 if args.mock else 1,
        reserve=_RUN_FDS,
        raise_limit=True,
    )
    if note is not None:
        say(note)
    if args.concurrency >= GC_CONCURRENCY:
        # The CLI is an application, so it may change the process; a library run does not.
        say(
            f"gc: the collector's first threshold is {GC_THRESHOLD:,} while the run goes "
            f"(concurrency >= {GC_CONCURRENCY}; fewer stalls, see batch/collector.py)"
        )
    state: dict[str, Any] = {}
    status = ExitCode.OK
    reason: StopReason | None = None
    try:
        status = asyncio.run(_main(args, state))
    except KeyboardInterrupt:
        say("interrupted: what finished is in the output")
        reason = StopReason.INTERRUPTED
    except _Terminated:
        say("terminated (SIGTERM): what finished is in the output")
        reason = StopReason.TERMINATED
    except (OutputLocked, InputChanged) as exc:
        state["started"] = False  # refused: nothing was sent, no summary to give
        say(f"error: {exc}")
        return ExitCode.USAGE
    except FileExistsError:
        state["started"] = False  # refused: nothing was sent, no summary to give
        raise UsageError(
            f"{args.output} already exists and is not empty; pass --resume to continue it, "
            f"--overwrite to start afresh, or choose another output path"
        ) from None
    except (JobIOError, CacheError) as exc:
        say(f"error: {exc}")
        status = ExitCode.IO_ERROR
    except BatchAbortedError as exc:
        say(f"error: {exc}")
        reason = _stop_reason(exc)
    finally:
        progress = state.get("progress")
        if progress is not None:
            progress.close()
        if state.get("started"):
            _summary(state, args)
        if args.cache_db is not None:
            args.cache_db.close()
    report = state.get("report")
    if report is not None and args.job_path != args.output:
        try:
            rows = export_output(args.job_path, args.output, neutralise=not args.raw_csv)
        except JobIOError as exc:
            say(f"error: {exc}")
            return int(ExitCode.IO_ERROR)
        say(f"wrote {rows} row(s) to {args.output} (from the job file {args.job_path})")
    if reason is None and status is ExitCode.FAILED:
        reason = StopReason.FAILED
    if reason is not None:
        status = reason.exit_code
        line = continue_line(reason, sys.argv[1:], failed_types=state.get("failed_types", ()))
        if line is not None:
            say(line)
    return int(status)


async def _main(args: argparse.Namespace, state: dict[str, Any]) -> ExitCode:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_term() -> None:
        state["terminated"] = True
        task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not POSIX: not caught
        loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        return await _run(args, state)
    except asyncio.CancelledError:
        if state.get("terminated"):
            raise _Terminated from None
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


async def _fetch_prices(session: AsyncClient, table: PriceTable) -> PriceTable:
    """``table`` with the prices ``/models`` gives, when it gives any (else as it is)."""
    try:
        models = await session.models.list()
    except Exception as exc:  # pricing is a nicety: a listing that fails never stops a job
        logger.info("no prices from /models: %s", exc)
        return table
    return table.with_models(models)


async def _run(args: argparse.Namespace, state: dict[str, Any]) -> ExitCode:
    params = chat_params(args)
    async with client(
        args,
        max_retries=args.max_retries,
        max_connections=max(args.concurrency, DEFAULT_MAX_CONNECTIONS),
        mock_latency_s=args.mock_latency_ms / 1000.0,
        mock_fault_rate=args.mock_fault_rate,
    ) as session:
        prices = await _fetch_prices(session, PriceTable()) if not args.mock else PriceTable()
        if args.prices:
            prices = prices.with_prices(load_prices(args.prices))
        state["prices"] = prices
        if args.max_cost is not None and prices.get(args.model) is None:
            raise UsageError(
                f"--max-cost: no price is known for model {args.model!r}; give it with "
                f'--prices FILE ({{"{args.model}": {{"input": USD, "output": USD}}}} per '
                f"million tokens)"
            )
        progress = None
        # The input's size, when it can be counted (not stdin, not huge): the summary's total.
        total = state["input_total"] = _count_lines(args.input)
        if not args.no_progress:
            progress = state["progress"] = BatchProgress(
                total=total,
                file=sys.stderr,
                interval=args.progress_interval,
                prefix=f"{PROG}: ",
                done_before=lambda: state["job"].source.skipped,
            )
        options: dict[str, Any] = {
            "concurrency": args.concurrency,
            "model": args.model,
            "rpm": args.rpm,
            "tpm": args.tpm,
            "adaptive": not args.no_adaptive,
            "fail_fast": args.fail_fast,
            "max_error_rate": args.max_error_rate,
            "prices": prices,
            "max_cost": args.max_cost,
            "media_tokens": args.media_tokens,
            "message_overhead": args.message_overhead,
            "cache": args.cache_db,
            "progress": progress or False,
            "gc_tuning": True,
        }
        if args.timeout is not None:
            options["timeout"] = args.timeout
        job = state["job"] = Job(
            session,
            args.input,
            args.job_path,
            resume=args.resume,
            retry_failed=args.retry_failed,
            rerun_changed=args.rerun_changed,
            overwrite=args.overwrite,
            params=params,
            input_format=args.input_format,
            system=args.system,
            **options,
        )
        state["started"] = True
        report = await job.run()
        state["report"] = report
    return ExitCode.FAILED if report.total_failed else ExitCode.OK


def _say_resumed(job: Job) -> None:
    resumed = job.resumed
    if resumed is None:
        return
    if resumed.torn_removed:
        say(f"resume: removed a torn last line from {job.output_path}")
    if resumed.unreadable:
        say(f"warning: ignored {resumed.unreadable} unreadable line(s) in {job.output_path}")
    source = job.source
    if source.rerun:
        say(f"warning: {source.rerun} input(s) changed since their answer and were sent again")


def _summary(state: dict[str, Any], args: argparse.Namespace) -> None:
    job: Job | None = state.get("job")
    if job is None:
        return
    out_path = args.job_path
    _say_resumed(job)
    stats = job.stats
    say("this run: " + stats.summary())
    source = job.source
    if source.skipped:
        extra = f", {source.skipped_failed} of them failed" if source.skipped_failed else ""
        say(f"skipped {source.skipped} input(s) already in the output{extra}")
    if source.retried:
        say(f"retried {source.retried} failed input(s)")
    report: JobReport | None = state.get("report")
    final = report.final if report is not None else None
    if final is None:
        with contextlib.suppress(OSError):
            final = scan_output(out_path)
    totals = final.totals() if final is not None else None
    if totals is not None:
        state["failed_types"] = list(totals["errors"])
        errors = ", ".join(f"{n} {kind}" for kind, n in totals["errors"].items())
        cost = totals["cost_usd"]
        cost_text = (
            f"${cost:.4f}"
            if cost is not None
            else f">= ${totals['cost_usd_known']:.4f} ({totals['unpriced']} unpriced)"
            if totals["cost_usd_known"]
            else "unknown (no price for the model)"
        )
        done = totals["ok"] + totals["failed"]
        total = state.get("input_total")
        # A stopped or interrupted run: how many of the input's lines are done, not "done".
        counted = (
            f"{done} input(s)"
            if total == done
            else f"{done} input(s) done (the input's total is not known)"
            if total is None
            else f"{done} of {total} input(s) done"
        )
        say(
            f"job total: {counted}, {totals['ok']} ok, "
            f"{totals['failed']} failed"
            + (f" ({errors})" if errors else "")
            + f"; tokens in/out {totals['input_tokens']}/{totals['output_tokens']}"
            + f"; cost {cost_text}"
            + (f"; {totals['cached']} from the cache" if totals["cached"] else "")
            + (
                f"; compacted {report.compacted} superseded record(s)"
                if report and report.compacted
                else ""
            )
        )
    if args.max_cost is not None:
        say(
            f"budget: the job has spent ${job.spent_usd:.4f} of --max-cost ${args.max_cost:g} "
            f"(every run of {out_path} counts)"
        )
    if report is not None and not source.sent and not source.skipped:
        say(f"warning: {args.input} holds no requests (it is empty or blank); nothing was sent")
    say(f"results: {out_path} ({job.written} record(s) written by this run)")
    if args.summary:
        data = {
            "input": args.input,
            "output": out_path,
            "complete": report is not None,
            "job": totals,
            "this_run": {
                **stats.as_dict(),
                "written": job.written,
                "skipped": source.skipped,
                "retried_failed": source.retried,
                "rerun_changed": source.rerun,
            },
            "max_cost": args.max_cost,
            "job_spent_usd": round(job.spent_usd, 8),
        }
        try:
            with open(args.summary, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
        except OSError as exc:
            say(f"error: could not write the summary {args.summary}: {exc.strerror or exc}")


#: How many request bodies ``--dry-run`` prints (the first ones): enough to check the
#: parameters and the messages, few enough to read.
DRY_RUN_SHOWN: Final = 3

#: A body printed longer than this is cut (an inline image would fill the screen).
_DRY_RUN_BODY_CHARS: Final = 2000


def _show_body(out: Any, number: int, custom_id: str, body: dict[str, Any]) -> None:
    """One line: the request's number, its custom_id and its body as it would be sent."""
    text = json.dumps(body, ensure_ascii=False)
    if len(text) > _DRY_RUN_BODY_CHARS:
        text = f"{text[:_DRY_RUN_BODY_CHARS]}... ({len(text)} characters)"
    out.write(f"request {number} (custom_id {custom_id}): {text}\n")


def _dry_run(args: argparse.Namespace) -> int:
    """Read INPUT and print the first requests' bodies and what it would send and the most it
    could cost: the bound a ``--max-cost`` budget reserves (``batch/bound.py``); nothing is
    sent or written.

    The output (stdout), one line each, the optional ones only when they apply::

        request N (custom_id ID): BODY   (the first DRY_RUN_SHOWN, each cut at 2,000 chars)
        dry run: N request(s) to send[, K invalid line(s)]
        bound: input tokens at most I, output tokens at most O[, M media part(s)]
        cost: at most $X[ for the priced models; unknown for MODEL, ... (give prices ...)]
        media: M part(s) in R request(s) have no bound: --max-cost refuses them unsent ...
        --max-cost $B would stop this job before its end
    """
    prices = PriceTable()
    if args.prices:
        prices = prices.with_prices(load_prices(args.prices))
    params = chat_params(args)
    source = JobInput(input_format=args.input_format)
    requests = invalid = 0
    input_tokens = output_tokens = media_parts = unbounded = 0
    cost = 0.0
    unpriced: set[str] = set()
    fd = 0 if args.input == "-" else os.open(args.input, os.O_RDONLY)
    media_tokens = args.media_tokens

    async def read() -> None:
        nonlocal requests, invalid, input_tokens, output_tokens, cost, media_parts, unbounded
        async for item in source.items(fd):
            try:
                custom_id, body = prepare_line(
                    item, requests + invalid, None, model=args.model, params=params,
                    system=args.system,
                )  # fmt: skip
            except InvalidRequestError:
                invalid += 1
                continue
            requests += 1
            if requests <= DRY_RUN_SHOWN:
                _show_body(sys.stdout, requests, custom_id, body)
            bound = token_bound(
                body, message_overhead=args.message_overhead, media_tokens=media_tokens or 0
            )
            input_tokens += bound.input
            output_tokens += bound.output
            media_parts += bound.media_parts
            if bound.media_parts and media_tokens is None:
                unbounded += 1
            price = prices.get(str(body.get("model", "")))
            if price is None:
                unpriced.add(str(body.get("model")))
            else:
                cost += price.cost(bound.input, bound.output)

    try:
        asyncio.run(read())
    finally:
        if fd:
            os.close(fd)
    out = sys.stdout
    out.write(
        f"dry run: {requests} request(s) to send"
        + (f", {invalid} invalid line(s)" if invalid else "")
        + "\n"
    )
    out.write(
        f"bound: input tokens at most {input_tokens}, output tokens at most {output_tokens}"
        + (f", {media_parts} media part(s)" if media_parts else "")
        + "\n"
    )
    if unpriced:
        out.write(
            f"cost: at most ${cost:.4f} for the priced models; unknown for "
            f"{', '.join(sorted(unpriced))} (give prices with --prices FILE)\n"
        )
    else:
        out.write(f"cost: at most ${cost:.4f} (the bound at the prices)\n")
    if unbounded:
        out.write(
            f"media: {unbounded} request(s) hold media parts with no bound (counted as 0 "
            f"above): --max-cost refuses them unsent without --media-tokens N\n"
        )
    if args.max_cost is not None and (unpriced or unbounded or cost > args.max_cost):
        out.write(f"--max-cost ${args.max_cost:g} would stop this job before its end\n")
    if not requests:
        say(f"warning: {args.input} holds no requests (it is empty or blank)")
    out.flush()
    return int(ExitCode.OK)


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``export``: a job's JSONL output as CSV or Parquet."""
    if not os.path.isfile(args.job):
        raise UsageError(f"job file not found: {args.job}")
    try:
        rows = export_output(args.job, args.output, neutralise=not args.raw_csv)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except JobIOError as exc:
        say(f"error: {exc}")
        return int(ExitCode.IO_ERROR)
    say(f"wrote {rows} row(s) to {args.output}")
    return int(ExitCode.OK)
