"""Ray batches to batch items, and results to the output table (`OUTPUT_COLUMNS`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ..._exceptions import InvalidRequestError
from ...batch import BatchResult
from ...jobs import record

__all__ = [
    "OUTPUT_COLUMNS",
    "Row",
    "batch_columns",
    "input_table",
    "parse_rows",
    "plain",
    "results_table",
]

OUTPUT_COLUMNS: Final[tuple[str, ...]] = (
    "custom_id",
    "text",
    "error_type",
    "error_message",
    "input_tokens",
    "output_tokens",
    "latency_s",
    "attempts",
    "ok",
)
"""The columns `RekaChatMapper` returns (plus ``record`` with ``include_record=True``)."""


@attrs.frozen
class Row:
    """One input row: its item (or why it has none), custom_id and input line number."""

    item: dict[str, Any] | None
    error: InvalidRequestError | None
    custom_id: str | None
    line: int | None


def plain(value: Any) -> Any:
    """numpy/arrow values as plain Python; ``None`` fields of dicts (arrow structs) dropped."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return plain(tolist())
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def batch_columns(batch: Any) -> dict[str, list[Any]]:
    """The batch as ``{column: values}``: dict of numpy arrays, pyarrow Table or DataFrame."""
    if isinstance(batch, Mapping):
        return {str(k): list(v) for k, v in batch.items()}
    to_pydict = getattr(batch, "to_pydict", None)  # pyarrow.Table
    if callable(to_pydict):
        columns: dict[str, list[Any]] = to_pydict()
        return columns
    to_dict = getattr(batch, "to_dict", None)  # pandas.DataFrame
    if callable(to_dict):
        return {str(k): list(v) for k, v in to_dict("list").items()}
    raise TypeError(
        f"RekaChatMapper: unsupported batch type {type(batch).__name__}; use "
        f"batch_format='pyarrow', 'numpy' or 'pandas'"
    )


def _json_value(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise InvalidRequestError(f"{name}: invalid JSON: {exc}") from None
    return plain(value)


def _row_item(columns: Mapping[str, list[Any]], i: int) -> tuple[dict[str, Any], str | None]:
    """One row's batch item (in the ``reka-async batch`` line format) and its custom_id."""
    cid_value = columns["custom_id"][i] if "custom_id" in columns else None
    custom_id = None if _missing(cid_value) else str(plain(cid_value))
    request = columns["request"][i] if "request" in columns else None
    messages = columns["messages"][i] if "messages" in columns else None
    prompt = columns["prompt"][i] if "prompt" in columns else None
    item: dict[str, Any]
    if not _missing(request):
        parsed = _json_value(request, "request")
        if not isinstance(parsed, dict):
            raise InvalidRequestError(
                f"request: expected a JSON object, got {type(parsed).__name__}"
            )
        item = parsed
        if isinstance(item.get("messages"), str):
            item["messages"] = _json_value(item["messages"], "messages")
        if custom_id is None and item.get("custom_id") is not None:
            custom_id = str(item["custom_id"])
    elif not _missing(messages):
        item = {"messages": _json_value(messages, "messages")}
    elif not _missing(prompt):
        prompt = plain(prompt)
        if not isinstance(prompt, str):
            raise InvalidRequestError(f"prompt: must be a string, got {type(prompt).__name__}")
        item = {"prompt": prompt}
    else:
        raise InvalidRequestError("the row has no 'prompt', 'messages' or 'request' value")
    if custom_id is not None:
        item["custom_id"] = custom_id
    return item, custom_id


def parse_rows(columns: Mapping[str, list[Any]]) -> list[Row]:
    if not {"prompt", "messages", "request"} & columns.keys():
        raise ValueError(
            "RekaChatMapper needs a 'prompt' column (strings), a 'messages' column (lists "
            "of messages or their JSON) or a 'request' column (JSON objects in the "
            f"'reka-async batch' line format); got columns {sorted(columns)}"
        )
    n = len(next(iter(columns.values())))
    rows: list[Row] = []
    for i in range(n):
        line_value = columns["line"][i] if "line" in columns else None
        line = None if _missing(line_value) else int(plain(line_value))
        try:
            item, custom_id = _row_item(columns, i)
        except InvalidRequestError as exc:
            cid = columns["custom_id"][i] if "custom_id" in columns else None
            rows.append(Row(None, exc, None if _missing(cid) else str(plain(cid)), line))
        else:
            rows.append(Row(item, None, custom_id, line))
    return rows


# --------------------------------------------------------------------------- output


def _schema(pa: Any, include_record: bool) -> Any:
    fields = [
        ("custom_id", pa.string()),
        ("text", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("latency_s", pa.float64()),
        ("attempts", pa.int64()),
        ("ok", pa.bool_()),
    ]
    if include_record:
        fields.append(("record", pa.string()))
    return pa.schema(fields)


def results_table(
    pa: Any, results: Sequence[BatchResult], rows: Sequence[Row], include_record: bool
) -> Any:
    data: dict[str, list[Any]] = {name: [] for name in OUTPUT_COLUMNS}
    records: list[str] = []
    for result, row in zip(results, rows, strict=True):
        response, error = result.response, result.error
        data["custom_id"].append(row.custom_id)
        data["text"].append(response.text if response is not None else None)
        data["error_type"].append(type(error).__name__ if response is None else None)
        data["error_message"].append(str(error) if response is None else None)
        data["input_tokens"].append(response.usage.input_tokens if response else None)
        data["output_tokens"].append(response.usage.output_tokens if response else None)
        data["latency_s"].append(result.latency_s)
        data["attempts"].append(result.attempts)
        data["ok"].append(result.ok)
        if include_record:
            line_record = record(result, row.line)  # the job format's own output record
            line_record["custom_id"] = row.custom_id
            records.append(json.dumps(line_record, ensure_ascii=False))
    if include_record:
        data["record"] = records
    return pa.table(data, schema=_schema(pa, include_record))


def input_table(pa: Any, batch: Any, columns: Mapping[str, list[Any]]) -> Any:
    if hasattr(batch, "column_names") and hasattr(batch, "append_column"):
        return batch
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):
        return pa.Table.from_pandas(batch, preserve_index=False)
    return pa.table({name: pa.array([plain(v) for v in vals]) for name, vals in columns.items()})
