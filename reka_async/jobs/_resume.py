"""Resuming a job: what an existing output already holds, and compacting it at the end.

The output is append-only while a job runs; a later record of a ``custom_id`` supersedes an
earlier one (a failure retried with ``retry_failed``, an input re-run after it changed). So a
file cut off at any point, even mid-line, still says exactly what is done: the last complete
record of each id. At the end of a run that superseded records, the output is compacted to one
record per input: rewritten beside itself, flushed to disk, and renamed over it (atomic on
POSIX), so a crash leaves either the old file or the new one, both complete for ``--resume``.

Which failures ``retry_failed`` sends again (``retryable_failure``): those that can change on
another try: connection errors and timeouts, 5xx, 408/409, 429s (rate limit and credits),
401/403 (a key fixed since), an unreadable response. Input errors are kept: an invalid line,
a duplicate ``custom_id``, 400, 404 (unknown model), 405, 413 and 422.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Final

import attrs

from .._files import real_path, temp_beside
from ._errors import DuplicateCustomId, JobIOError
from ._spend import record_spend

__all__ = [
    "Entry",
    "Resumed",
    "compact_output",
    "retryable_failure",
    "scan_output",
    "start_output",
]

_TORN: Final = object()
_INPUT_ERROR_TYPES: Final = frozenset(
    (
        "InvalidRequestError",
        "InvalidInputLine",
        "DuplicateCustomId",
        "BadRequestError",
        "NotFoundError",
        "MethodNotAllowedError",
        "UnprocessableEntityError",
    )
)
_INPUT_ERROR_STATUSES: Final = frozenset((400, 404, 405, 413, 422))


def retryable_failure(error: Any) -> bool:
    """Whether a failed record's ``error`` can change on another try (module docstring)."""
    if not isinstance(error, dict):
        return True
    if error.get("type") in _INPUT_ERROR_TYPES:
        return False
    return error.get("status") not in _INPUT_ERROR_STATUSES


@attrs.frozen
class Entry:
    """The last record of one ``custom_id`` in the output.

    Attributes:
        ok: it has a response.
        retryable: it failed in a way another try can change (``retryable_failure``).
        request_hash: the hash of the request it answered (``None`` in older records).
        error_type: the error's type when it failed.
        input_tokens, output_tokens: the usage of its response.
        cost_usd: what its response cost (``None``: unknown, or it failed).
        cached: its response came from the request cache.
    """

    ok: bool
    retryable: bool
    request_hash: str | None
    error_type: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    cached: bool = False


@attrs.frozen(kw_only=True)
class Resumed:
    """What an existing output holds, as `scan_output` found it.

    Attributes:
        entries: the last record of each custom_id.
        dup_lines: input line numbers of ``DuplicateCustomId`` error lines (they never mark
            their custom_id done: the original line's own record does).
        records: result lines read.
        superseded: records a later record of the same custom_id (or line) replaces.
        torn_removed: a torn last line (from a crash) was cut off the file.
        unreadable: other lines that are not result records (ignored).
        spent_usd: what every record says its item was charged, superseded records
            included (``_spend.record_spend``; the job's spend adds the sidecar's).
    """

    entries: dict[str, Entry] = attrs.field(factory=dict)
    dup_lines: set[int] = attrs.field(factory=set)
    records: int = 0
    superseded: int = 0
    torn_removed: bool = False
    unreadable: int = 0
    spent_usd: float = 0.0

    @property
    def ok(self) -> set[str]:
        """custom_ids answered."""
        return {k for k, e in self.entries.items() if e.ok}

    @property
    def failed(self) -> set[str]:
        """custom_ids whose last record is an error."""
        return {k for k, e in self.entries.items() if not e.ok}

    def totals(self) -> dict[str, Any]:
        """The whole job as its output says, across every run: ``ok``, ``failed``,
        ``errors`` (by type), ``input_tokens``, ``output_tokens``, ``cost_usd`` (``None``
        when a response's cost is unknown), ``cached``."""
        entries = self.entries.values()
        errors: dict[str, int] = {}
        for entry in entries:
            if not entry.ok:
                name = entry.error_type or "unknown"
                errors[name] = errors.get(name, 0) + 1
        if self.dup_lines:
            errors[DuplicateCustomId.__name__] = len(self.dup_lines)
        billed = [e for e in entries if e.ok and not e.cached]
        unknown = sum(e.cost_usd is None for e in billed)
        known = sum(e.cost_usd or 0.0 for e in billed)
        return {
            "ok": sum(e.ok for e in entries),
            "failed": sum(not e.ok for e in entries) + len(self.dup_lines),
            "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])),
            "input_tokens": sum(e.input_tokens for e in billed),
            "output_tokens": sum(e.output_tokens for e in billed),
            "cost_usd": None if unknown else round(known, 6),
            "cost_usd_known": round(known, 6),
            "unpriced": unknown,
            "cached": sum(e.ok and e.cached for e in entries),
        }


def _dup_line(record: dict[str, Any]) -> int | None:
    error = record.get("error")
    line = record.get("line")
    if isinstance(error, dict) and error.get("type") == DuplicateCustomId.__name__:
        return line if isinstance(line, int) else -1
    return None


def _entry(record: dict[str, Any]) -> Entry:
    ok = record.get("ok") is True
    digest = record.get("request_hash")
    error = record.get("error")
    usage = record.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    cost = record.get("cost_usd")
    return Entry(
        ok=ok,
        retryable=not ok and retryable_failure(error),
        request_hash=digest if isinstance(digest, str) else None,
        error_type=str(error.get("type")) if isinstance(error, dict) and not ok else None,
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cost_usd=float(cost) if isinstance(cost, (int, float)) and ok else None,
        cached=record.get("cached") is True,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def scan_output(path: str) -> Resumed:
    """Read an existing output for a resume; cut off a torn last line."""
    entries: dict[str, Entry] = {}
    dup_lines: set[int] = set()
    records = superseded = bad = trailing_bad = foreign = 0
    spent = 0.0
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
                    spent += record_spend(record)  # superseded ones too: they were paid
                    dup = _dup_line(record)
                    if dup is not None:
                        superseded += dup in dup_lines
                        dup_lines.add(dup)
                    else:
                        custom_id = record["custom_id"]
                        superseded += custom_id in entries
                        entries[custom_id] = _entry(record)
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
        entries=entries,
        dup_lines=dup_lines,
        records=records,
        superseded=superseded,
        torn_removed=bool(trailing_bad),
        unreadable=bad - trailing_bad + foreign,
        spent_usd=spent,
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


def compact_output(path: str) -> int:
    """Rewrite ``path`` with only the last record of each custom_id (and of each duplicate
    line), atomically; returns the records dropped (0: the file was left untouched).

    Other lines (foreign or unreadable) are kept where they are. The caller holds the lock.

    Raises:
        JobIOError: the rewrite failed; the original file is intact.
    """
    last: dict[Any, int] = {}
    with open(path, "rb") as f:
        for number, raw in enumerate(f):
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                if isinstance(record, dict) and isinstance(record.get("custom_id"), str):
                    dup = _dup_line(record)
                    last[("dup", dup) if dup is not None else record["custom_id"]] = number
    keep = set(last.values())
    # Beside the real file (a linked output is rewritten through its link), under a name
    # nobody can predict and plant a link at.
    target = real_path(path)
    temp = ""
    dropped = 0
    try:
        fd, temp = temp_beside(target, "compact")
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            for number, raw in enumerate(src):
                if number in keep or not _is_record(raw):
                    dst.write(raw)
                else:
                    dropped += 1
            if not dropped:
                return 0
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(temp, target)
        _fsync_dir(target)
    except OSError as exc:
        raise JobIOError(
            f"could not compact {path}: {exc.strerror or exc}; it is still complete "
            f"(later records win), and --resume reads it as it is",
            path=path,
            written=len(keep),
        ) from exc
    finally:
        if temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    return dropped


def _is_record(raw: bytes) -> bool:
    try:
        record = json.loads(raw)
    except ValueError:
        return False
    return isinstance(record, dict) and isinstance(record.get("custom_id"), str)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
