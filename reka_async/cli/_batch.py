"""``reka-async batch``: a JSONL file through ``BatchRunner``, one output line per input.

The job format (input lines, duplicates, resume, output records) is ``reka_async.jobs``;
this module checks the paths, wires the format to the runner and reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import Any

from .._client import DEFAULT_MAX_CONNECTIONS
from ..batch import BatchResult, BatchRunner, BatchStats
from ..jobs import JobInput, Writer, line_preparer, record, start_output
from ._common import UsageError, api_key, chat_params, client, say

__all__ = ["cmd_batch"]


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def cmd_batch(args: argparse.Namespace) -> int:
    """Run ``batch``; returns the exit status."""
    out_path: str = args.output
    if out_path == "-":
        raise UsageError("OUTPUT must be a file (it is appended to and read back by --resume)")
    from_stdin = args.input == "-"
    if not from_stdin:
        if not os.path.exists(args.input):
            raise UsageError(f"input file not found: {args.input}")
        if os.path.isdir(args.input):
            raise UsageError(f"INPUT is a directory: {args.input}")
        if os.path.exists(out_path) and os.path.samefile(args.input, out_path):
            raise UsageError("INPUT and OUTPUT are the same file")
    if os.path.isdir(out_path):
        raise UsageError(f"OUTPUT is a directory: {out_path}")
    api_key(args)  # fail before creating OUTPUT

    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; choose one")
    try:
        resumed = start_output(out_path, resume=args.resume, overwrite=args.overwrite)
    except FileExistsError:
        raise UsageError(
            f"{out_path} already exists and is not empty; pass --resume to continue it, "
            f"--overwrite to start afresh, or choose another output path"
        ) from None
    if resumed is not None:
        if resumed.torn_removed:
            say(f"resume: removed a torn last line from {out_path}")
        if resumed.unreadable:
            say(f"warning: ignored {resumed.unreadable} unreadable line(s) in {out_path}")
        say(f"resume: {resumed.records} result(s) already in {out_path} will be skipped")
    source = JobInput(resumed)

    bar: Any = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        total = None
        if not from_stdin:
            done = len(source.resumed.ok) + len(source.resumed.failed)
            total = max(_count_lines(args.input) - done, 0)
        bar = tqdm(total=total, unit="req", file=sys.stderr, dynamic_ncols=True)

    fd = sys.stdin.fileno() if from_stdin else os.open(args.input, os.O_RDONLY)
    writer = Writer(out_path)
    stats: list[BatchStats] = []
    try:
        asyncio.run(_run_batch(args, source, fd, writer, bar, stats))
    finally:
        if bar is not None:
            bar.close()
        writer.close()
        if not from_stdin:
            os.close(fd)
        if stats:
            _summary(stats[0], source, out_path)
    return 1 if stats[0].failed or source.skipped_failed else 0


async def _run_batch(
    args: argparse.Namespace,
    source: JobInput,
    fd: int,
    writer: Writer,
    bar: Any,
    stats_out: list[BatchStats],
) -> None:
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
        runner = BatchRunner(
            session,
            concurrency=args.concurrency,
            model=args.model,
            rpm=args.rpm,
            tpm=args.tpm,
            on_result=on_result,
            prepare=line_preparer(source.line_of, model=args.model, params=params),
            **params,
        )
        async with contextlib.aclosing(source.items(fd)) as items:
            try:
                async with runner.stream(items) as results:
                    async for result in results:
                        writer.write(record(result, source.line_of.pop(result.index, None)))
            finally:
                stats_out.append(runner.stats)


def _summary(stats: BatchStats, source: JobInput, out_path: str) -> None:
    say(stats.summary())
    if source.skipped:
        extra = f", {source.skipped_failed} of them failed" if source.skipped_failed else ""
        say(f"skipped {source.skipped} input(s) already in the output{extra}")
    say(f"results: {out_path}")
