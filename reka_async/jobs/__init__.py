"""The JSONL job format shared by ``reka-async batch`` and the Ray integration.

The data flow of a job, one module a step: input lines are read from a file descriptor by a
thread (`_read`), parsed into batch items or `BadLine` errors with duplicate ``custom_id``
detection and resume skips (`_input`), prepared for the runner with errors that name their
line (`prepare_line`), and each result is appended to the output as one record (`_output`);
an existing output is scanned, and a torn last line cut off, to resume (`_resume`).

Internal: imported by ``reka_async.cli`` and ``reka_async.integrations``, never re-exported
at the top level, and importing neither of them.
"""

from __future__ import annotations

from ._errors import DuplicateCustomId, InvalidInputLine
from ._input import BadLine, JobInput, line_preparer, prepare_line
from ._output import Writer, record
from ._read import read_lines
from ._resume import Resumed, scan_output, start_output

__all__ = [
    "BadLine",
    "DuplicateCustomId",
    "InvalidInputLine",
    "JobInput",
    "Resumed",
    "Writer",
    "line_preparer",
    "prepare_line",
    "read_lines",
    "record",
    "scan_output",
    "start_output",
]
