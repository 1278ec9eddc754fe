"""Resuming a job: what an existing output already holds, after cutting off a torn line."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Final

import attrs

from ._errors import DuplicateCustomId

__all__ = ["Resumed", "scan_output", "start_output"]

_TORN: Final = object()


@attrs.frozen(kw_only=True)
class Resumed:
    """What an existing output holds, as `scan_output` found it.

    Attributes:
        ok: custom_ids answered.
        failed: custom_ids that ended as error lines.
        dup_lines: input line numbers of ``DuplicateCustomId`` error lines.
        records: result lines read.
        torn_removed: a torn last line (from a crash) was cut off the file.
        unreadable: other lines that are not result records (ignored).
    """

    ok: set[str] = attrs.field(factory=set)
    failed: set[str] = attrs.field(factory=set)
    dup_lines: set[int] = attrs.field(factory=set)
    records: int = 0
    torn_removed: bool = False
    unreadable: int = 0


def scan_output(path: str) -> Resumed:
    """Read an existing output for a resume; cut off a torn last line."""
    done_ok: set[str] = set()
    done_failed: set[str] = set()
    dup_lines: set[int] = set()
    records = bad = trailing_bad = foreign = 0
    with open(path, "r+b") as f:
        offset = good_end = 0  # good_end: the end of the last complete, valid record
        for raw in f:
            end = offset + len(raw)
            record: Any = _TORN
            if raw.endswith(b"\n") and raw.strip():
                with contextlib.suppress(ValueError):
                    record = json.loads(raw)
            if record is not _TORN:
                # A complete line: kept, and counted when it is one of our records.
                good_end = end
                trailing_bad = 0
                if isinstance(record, dict) and isinstance(record.get("custom_id"), str):
                    records += 1
                    custom_id = record["custom_id"]
                    (done_ok if record.get("ok") is True else done_failed).add(custom_id)
                    error = record.get("error")
                    line = record.get("line")
                    if (
                        isinstance(error, dict)
                        and error.get("type") == DuplicateCustomId.__name__
                        and isinstance(line, int)
                    ):
                        dup_lines.add(line)
                else:
                    foreign += 1
            elif raw.strip():
                bad += 1
                trailing_bad += 1
            elif not trailing_bad:
                good_end = end
            offset = end
        if trailing_bad:
            # A crash mid-write left a torn last line: cut the file back to the end of the
            # last complete record, so that the rerun appends cleanly and redoes that item.
            f.truncate(good_end)
    return Resumed(
        ok=done_ok,
        failed=done_failed,
        dup_lines=dup_lines,
        records=records,
        torn_removed=bool(trailing_bad),
        unreadable=bad - trailing_bad + foreign,
    )


def start_output(path: str, *, resume: bool, overwrite: bool) -> Resumed | None:
    """Make ``path`` ready to append to: emptied with ``overwrite``, scanned with ``resume``.

    Returns:
        What the output already holds (`scan_output`), or ``None`` when it starts empty.

    Raises:
        FileExistsError: the output is not empty and neither ``resume`` nor ``overwrite``
            was given (the caller words the message).
    """
    if overwrite and os.path.exists(path):
        os.truncate(path, 0)
    if not (os.path.exists(path) and os.path.getsize(path) > 0):
        return None
    if not resume:
        raise FileExistsError(path)
    return scan_output(path)
