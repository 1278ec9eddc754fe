"""``export_output``: a job's JSONL output as CSV or Parquet, one row per input.

The JSONL file stays the job's truth (resume, the lock and compaction work on it); an export
is written from it, beside the final path and renamed over it, so a reader never sees half a
file. Rows follow the input order (by ``line``); the last record of each input wins, as on a
resume. Parquet needs ``pyarrow`` (``pip install 'reka-async[parquet]'``).

An export streams: one scan finds the last record of each input (by its key, as a resume
does, about 22.5 bytes an input) and files its offset under its line (8 bytes a line); the
rows are then read back in input order and written one at a time (CSV) or a row group of at
most 8,192 rows or 1 MiB at a time (Parquet), so its memory does not grow with the answers.
"""

from __future__ import annotations

import array
import contextlib
import csv
import importlib
import json
import os
from collections.abc import Iterator
from typing import IO, Any, Final

from .._files import real_path, temp_beside
from ._errors import JobIOError
from ._index import DigestTable
from ._resume import count_lines, read_record, record_line_at

__all__ = [
    "COLUMNS",
    "EXPORT_FORMATS",
    "FORMULA_STARTS",
    "export_format",
    "export_output",
    "neutralise_cell",
]

EXPORT_FORMATS: Final = ("csv", "parquet")
_PARQUET_BATCH_ROWS: Final = 8192  # a row group's most rows ...
_PARQUET_BATCH_BYTES: Final = 1 << 20  # ... and about its most bytes, as JSON lines

#: The columns of an export, in order.
COLUMNS: Final = (
    "custom_id",
    "line",
    "ok",
    "text",
    "finish_reason",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cached",
    "error_type",
    "error_message",
    "error_status",
    "attempts",
    "latency_s",
    "metadata",
    "request_hash",
)


#: What a spreadsheet reads as the start of a formula (OWASP "CSV injection"): a cell that
#: begins with one of these gets a leading ``'`` in a CSV export.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula.

    Only text is touched: numbers, booleans and empty cells are returned as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_format(path: str) -> str | None:
    """``"csv"`` or ``"parquet"`` from the extension of ``path``; ``None`` for anything else."""
    ext = os.path.splitext(path)[1].lower()
    return {".csv": "csv", ".parquet": "parquet"}.get(ext)


def _obj(rec: dict[str, Any], key: str) -> dict[str, Any]:
    value = rec.get(key)
    return value if isinstance(value, dict) else {}


class _Order:
    """Where the last record of each input is, by its ``line``: the input order.

    ``by_line[line]`` is the record's offset + 2 (0: no record, 1: several inputs claim the
    line, listed in ``extra``); records without a usable line (none, not a number, beyond
    what the file could hold) are in ``extra`` too. 8 bytes a line, whatever the rows hold.
    """

    def __init__(self, lines: int) -> None:
        # Sized for one record a line of the output (lines beyond it grow the index); a
        # line number beyond 4 times that cannot be a line of this job's input.
        self.limit = 4 * lines + 65536
        self.by_line = array.array("Q", bytes(8 * (lines + 2)))
        self.extra: set[int] = set()

    def _direct(self, line: Any) -> bool:
        return type(line) is int and 1 <= line <= self.limit

    def place(self, line: Any, offset: int, gone_line: Any, gone_offset: int) -> None:
        if gone_offset >= 0:
            if self._direct(gone_line) and self.by_line[gone_line] == gone_offset + 2:
                self.by_line[gone_line] = 0
            else:
                self.extra.discard(gone_offset)
        if not self._direct(line):
            self.extra.add(offset)
            return
        if line >= len(self.by_line):
            grow = max(line + 1 - len(self.by_line), len(self.by_line) // 2)
            self.by_line.frombytes(bytes(8 * grow))
        held = self.by_line[line]
        if held == 0:
            self.by_line[line] = offset + 2
        else:
            if held > 1:
                self.extra.add(held - 2)
                self.by_line[line] = 1
            self.extra.add(offset)


def _sort_key(rec: dict[str, Any]) -> tuple[bool, int, str]:
    line = rec.get("line")
    number = line if type(line) is int else None
    return (number is None, number or 0, rec["custom_id"])


def _order(f: IO[bytes]) -> _Order:
    """Where the last record of each input of the job output ``f`` is (one scan).

    The last record of an input is found by its key, as a resume finds it, in a table of
    its own: 12 bytes of key and 6 of offset, about 22.5 bytes an input.
    """
    lines = count_lines(f)
    order = _Order(lines)
    last = DigestTable(6, expected=lines)
    offset = 0
    for raw in f:
        found = read_record(raw)
        if found is not None:
            key, line = found
            old = last.put(key, offset.to_bytes(6, "little"))
            if old is None:
                order.place(line, offset, None, -1)
            else:
                gone = int.from_bytes(old, "little")
                order.place(line, offset, record_line_at(f.fileno(), gone), gone)
        offset += len(raw)
    return order


def _records(f: IO[bytes], order: _Order, path: str) -> Iterator[dict[str, Any]]:
    """The last record of each input, in input order (by ``line``, then ``custom_id``, as a
    resume reads them: the last record of an input wins)."""

    def at(offset: int) -> dict[str, Any]:
        try:
            f.seek(offset)
            raw = f.readline()
        except OSError as exc:
            raise JobIOError(
                f"could not read {path}: {exc.strerror or exc}", path=path, written=0
            ) from exc
        rec: dict[str, Any] = json.loads(raw)
        return rec

    extra = sorted((at(offset) for offset in order.extra), key=_sort_key)
    k = 0
    for line, held in enumerate(order.by_line):
        if not held:
            continue
        while k < len(extra) and _sort_key(extra[k]) < (False, line, ""):
            yield extra[k]
            k += 1
        if held > 1:
            yield at(held - 2)
    yield from extra[k:]


def _row(rec: dict[str, Any]) -> dict[str, Any]:
    response, usage, error = _obj(rec, "response"), _obj(rec, "usage"), _obj(rec, "error")
    metadata = rec.get("metadata")
    return {
        "custom_id": rec["custom_id"],
        "line": rec.get("line"),
        "ok": rec.get("ok") is True,
        "text": response.get("text"),
        "finish_reason": response.get("finish_reason"),
        "model": response.get("model"),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "cost_usd": rec.get("cost_usd"),
        "cached": rec.get("cached") is True,
        "error_type": error.get("type"),
        "error_message": error.get("message"),
        "error_status": error.get("status"),
        "attempts": rec.get("attempts"),
        "latency_s": rec.get("latency_s"),
        "metadata": None if metadata is None else json.dumps(metadata, ensure_ascii=False),
        "request_hash": rec.get("request_hash"),
    }


def export_output(
    jsonl_path: str, out_path: str, *, fmt: str | None = None, neutralise: bool = True
) -> int:
    """Write the job output ``jsonl_path`` to ``out_path`` as CSV or Parquet.

    In a CSV, a text cell (``text``, ``custom_id``, ``error_message``, ``metadata``,
    ``model``, ...) that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    gets a leading ``'`` (``neutralise_cell``), as OWASP recommends against formula
    injection: such a CSV no longer round-trips those cells byte for byte. Numeric columns
    and Parquet are never changed.

    Args:
        jsonl_path: the job's JSONL output.
        out_path: the file to write (replaced atomically).
        fmt: ``"csv"`` or ``"parquet"``; default: from ``out_path``'s extension.
        neutralise: ``False`` writes CSV text cells verbatim (formulas included).

    Returns:
        The rows written (one per input).

    Raises:
        ValueError: the format is unknown, or ``pyarrow`` is missing for Parquet.
        JobIOError: reading or writing failed; the message names the path.
    """
    fmt = fmt or export_format(out_path)
    if fmt not in EXPORT_FORMATS:
        raise ValueError(
            f"cannot export to {out_path}: name it .csv or .parquet (or give the format)"
        )
    pa: Any = None
    pq: Any = None
    if fmt == "parquet":
        try:
            pa = importlib.import_module("pyarrow")
            pq = importlib.import_module("pyarrow.parquet")
        except ImportError:
            raise ValueError(
                "Parquet output needs pyarrow: pip install 'reka-async[parquet]' (or write .csv)"
            ) from None
    try:
        with open(jsonl_path, "rb") as probe:
            order = _order(probe)
        src = open(jsonl_path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise JobIOError(
            f"could not read {jsonl_path}: {exc.strerror or exc}", path=jsonl_path, written=0
        ) from exc
    # Beside the real file (a linked output is written through its link), under a name
    # nobody can predict and plant a link at, with the mode a plain open would give.
    target = real_path(out_path)
    temp = ""
    rows = 0
    try:
        records = _records(src, order, jsonl_path)
        fd, temp = temp_beside(target, "part")
        if fmt == "csv":
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS)
                writer.writeheader()
                for rec in records:
                    row = _row(rec)
                    if neutralise:
                        row = {name: neutralise_cell(value) for name, value in row.items()}
                    writer.writerow(row)
                    rows += 1
        else:
            os.close(fd)
            schema = _schema(pa)
            paj = importlib.import_module("pyarrow.json")
            # Rows reach Arrow as JSON lines parsed in C++: converting Python objects would
            # make pyarrow import pandas (about 50 MB) to check for its types.
            parse = paj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
            read = paj.ReadOptions(use_threads=False, block_size=2 * _PARQUET_BATCH_BYTES)
            # Statistics for the numeric columns only: min/max of answer texts would grow the
            # footer (held in memory until the end) by about 20 bytes a row.
            stats = [f.name for f in schema if not pa.types.is_string(f.type)]
            with pq.ParquetWriter(temp, schema, write_statistics=stats) as parquet:
                for batch in _batches(records):
                    table = paj.read_json(
                        pa.BufferReader(batch), read_options=read, parse_options=parse
                    )
                    parquet.write_table(table)
                    rows += table.num_rows
                if not rows:
                    parquet.write_table(schema.empty_table())
        os.replace(temp, target)
    except OSError as exc:
        raise JobIOError(
            f"could not write {out_path}: {exc.strerror or exc}", path=out_path, written=0
        ) from exc
    finally:
        src.close()
        if temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    return rows


def _batches(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """The rows as JSON lines, in batches of at most ``_PARQUET_BATCH_ROWS`` rows or about
    ``_PARQUET_BATCH_BYTES``, whichever comes first (a row group each)."""
    batch: list[bytes] = []
    size = 0
    for rec in records:
        line = json.dumps(_row(rec)).encode() + b"\n"
        batch.append(line)
        size += len(line)
        if len(batch) >= _PARQUET_BATCH_ROWS or size >= _PARQUET_BATCH_BYTES:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


def _schema(pa: Any) -> Any:
    types = {
        "line": pa.int64(),
        "ok": pa.bool_(),
        "input_tokens": pa.int64(),
        "output_tokens": pa.int64(),
        "cost_usd": pa.float64(),
        "cached": pa.bool_(),
        "error_status": pa.int64(),
        "attempts": pa.int64(),
        "latency_s": pa.float64(),
    }
    return pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])
