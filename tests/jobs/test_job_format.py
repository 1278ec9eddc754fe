"""The JSONL job format (``reka_async.jobs``) and ``BatchRunner(prepare=...)``, without a CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reka_async import AsyncClient, BatchResult, BatchRunner, InvalidRequestError
from reka_async.batch import prepare_item
from reka_async.jobs import (
    BadLine,
    DuplicateCustomId,
    Entry,
    InvalidInputLine,
    JobInput,
    Writer,
    line_preparer,
    prepare_line,
    record,
    scan_output,
    start_output,
)

BASE = "https://api.example.test/v1"


# --------------------------------------------------------------------------- prepare


def test_the_default_prepare_is_prepare_item() -> None:
    runner = BatchRunner(AsyncClient("k", BASE), model="reka-core", max_tokens=7)
    item = {"custom_id": "a", "prompt": "hi", "temperature": 0}
    expected = prepare_item(item, 3, model="reka-core", params={"max_tokens": 7})
    assert runner.prepare(3, item) == expected
    assert expected[0] == "a"
    assert expected[1]["max_tokens"] == 7


def test_a_passed_prepare_replaces_the_default() -> None:
    calls: list[tuple[int, Any]] = []

    def prepare(index: int, item: Any) -> tuple[str, dict[str, Any]]:
        calls.append((index, item))
        return "mine", {"model": "m", "messages": [{"role": "user", "content": "x"}]}

    runner = BatchRunner(AsyncClient("k", BASE), prepare=prepare)
    custom_id, body = runner.prepare(5, "anything")
    assert (custom_id, body["model"]) == ("mine", "m")
    assert calls == [(5, "anything")]


async def test_a_prepare_error_is_the_item_result_and_nothing_is_sent() -> None:
    def prepare(index: int, item: Any) -> tuple[str, dict[str, Any]]:
        raise InvalidRequestError(f"no {index}")

    async with AsyncClient("k", BASE) as client:
        results = await BatchRunner(client, prepare=prepare).run(["a", "b"])
    assert [str(r.error) for r in results] == ["no 0", "no 1"]
    assert all(r.request is None for r in results)


def test_prepare_line_names_the_line() -> None:
    with pytest.raises(InvalidInputLine, match=r"^line 4: item needs"):
        prepare_line({"custom_id": "x"}, 0, 4, model="reka-flash", params={})


def test_prepare_line_without_a_line_keeps_the_error() -> None:
    with pytest.raises(InvalidRequestError, match=r"^item needs") as info:
        prepare_line({"custom_id": "x"}, 0, None, model="reka-flash", params={})
    assert not isinstance(info.value, InvalidInputLine)


def test_prepare_line_raises_a_bad_lines_stored_error() -> None:
    error = InvalidInputLine("line 2: invalid JSON")
    with pytest.raises(InvalidInputLine) as info:
        prepare_line(BadLine("line-2", error), 0, 2, model="reka-flash", params={})
    assert info.value is error


def test_line_preparer_reads_the_line_at_call_time() -> None:
    line_of: dict[int, int] = {}
    prepare = line_preparer(line_of, model="reka-flash", params={})
    line_of[0] = 9
    with pytest.raises(InvalidInputLine, match=r"^line 9: "):
        prepare(0, {"prompt": 3})


# --------------------------------------------------------------------------- input


async def test_items_skip_blank_lines_name_duplicates_and_skip_resumed(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [
        {"custom_id": "a", "prompt": "1"},
        {"custom_id": "done", "prompt": "2"},
        {"custom_id": "a", "prompt": "3"},
        {"prompt": "4"},
    ]
    path.write_text(
        "\n".join(json.dumps(x) for x in lines[:2])
        + "\n\n"
        + "\n".join(json.dumps(x) for x in lines[2:])
    )
    done = tmp_path / "out.jsonl"
    done.write_text(json.dumps({"custom_id": "done", "line": 2, "ok": True}) + "\n")
    source = JobInput(scan_output(str(done)))
    fd = os.open(path, os.O_RDONLY)
    try:
        items = [item async for item in source.items(fd)]
    finally:
        os.close(fd)
    assert [item["custom_id"] for item in items] == ["a", "a", "line-5"]
    assert isinstance(items[1], BadLine)
    assert isinstance(items[1].error, DuplicateCustomId)
    assert source.line_of == {0: 1, 1: 4, 2: 5}
    assert (source.skipped, source.skipped_failed) == (1, 0)


# --------------------------------------------------------------------------- output & resume


def test_records_are_appended_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    result = BatchResult(index=0, custom_id="a", request=None, error=InvalidInputLine("bad"))
    writer = Writer(str(path))
    try:
        writer.write(record(result, 3))
        writer.write(record(result, 4))
    finally:
        writer.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["line"] for r in rows] == [3, 4]
    assert rows[0]["error"]["type"] == "InvalidInputLine"
    assert rows[0]["ok"] is False


def test_scan_output_cuts_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    good = [
        {"custom_id": "a", "line": 1, "ok": True},
        {"custom_id": "b", "line": 2, "ok": False, "error": {"type": "DuplicateCustomId"}},
    ]
    text = "".join(json.dumps(r) + "\n" for r in good)
    path.write_text(text + "not json\n" + json.dumps(["foreign"]) + "\n" + '{"custom_id": "c"')
    resumed = scan_output(str(path))
    # A duplicate's error line is keyed by its line: it never marks its custom_id done.
    assert resumed.get("a") == Entry(ok=True, retryable=False, request_digest=None, offset=0)
    assert (resumed.get("b"), resumed.has_dup_line(2), resumed.failed_count) == (None, True, 1)
    assert (resumed.records, resumed.torn_removed, resumed.unreadable) == (2, True, 2)
    assert path.read_text().endswith(json.dumps(["foreign"]) + "\n")


def test_start_output_refuses_a_non_empty_output(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    assert start_output(str(path), resume=False, overwrite=False) is None
    path.write_text(json.dumps({"custom_id": "a", "ok": True}) + "\n")
    with pytest.raises(FileExistsError):
        start_output(str(path), resume=False, overwrite=False)
    resumed = start_output(str(path), resume=True, overwrite=False)
    assert resumed is not None
    assert (resumed.ok_count, resumed.failed_count) == (1, 0)
    assert resumed.get("a") is not None
    assert start_output(str(path), resume=False, overwrite=True) is None
    assert path.read_text() == ""
