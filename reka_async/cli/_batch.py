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
import os
import shlex
import signal
import sys
from typing import Any

from .._client import DEFAULT_MAX_CONNECTIONS
from .._exceptions import BatchAbortedError
from ..batch import BatchResult, BatchStats
from ..batch.fds import ensure_fd_limit, fd_budget
from ..jobs import InputChanged, Job, JobIOError, OutputLocked
from ._common import UsageError, api_key, chat_params, client, say
from ._exit import ExitCode

__all__ = ["cmd_batch"]


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _check_args(args: argparse.Namespace) -> None:
    out_path: str = args.output
    if out_path == "-":
        raise UsageError("OUTPUT must be a file (it is appended to and read back by --resume)")
    if args.input != "-":
        if not os.path.exists(args.input):
            raise UsageError(f"input file not found: {args.input}")
        if os.path.isdir(args.input):
            raise UsageError(f"INPUT is a directory: {args.input}")
        if os.path.exists(out_path) and os.path.samefile(args.input, out_path):
            raise UsageError("INPUT and OUTPUT are the same file")
    if os.path.isdir(out_path):
        raise UsageError(f"OUTPUT is a directory: {out_path}")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; choose one")
    for flag in ("retry_failed", "rerun_changed"):
        if getattr(args, flag) and not args.resume:
            raise UsageError(f"--{flag.replace('_', '-')} continues an output: add --resume")
    api_key(args)  # fail before creating OUTPUT


def _continue_command() -> str:
    """The command line that continues this run (never with the key in it)."""
    argv: list[str] = []
    skip = False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--api-key":
            skip = True
        elif not arg.startswith("--api-key=") and arg != "--overwrite":
            argv.append(arg)
    if "--resume" not in argv:
        argv.append("--resume")
    return shlex.join(["reka-async", *argv])


class _Terminated(Exception):
    """SIGTERM arrived: the run was cancelled like an interrupt."""


def cmd_batch(args: argparse.Namespace) -> int:
    """Run ``batch``; returns the exit status."""
    _check_args(args)
    note = ensure_fd_limit(fd_budget(args.concurrency), raise_limit=True)
    if note is not None:
        say(note)
    state: dict[str, Any] = {}
    status = ExitCode.OK
    try:
        status = asyncio.run(_main(args, state))
    except KeyboardInterrupt:
        say("interrupted: what finished is in the output")
        status = ExitCode.SIGINT
    except _Terminated:
        say("terminated (SIGTERM): what finished is in the output")
        status = ExitCode.SIGTERM
    except (OutputLocked, InputChanged) as exc:
        state["started"] = False  # refused: nothing was sent, no summary to give
        say(f"error: {exc}")
        return ExitCode.USAGE
    except FileExistsError:
        raise UsageError(
            f"{args.output} already exists and is not empty; pass --resume to continue it, "
            f"--overwrite to start afresh, or choose another output path"
        ) from None
    except JobIOError as exc:
        say(f"error: {exc}")
        status = ExitCode.IO_ERROR
    except BatchAbortedError as exc:
        say(f"error: {exc}")
        status = ExitCode.STOPPED
    finally:
        bar = state.get("bar")
        if bar is not None:
            bar.close()
        if state.get("started"):
            _summary(state, args.output)
    if status in (ExitCode.SIGINT, ExitCode.SIGTERM, ExitCode.STOPPED):
        say(f"to continue: {_continue_command()}")
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


async def _run(args: argparse.Namespace, state: dict[str, Any]) -> ExitCode:
    bar: Any = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        total = _count_lines(args.input) if args.input != "-" and not args.resume else None
        bar = state["bar"] = tqdm(total=total, unit="req", file=sys.stderr, dynamic_ncols=True)

    def on_result(result: BatchResult, live: BatchStats) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"ok={live.ok} failed={live.failed}", refresh=False)

    params = chat_params(args)
    async with client(
        args,
        max_retries=args.max_retries,
        max_connections=max(args.concurrency, DEFAULT_MAX_CONNECTIONS),
        mock_latency_s=args.mock_latency_ms / 1000.0,
        mock_fault_rate=args.mock_fault_rate,
    ) as session:
        job = state["job"] = Job(
            session,
            args.input,
            args.output,
            resume=args.resume,
            retry_failed=args.retry_failed,
            rerun_changed=args.rerun_changed,
            overwrite=args.overwrite,
            params=params,
            concurrency=args.concurrency,
            model=args.model,
            rpm=args.rpm,
            tpm=args.tpm,
            on_result=on_result,
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


def _summary(state: dict[str, Any], out_path: str) -> None:
    job: Job | None = state.get("job")
    if job is None:
        return
    _say_resumed(job)
    say(job.stats.summary())
    source = job.source
    if source.skipped:
        extra = f", {source.skipped_failed} of them failed" if source.skipped_failed else ""
        say(f"skipped {source.skipped} input(s) already in the output{extra}")
    if source.retried:
        say(f"retried {source.retried} failed input(s)")
    report = state.get("report")
    if report is not None:
        say(
            f"job total: {report.total_ok + report.total_failed} input(s), "
            f"{report.total_ok} ok, {report.total_failed} failed"
            + (f"; compacted {report.compacted} superseded record(s)" if report.compacted else "")
        )
    say(f"results: {out_path} ({job.written} record(s) written by this run)")
