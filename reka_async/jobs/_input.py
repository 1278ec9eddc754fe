"""Input lines to batch items: parsing, line numbers, duplicate custom_ids, resume skips."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

from .._exceptions import InvalidRequestError
from ..batch import prepare_item
from ._errors import DuplicateCustomId, InvalidInputLine
from ._read import read_lines
from ._resume import Resumed

__all__ = [
    "BadLine",
    "JobInput",
    "line_preparer",
    "prepare_line",
]


class BadLine(dict[str, Any]):
    """An input line that cannot become a request; `prepare_line` raises its error."""

    def __init__(self, custom_id: str, error: InvalidRequestError) -> None:
        super().__init__(custom_id=custom_id)
        self.error = error


def prepare_line(
    item: Any, index: int, line: int | None, *, model: str, params: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """``prepare_item`` for an input line: its errors become ``InvalidInputLine`` with the line.

    Args:
        item: the batch item (a `BadLine` raises its stored error).
        index: the item's ``BatchResult.index``.
        line: its 1-based input line number; ``None`` leaves the error as it is.
        model, params: as in ``prepare_item``.

    Raises:
        InvalidRequestError: the item cannot become a request.
    """
    if isinstance(item, BadLine):
        raise item.error
    try:
        return prepare_item(item, index, model=model, params=params)
    except InvalidRequestError as exc:
        if line is None:
            raise
        raise InvalidInputLine(f"line {line}: {exc}") from exc


def line_preparer(
    line_of: Mapping[int, int], *, model: str, params: Mapping[str, Any]
) -> Callable[[int, Any], tuple[str, dict[str, Any]]]:
    """A ``BatchRunner(prepare=...)`` callable: `prepare_line` with the line from ``line_of``."""

    def prepare(index: int, item: Any) -> tuple[str, dict[str, Any]]:
        return prepare_line(item, index, line_of.get(index), model=model, params=params)

    return prepare


class JobInput:
    """Turns input lines into batch items, tracking line numbers, duplicates and resume skips.

    Items are numbered in the order the runner pulls them, which is the ``BatchResult.index``;
    ``line_of`` maps that index to the input line number until the result is written.

    Args:
        resumed: what an existing output already holds (`scan_output`), or ``None``.
    """

    def __init__(self, resumed: Resumed | None = None) -> None:
        self.resumed = resumed if resumed is not None else Resumed()
        self.seen: set[str] = set()
        self.line_of: dict[int, int] = {}
        self.skipped = 0
        self.skipped_failed = 0
        self.sent = 0
        self.plain_text: bool | None = None

    async def items(self, fd: int) -> AsyncGenerator[dict[str, Any], None]:
        """Yield the items to send, from the lines of file descriptor ``fd``."""
        done = self.resumed
        lineno = 0
        async with contextlib.aclosing(read_lines(fd)) as chunks:
            async for lines in chunks:
                for raw in lines:
                    lineno += 1
                    item = self.parse(raw, lineno)
                    if item is None:
                        continue
                    custom_id = str(item["custom_id"])
                    if custom_id in self.seen:
                        if lineno in done.dup_lines:
                            self.skipped += 1
                            self.skipped_failed += 1
                            continue
                        item = BadLine(
                            custom_id,
                            DuplicateCustomId(
                                f"line {lineno}: duplicate custom_id {custom_id!r} (an earlier "
                                f"line of the input uses it); this line was not sent"
                            ),
                        )
                    else:
                        self.seen.add(custom_id)
                        if custom_id in done.ok or custom_id in done.failed:
                            self.skipped += 1
                            if custom_id in done.failed:
                                self.skipped_failed += 1
                            continue
                    self.line_of[self.sent] = lineno
                    self.sent += 1
                    yield item

    def parse(self, raw: bytes, lineno: int) -> dict[str, Any] | None:
        """The item of one line, a `BadLine`, or ``None`` for a blank line."""
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        auto_id = f"line-{lineno}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not raw.strip():
                return None
            return BadLine(auto_id, InvalidInputLine(f"line {lineno}: not valid UTF-8 ({exc})"))
        if not text.strip():
            return None
        if self.plain_text is None:
            self.plain_text = not text.lstrip().startswith("{")
        if self.plain_text:
            return {"custom_id": auto_id, "prompt": text}
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return BadLine(auto_id, InvalidInputLine(f"line {lineno}: invalid JSON: {exc}"))
        if not isinstance(obj, dict):
            return BadLine(
                auto_id,
                InvalidInputLine(
                    f"line {lineno}: expected a JSON object, got {type(obj).__name__}"
                ),
            )
        custom_id = obj.get("custom_id")
        if custom_id is None:
            obj["custom_id"] = auto_id
        elif isinstance(custom_id, bool) or not isinstance(custom_id, (str, int)):
            return BadLine(
                auto_id,
                InvalidInputLine(
                    f"line {lineno}: custom_id must be a string, got {type(custom_id).__name__}"
                ),
            )
        elif custom_id == "":
            return BadLine(auto_id, InvalidInputLine(f"line {lineno}: custom_id is empty"))
        else:
            obj["custom_id"] = str(custom_id)
        return obj
