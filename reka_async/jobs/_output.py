"""The output of a job: one JSON record per result, appended as each result arrives."""

from __future__ import annotations

import json
from typing import Any

from .._wire import converter
from ..batch import BatchResult

__all__ = ["Writer", "record"]


def record(result: BatchResult, line: int | None) -> dict[str, Any]:
    """The output record of one result (``line``: its 1-based input line, if known)."""
    out: dict[str, Any] = {"custom_id": result.custom_id, "line": line, "ok": result.ok}
    response = result.response
    if response is not None:
        out["response"] = {
            "id": response.id,
            "model": response.model,
            "text": response.text,
            "finish_reason": response.finish_reason,
            "responses": converter.unstructure(response.responses),
        }
        out["usage"] = {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
        }
    else:
        error = result.error
        out["error"] = {
            "type": type(error).__name__,
            "message": str(error),
            "status": getattr(error, "status_code", None),
            "request_id": getattr(error, "request_id", None),
        }
    out["latency_s"] = round(result.latency_s, 4)
    out["attempts"] = result.attempts
    return out


class Writer:
    """Appends one JSON line per result with a single ``write`` each, unbuffered."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one JSON line."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written or 0 :]

    def close(self) -> None:
        """Close the file."""
        self._file.close()
