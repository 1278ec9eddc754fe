"""``export_output``: a job's JSONL output as CSV or Parquet, one row per input.

The JSONL file stays the job's truth (resume, the lock and compaction work on it); an export
is written from it, beside the final path and renamed over it, so a reader never sees half a
file. Rows follow the input order (by ``line``); the last record of each input wins, as on a
resume. Parquet needs ``pyarrow`` (``pip install 'reka-async[parquet]'``).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import json
import os
from typing import Any, Final

from .._files import real_path, temp_beside
from ._errors import JobIOError

__all__ = [
    "COLUMNS",
    "EXPORT_FORMATS",
    "FORMULA_STARTS",
    "export_format",
    "export_output",
    "neutralise_cell",
]

EXPORT_FORMATS: Final = ("csv", "parquet")

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


def _rows(jsonl_path: str) -> list[dict[str, Any]]:
    last: dict[Any, dict[str, Any]] = {}
    with open(jsonl_path, "rb") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("custom_id"), str):
                continue
            error = _obj(rec, "error")
            key = (
                ("dup", rec.get("line"))
                if error.get("type") == "DuplicateCustomId"
                else rec["custom_id"]
            )
            last[key] = rec
    rows = []
    for rec in last.values():
        response, usage, error = _obj(rec, "response"), _obj(rec, "usage"), _obj(rec, "error")
        metadata = rec.get("metadata")
        rows.append(
            {
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
        )
    rows.sort(key=lambda r: (r["line"] is None, r["line"] or 0, r["custom_id"]))
    return rows


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
        rows = _rows(jsonl_path)
    except OSError as exc:
        raise JobIOError(
            f"could not read {jsonl_path}: {exc.strerror or exc}", path=jsonl_path, written=0
        ) from exc
    # Beside the real file (a linked output is written through its link), under a name
    # nobody can predict and plant a link at, with the mode a plain open would give.
    target = real_path(out_path)
    temp = ""
    try:
        fd, temp = temp_beside(target, "part")
        if fmt == "csv":
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS)
                writer.writeheader()
                for row in rows:
                    if neutralise:
                        row = {name: neutralise_cell(value) for name, value in row.items()}
                    writer.writerow(row)
        else:
            os.close(fd)
            table = pa.Table.from_pylist(rows, schema=_schema(pa))
            pq.write_table(table, temp)
        os.replace(temp, target)
    except OSError as exc:
        raise JobIOError(
            f"could not write {out_path}: {exc.strerror or exc}", path=out_path, written=0
        ) from exc
    finally:
        if temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    return len(rows)


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
