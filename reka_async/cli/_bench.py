"""``reka-async bench``: the command line of ``reka_async.bench``, a table, JSON and plots."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import sys
from collections.abc import Iterator
from typing import TextIO

from .._files import check_can_create
from ..bench import (
    BenchConfig,
    BenchReport,
    Distribution,
    PlotUnavailableError,
    Progress,
    check_plotting,
    parse_slo,
    plot_report,
    run,
)
from ._common import UsageError, api_key, say
from ._exit import ExitCode
from ._parser import PROG

__all__ = ["cmd_bench"]

_MOCK_KEY = "mock-key"


def _config(args: argparse.Namespace, base_url: str | None) -> BenchConfig:
    """The `BenchConfig` of the options; a `UsageError` names what to fix."""
    try:
        return BenchConfig(
            base_url=base_url,
            model=args.model,
            api=args.api,
            stream=args.stream,
            concurrency=args.concurrency or (),
            rate=args.rate or (),
            arrivals=args.arrivals,
            burstiness=args.burstiness,
            duration_s=args.duration,
            max_concurrency=args.max_concurrency,
            num_requests=args.num_requests,
            input_tokens=Distribution.parse(args.input_tokens) if args.input_tokens else None,
            output_tokens=Distribution.parse(args.output_tokens) if args.output_tokens else None,
            prompts=args.prompts,
            seed=args.seed,
            slo=parse_slo(args.slo) if args.slo else None,
            timeout_s=args.timeout,
            max_retries=args.max_retries,
            ramp_up_s=args.ramp_up,
            warmup=args.warmup,
        )
    except ValueError as exc:
        raise UsageError(str(exc).replace("max_concurrency", "--max-concurrency")) from None


#: Seconds between progress lines without a terminal (CI, a pipe, nohup), as ``batch``.
_LINE_INTERVAL_S = 5.0


def _progress_text(p: Progress) -> str:
    rate = p.done / p.elapsed_s if p.elapsed_s > 0 else 0.0
    return (
        f"step {p.step}/{p.steps} {p.label}: {p.done}/{'?' if p.total is None else p.total} "
        f"done, {p.ok} ok, "
        f"{p.failed} failed, {p.in_flight} in flight, {rate:.1f} req/s, {p.elapsed_s:.1f} s"
    )


class _ProgressLine:
    """The live progress line on a terminal: one line per step, rewritten in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.width = 0

    def __call__(self, p: Progress) -> None:
        text = _progress_text(p)
        self.out.write("\r" + text.ljust(self.width))
        self.width = len(text)
        if p.finished:
            self.out.write("\n")
            self.width = 0
        self.out.flush()


class _ProgressLog:
    """Progress without a terminal: a line when a step starts, every ``interval`` seconds
    while it runs and when it ends (a log keeps every line; nothing is rewritten)."""

    def __init__(self, out: TextIO, interval: float = _LINE_INTERVAL_S) -> None:
        self.out = out
        self.interval = interval
        self.step = 0
        self.next_at = 0.0

    def __call__(self, p: Progress) -> None:
        if p.step != self.step:  # a new step: its first call, at once
            self.step, self.next_at = p.step, 0.0
        if not p.finished and p.elapsed_s < self.next_at:
            return
        self.next_at = p.elapsed_s + self.interval
        self.out.write(f"{PROG}: progress {_progress_text(p)}\n")
        self.out.flush()


def _progress(args: argparse.Namespace) -> _ProgressLine | _ProgressLog | None:
    if args.no_progress:
        return None
    if sys.stderr.isatty():
        return _ProgressLine(sys.stderr)
    return _ProgressLog(sys.stderr, args.progress_interval or _LINE_INTERVAL_S)


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[tuple[str | None, str]]:
    """``(base_url, key)``: the given ones, or a mock server's in its own process."""
    if not args.mock:
        yield args.base_url, api_key(args)
        return
    if args.base_url:
        raise UsageError("--mock and --base-url cannot be used together")
    from ..testing import MockServerProcess

    try:
        options = shlex.split(args.mock_args)
    except ValueError as exc:
        raise UsageError(f"--mock-args: {exc}") from None
    server = MockServerProcess(*options)
    try:
        server.start()
    except RuntimeError as exc:
        raise UsageError(f"--mock-args {args.mock_args!r}: {exc}") from None
    try:
        yield server.base_url, _MOCK_KEY
    finally:
        server.stop()


def _write(report: BenchReport, args: argparse.Namespace) -> int:
    try:
        if args.json:
            report.write_json(args.json)
            say(f"wrote {args.json}")
        if args.requests_out:
            report.write_requests(args.requests_out)
            say(f"wrote {args.requests_out}")
        if args.plot:
            for path in plot_report(report, args.plot):
                say(f"wrote {path}")
    except OSError as exc:
        where = exc.filename or args.json or args.requests_out or args.plot
        say(f"error: cannot write {where}: {exc.strerror or exc}")
        return ExitCode.IO_ERROR
    return ExitCode.OK


def _check_outputs(args: argparse.Namespace) -> int:
    """``ExitCode.IO_ERROR`` (said) when an output path cannot be written, else OK: a
    sweep can take minutes, and its samples must not be lost to a typo at the end."""
    for path, directory in ((args.json, False), (args.requests_out, False), (args.plot, True)):
        if not path:
            continue
        try:
            check_can_create(path, directory=directory)
        except OSError as exc:
            say(
                f"error: cannot write {exc.filename or path}: {exc.strerror or exc} "
                f"(checked before sending anything)"
            )
            return ExitCode.IO_ERROR
    return ExitCode.OK


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``bench``; returns the exit status."""
    _config(args, None)  # usage errors before anything starts
    if args.plot:
        try:
            check_plotting()
        except PlotUnavailableError as exc:
            raise UsageError(f"--plot: {exc}") from None
    status = _check_outputs(args)
    if status != ExitCode.OK:
        return status
    with _target(args) as (base_url, key):
        config = _config(args, base_url)
        try:
            report = asyncio.run(
                run(
                    config,
                    api_key=key,
                    on_progress=_progress(args),
                    allow_insecure_http=args.allow_insecure_http,
                )
            )
        except OSError as exc:  # the prompts file
            say(f"error: cannot read {exc.filename or args.prompts}: {exc.strerror or exc}")
            return ExitCode.IO_ERROR
        except ValueError as exc:  # a prompts file line that cannot be a request
            raise UsageError(str(exc)) from None
    print(report.table(), flush=True)
    for warning in report.warnings:
        say(f"warning: {warning}")
    status = _write(report, args)
    if status != ExitCode.OK:
        return status
    return ExitCode.OK if report.ok else ExitCode.FAILED
