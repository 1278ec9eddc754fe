"""The JSONL job format shared by ``reka-async batch`` and the Ray integration.

The data flow of a job, one module a step: input lines are read from a file descriptor by a
thread (`_read`), parsed into batch items or `BadLine` errors with duplicate ``custom_id``
detection and resume skips (`_input`), prepared for the runner with errors that name their
line (`prepare_line`), and each result is appended to the output as one record (`_output`);
an existing output is scanned, and a torn last line cut off, to resume (`_resume`). What is kept
per input (the ids seen, the last record of each) lives in digest tables (`_index`), never in
a Python object an input, so memory stays flat with the job's size.

``run_job`` is the public entry point (``reka_async.jobs.run_job``); its module docstring
states the guarantees. Imported by ``reka_async.cli`` and ``reka_async.integrations``, never
re-exported at the top level, and importing neither of them.
"""

from __future__ import annotations

from ._errors import DuplicateCustomId, InputChanged, InvalidInputLine, JobIOError, OutputLocked
from ._export import EXPORT_FORMATS, export_format, export_output
from ._input import (
    INPUT_FORMATS,
    BadLine,
    InputHasher,
    JobInput,
    input_format,
    input_hasher,
    line_preparer,
    prepare_line,
    raw_line_hash,
)
from ._lock import OutputLock
from ._output import Writer, record
from ._read import read_lines
from ._resume import (
    Entry,
    Resumed,
    compact_output,
    count_lines,
    retryable_failure,
    scan_output,
    start_output,
)
from ._run import JobReport, request_hasher, run_job

__all__ = [
    "EXPORT_FORMATS",
    "INPUT_FORMATS",
    "BadLine",
    "DuplicateCustomId",
    "Entry",
    "InputChanged",
    "InputHasher",
    "InvalidInputLine",
    "JobIOError",
    "JobInput",
    "JobReport",
    "OutputLock",
    "OutputLocked",
    "Resumed",
    "Writer",
    "compact_output",
    "count_lines",
    "export_format",
    "export_output",
    "input_format",
    "input_hasher",
    "line_preparer",
    "prepare_line",
    "raw_line_hash",
    "read_lines",
    "record",
    "request_hasher",
    "retryable_failure",
    "run_job",
    "scan_output",
    "start_output",
]
