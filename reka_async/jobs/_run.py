"""``run_job``: a JSONL batch job from an input file to an output file, exactly once.

This is what ``reka-async batch`` runs (and what ``run_ray_job`` mirrors). The guarantees:

* every input ends as exactly one final record in the output (a response or an error),
  however the run ends: a crash or kill at any point leaves a file that ``resume=True``
  completes, because records are appended whole and a later record of an id supersedes an
  earlier one (``_resume``); superseded records are compacted away atomically at the end;
* one writer per output (``OutputLock``): a second run on the same output is refused;
* a resume never pairs an old answer with a new request: each record stores its request's
  hash (and its input line's, with the options, which a resume compares first), and an
  input whose request changed is refused (``InputChanged``) or, with
  ``rerun_changed=True``, sent again;
* ``retry_failed=True`` sends again the failures that can change (``retryable_failure``);
* a duplicate ``custom_id`` is an error line of its own and never marks the original done;
* a failed write (a full disk) raises ``JobIOError`` naming the path, and the counts say
  what was written;
* ``max_cost`` caps the job, not the run: a resume starts its budget at the job's spend so
  far (every record, superseded ones included, plus what compactions carried: ``_spend``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import InvalidRequestError
from .._wire.hashing import request_hasher_for
from ..batch import BatchResult, BatchRunner, BatchStats
from ._carry import compact_carrying, spent_before
from ._errors import JobIOError
from ._input import JobInput, input_format, input_hasher, line_preparer, prepare_line
from ._lock import OutputLock
from ._output import Writer, record
from ._resume import Resumed, scan_output, start_output
from ._spend import record_spend

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._client import AsyncClient
    from ..batch import BatchOptions

__all__ = ["JobReport", "request_hasher", "run_job"]  # and Job, for the CLI only


@attrs.frozen(kw_only=True)
class JobReport:
    """What a job did, this run and in total.

    Attributes:
        output_path: the output file.
        stats: this run's ``BatchStats``.
        written: records this run appended.
        skipped: inputs skipped because the output already had them.
        retried: failed inputs sent again (``retry_failed``).
        rerun: changed inputs sent again (``rerun_changed``).
        compacted: superseded records removed from the output at the end.
        total_ok: inputs whose final record is a response (the whole job, across runs).
        total_failed: inputs whose final record is an error (the whole job).
        resumed: what the output held before this run (``None`` when it started empty).
        final: what the output holds at the end (``final.totals()``: the whole job).
        spent_usd: what the whole job was charged, every run and superseded record
            included (what ``max_cost`` caps).
    """

    output_path: str
    stats: BatchStats
    written: int
    skipped: int
    retried: int
    rerun: int
    compacted: int
    total_ok: int
    total_failed: int
    resumed: Resumed | None
    final: Resumed = attrs.field(factory=Resumed)
    spent_usd: float = 0.0


def request_hasher(client: AsyncClient) -> Callable[[Mapping[str, Any]], str]:
    """``hash(body)``: the request identity of a body sent through ``client``."""
    return request_hasher_for(client.base_url, client.api)


def _check_paths(input_path: str, output_path: str) -> None:
    """Refuse paths that cannot work, before anything is opened (``ValueError``)."""
    if (
        input_path != "-"
        and os.path.exists(output_path)
        and os.path.exists(input_path)
        and os.path.samefile(input_path, output_path)
    ):
        raise ValueError("the input and the output are the same file")


class Job:
    """One run of a JSONL job; ``run_job`` is ``await Job(...).run()``.

    Not public: ``run_job`` is the entry point, with the one documented signature. The CLI
    uses this class because its live state (``source``, ``stats``, ``written``) stays
    readable whatever ``run()`` raised, so the CLI can report what was done after an
    interrupt. Takes the arguments of ``run_job``.
    """

    def __init__(
        self,
        client: AsyncClient,
        input_path: str,
        output_path: str,
        *,
        resume: bool = False,
        retry_failed: bool = False,
        rerun_changed: bool = False,
        overwrite: bool = False,
        params: Mapping[str, Any] | None = None,
        input_format: str | None = None,
        system: str | None = None,
        **options: Unpack[BatchOptions],
    ) -> None:
        self.system = system
        self.input_format = _input_format(input_path, input_format)
        if resume and overwrite:
            raise ValueError("resume and overwrite contradict each other; choose one")
        if (retry_failed or rerun_changed) and not resume:
            raise ValueError("retry_failed and rerun_changed continue an output: pass resume too")
        _check_paths(input_path, output_path)
        self.client = client
        self.input_path = input_path
        self.output_path = output_path
        self.resume = resume
        self.retry_failed = retry_failed
        self.rerun_changed = rerun_changed
        self.overwrite = overwrite
        self.params = dict(params or {})
        self.options = options
        self.model = options.get("model", "reka-flash")
        self.resumed: Resumed | None = None
        self.source = JobInput()
        self.stats = BatchStats()
        self.written = 0
        #: What the whole job was charged so far (updated as records are written).
        self.spent_usd = 0.0
        self._hash_body = request_hasher(client)
        #: The ``input_hash`` of the job's lines (``None``: its parameters are not JSON).
        self.hash_input = input_hasher(
            model=self.model,
            params=self.params,
            system=system,
            input_format=self.input_format,
            base_url=client.base_url,
            api=client.api,
        )

    def hash_line(self, item: Any, lineno: int) -> str:
        """The request identity of an input line (``"line:"`` when it is no request)."""
        try:
            _, body = prepare_line(
                item, 0, lineno, model=self.model, params=self.params, system=self.system
            )
        except InvalidRequestError:
            return "line:"  # never a request: JobInput compares the raw line's hash
        return self._hash_body(body)

    async def run(self) -> JobReport:
        """Run the job (see ``run_job`` for what it raises)."""
        with OutputLock(self.output_path):
            return await self._run_locked()

    async def _run_locked(self) -> JobReport:
        out = self.output_path
        resumed = self.resumed = start_output(out, resume=self.resume, overwrite=self.overwrite)
        from_stdin = self.input_path == "-"
        expected = 0 if from_stdin else _count_lines(self.input_path)
        checker: JobInput | None = None
        if resumed is not None and len(resumed) and not from_stdin and not self.rerun_changed:
            # Refuse before anything is sent: one read of the input, hashing only the inputs
            # the output already holds. (Standard input cannot be read twice: there, a
            # changed input stops the run where it is found.) The run's own read then
            # parses only the lines the check found to send.
            checker = JobInput(
                resumed,
                retry_failed=self.retry_failed,
                hash_line=self.hash_line,
                input_format=self.input_format,
                expected=expected,
                hash_input=self.hash_input,
            )
            check_fd = _open(self.input_path)
            try:
                await checker.check(check_fd)
            finally:
                os.close(check_fd)
        source = self.source = JobInput(
            resumed,
            retry_failed=self.retry_failed,
            hash_line=self.hash_line,
            rerun_changed=self.rerun_changed,
            input_format=self.input_format,
            expected=0 if checker is not None else expected,
            hash_input=self.hash_input,
        )
        if checker is not None:
            source.adopt(checker)  # its decisions: the run reads only the lines to send
            del checker
        spent = self.spent_usd = self._spent_so_far(resumed)
        runner_options: dict[str, Any] = {
            **self.options,
            **self.params,
            "prepare": line_preparer(
                source.line_of, model=self.model, params=self.params, system=self.system
            ),
        }
        if self.options.get("max_cost") is not None:
            runner_options["cost_spent"] = spent + self.options.get("cost_spent", 0.0)
        runner = BatchRunner(self.client, **runner_options)  # its errors come before OUTPUT
        fd = 0 if from_stdin else _open(self.input_path)
        writer = Writer(out)
        completed = writable = False
        try:
            stream = runner.stream(source.items(fd))
            writable = True
            async with stream as results:
                self.stats = runner.stats
                async for result in results:
                    writable = False  # until the write returns: a failed one stops writing
                    self._write(writer, result, source)
                    writable = True
            completed = True
        finally:
            try:
                if writable:
                    # Answers that came back but were not handed out when the stream stopped
                    # (a cancel, Ctrl-C, a stop by the breaker): they were paid for, so they
                    # are written; otherwise a resume would ask for them again.
                    for result in stream.unclaimed():
                        self._write(writer, result, source)
            finally:
                self.stats = runner.stats
                self.written = writer.written
                writer.close()
                if not from_stdin:
                    os.close(fd)
        compacted = 0
        superseded = (resumed.superseded if resumed else 0) + source.retried + source.rerun
        if completed and superseded:
            compacted = self._compact(out)
        if compacted or resumed is None:
            # A first run's records are all of different inputs: counting them is the total.
            final = scan_output(out, keyed=resumed is not None)
        else:
            final = scan_output(out, after=resumed.fork())  # only this run's records
        return JobReport(
            output_path=out,
            stats=runner.stats,
            written=writer.written,
            skipped=source.skipped,
            retried=source.retried,
            rerun=source.rerun,
            compacted=compacted,
            total_ok=final.ok_count,
            total_failed=final.failed_count,
            resumed=resumed,
            final=final,
            spent_usd=self.spent_usd,
        )

    def _write(self, writer: Writer, result: BatchResult, source: JobInput) -> None:
        line = _record(result, source, self._hash_body)
        writer.write(line)
        self.written = writer.written
        self.spent_usd += record_spend(line)

    def _spent_so_far(self, resumed: Resumed | None) -> float:
        """The job's spend before this run (``_carry.spent_before``)."""
        return spent_before(self.output_path, resumed)

    def _compact(self, out: str) -> int:
        """Compact, carrying the spend of the records it removes (``_carry``)."""
        return compact_carrying(out, self.spent_usd)


async def run_job(
    client: AsyncClient,
    input_path: str,
    output_path: str,
    *,
    resume: bool = False,
    retry_failed: bool = False,
    rerun_changed: bool = False,
    overwrite: bool = False,
    params: Mapping[str, Any] | None = None,
    input_format: str | None = None,
    system: str | None = None,
    **options: Unpack[BatchOptions],
) -> JobReport:
    """Run the JSONL job ``input_path`` -> ``output_path`` (see the module docstring).

    Args:
        client: the client to send through.
        input_path: the input file (JSONL or plain text), or ``"-"`` for standard input.
        output_path: the output file (JSONL records), appended to.
        resume: continue an existing output: skip the inputs it already answered.
        retry_failed: with ``resume``, send again the failures that can change.
        rerun_changed: with ``resume``, send again inputs whose request changed since their
            record was written (default: refuse with ``InputChanged``).
        overwrite: start the output afresh.
        params: chat parameters for every line (``max_tokens``, ...); a line's own win.
        input_format: ``"jsonl"`` or ``"text"``; default: from the extension (``.jsonl``,
            ``.txt``; standard input is JSONL), never from the content.
        system: a system message put before each line's messages (unless they start with one).
        **options: ``BatchRunner`` options (``concurrency``, ``model``, ``rpm``,
            ``on_result``, ...).

    Returns:
        A ``JobReport``.

    Raises:
        ValueError: contradictory options, or the input is the output.
        FileExistsError: the output is not empty and neither ``resume`` nor ``overwrite``.
        OutputLocked: another run is writing the output.
        InputChanged: inputs the output answered changed (nothing was sent, except from
            standard input, where the run stops at the first one).
        BatchAbortedError: the circuit breaker stopped the job (its results are written).
        JobIOError: reading or writing failed; the message names the path.
    """
    job = Job(
        client,
        input_path,
        output_path,
        resume=resume,
        retry_failed=retry_failed,
        rerun_changed=rerun_changed,
        overwrite=overwrite,
        params=params,
        input_format=input_format,
        system=system,
        **options,
    )
    return await job.run()


def _input_format(path: str, given: str | None) -> str:
    try:
        return input_format(path, given)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


def _count_lines(path: str) -> int:
    """The lines of the input file ``path`` (0 if it cannot be read: the run says why)."""
    lines = 0
    with contextlib.suppress(OSError), open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise JobIOError(
            f"could not read {path}: {exc.strerror or exc}", path=path, written=0
        ) from exc


def _record(
    result: BatchResult, source: JobInput, hash_body: Callable[[Mapping[str, Any]], str]
) -> dict[str, Any]:
    line = source.line_of.pop(result.index, None)
    raw_hash = source.line_hash_of.pop(result.index, None)
    digest = hash_body(result.request) if result.request is not None else raw_hash
    return record(result, line, digest, source.input_hash_of.pop(result.index, None))
