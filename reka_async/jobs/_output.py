"""The output of a job: one JSON record per result, appended as each result arrives."""

from __future__ import annotations

import contextlib
import json
import math
import os
from typing import Any

from .._wire import converter
from ..batch import BatchResult
from ._errors import JobIOError

__all__ = ["Writer", "record"]


def record(
    result: BatchResult,
    line: int | None,
    request_hash: str | None = None,
    input_hash: str | None = None,
) -> dict[str, Any]:
    """The output record of one result.

    Args:
        result: the result.
        line: its 1-based input line, if known.
        request_hash: the identity of its request (``_wire.hashing.request_hash``, or the
            input line's hash when it never became a request), stored so that a resume can
            tell when the input changed.
        input_hash: the hash of its input line's bytes and the job's options
            (``_input.input_hasher``): what a resume compares first, without building the
            request again.
    """
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
    if result.cached:
        out["cached"] = True
    if result.response is not None:
        out["cost_usd"] = None if result.cost_usd is None else round(result.cost_usd, 8)
    if result.charged_usd is not None:
        # Rounded up: a resumed budget that adds these up must never count less than this.
        out["charged_usd"] = math.ceil(result.charged_usd * 1e8) / 1e8
    if result.metadata is not None:
        out["metadata"] = result.metadata
    if request_hash is not None:
        out["request_hash"] = request_hash
    if input_hash is not None:
        out["input_hash"] = input_hash
    return out


class Writer:
    """Appends one JSON line per result with a single ``write`` each, unbuffered.

    ``written`` counts the records that reached the file whole. A failed write (a full
    disk) raises ``JobIOError`` naming the path, after cutting off the partial line it may
    have left, so the file stays a sequence of whole records.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.written = 0
        try:
            self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise _io_error(path, "open", exc, 0) from exc

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one JSON line."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        start = self._file.tell()
        try:
            while view:
                written = self._file.write(view)
                view = view[written or 0 :]
        except OSError as exc:
            with contextlib.suppress(OSError):  # else the resume cuts the torn line
                os.truncate(self.path, start)
            raise _io_error(self.path, "write to", exc, self.written) from exc
        self.written += 1

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _io_error(path: str, verb: str, exc: OSError, written: int) -> JobIOError:
    return JobIOError(
        f"could not {verb} {path}: {exc.strerror or exc} ({written} record(s) written)",
        path=path,
        written=written,
    )
