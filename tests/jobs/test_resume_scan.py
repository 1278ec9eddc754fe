"""The resume scan against the plain reading of each record: the fast read of a record's head
and tail, superseded records taken back from the totals, a scan continued after another, and
the export's input order."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reka_async.jobs import JobInput, export_output, retryable_failure, scan_output
from reka_async.jobs._resume import _decoded, _read
from reka_async.jobs._spend import record_spend

_text = st.lists(
    st.sampled_from(['"', "\\", "{", "}", ",", " ", ":", "a", "é", "\n", "\u2028"])
    | st.sampled_from([', "usage": {"input_tokens": 1', '"request_hash": "x"}', "}\n"]),
    max_size=12,
).map("".join)


def _ok_record(custom_id: str, line: int | None, text: str, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "custom_id": custom_id,
        "line": line,
        "ok": True,
        "response": {"id": "r", "model": "m", "text": text, "finish_reason": "stop"},
        "usage": {"input_tokens": 3, "output_tokens": 4},
        "latency_s": 0.01,
        "attempts": 1,
    }
    rec.update(extra)
    return rec


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    custom_id=_text.filter(bool),
    line=st.none() | st.integers(min_value=1, max_value=10**6),
    text=_text,
    cached=st.booleans(),
    cost=st.none() | st.floats(min_value=0, max_value=1, allow_nan=False),
    charged=st.none() | st.floats(min_value=0, max_value=1, allow_nan=False),
    digest=st.none() | _text,
    metadata=st.none() | st.dictionaries(_text, _text, max_size=2),
    ascii_only=st.booleans(),
)
def test_the_fast_read_of_a_record_equals_its_full_decoding(
    custom_id: str,
    line: int | None,
    text: str,
    cached: bool,
    cost: float | None,
    charged: float | None,
    digest: str | None,
    metadata: dict[str, str] | None,
    ascii_only: bool,
) -> None:
    extra: dict[str, Any] = {}
    if cached:
        extra["cached"] = True
    extra["cost_usd"] = cost
    if charged is not None:  # what a budget charged it (issue 28), written after cost_usd
        extra["charged_usd"] = charged
    if metadata is not None:
        extra["metadata"] = metadata
    if digest is not None:
        extra["request_hash"] = digest
    rec = _ok_record(custom_id, line, text, **extra)
    raw = (json.dumps(rec, ensure_ascii=ascii_only) + "\n").encode()
    assert _read(raw) == _decoded(json.loads(raw))
    assert _read(raw).spend == record_spend(json.loads(raw))  # type: ignore[union-attr]


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _expected_totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals as the plain reading of every record gives them (last record wins)."""
    last: dict[Any, dict[str, Any]] = {}
    for rec in records:
        error = rec.get("error") or {}
        dup = error.get("type") == "DuplicateCustomId"
        last[("dup", rec.get("line")) if dup else rec["custom_id"]] = rec
    final = list(last.values())
    billed = [r for r in final if r["ok"] and not r.get("cached")]
    errors: dict[str, int] = {}
    for r in final:
        if not r["ok"]:
            errors[r["error"]["type"]] = errors.get(r["error"]["type"], 0) + 1
    return {
        "ok": sum(r["ok"] for r in final),
        "failed": sum(not r["ok"] for r in final),
        "errors": errors,
        "input_tokens": sum(r["usage"]["input_tokens"] for r in billed),
        "output_tokens": sum(r["usage"]["output_tokens"] for r in billed),
        "cost_usd_known": round(sum(r.get("cost_usd") or 0 for r in billed), 6),
        "cached": sum(bool(r["ok"] and r.get("cached")) for r in final),
        "spent_usd": round(sum(r.get("cost_usd") or 0 for r in records), 6),
    }


def _failure(custom_id: str, line: int, kind: str, status: int | None) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "line": line,
        "ok": False,
        "error": {"type": kind, "message": "m", "status": status, "request_id": None},
        "latency_s": 0.0,
        "attempts": 1,
        "request_hash": f"sha256:{line:032x}",
    }


def _mixed_records(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for i in range(300):
        cid = f"id-{rng.randrange(120)}"
        line = int(cid[3:]) + 1
        kind = rng.random()
        if kind < 0.2:
            records.append(_failure(cid, line, "RateLimitError", 429))
        elif kind < 0.3:
            records.append(_failure(cid, 500 + i, "DuplicateCustomId", None))
        else:
            records.append(
                _ok_record(
                    cid,
                    line,
                    f"answer {i}",
                    cached=rng.random() < 0.2,
                    cost_usd=round(rng.random() / 1000, 8),
                    request_hash=f"sha256:{i:032x}",
                )
            )
    return records


def test_superseded_records_are_taken_back_from_the_totals(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    for seed in range(5):
        records = _mixed_records(seed)
        _write(path, records)
        totals = scan_output(str(path)).totals()
        expected = _expected_totals(records)
        assert {k: totals[k] for k in expected} == expected
        resumed = scan_output(str(path))
        last = {r["custom_id"]: r for r in records if not _is_dup(r)}
        for cid, rec in last.items():
            entry = resumed.get(cid)
            assert entry is not None
            assert entry.ok is rec["ok"]
            assert entry.retryable is (not rec["ok"] and retryable_failure(rec.get("error")))


def _is_dup(rec: dict[str, Any]) -> bool:
    return (rec.get("error") or {}).get("type") == "DuplicateCustomId"


def test_a_scan_after_another_adds_only_the_records_appended_since(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    records = _mixed_records(7)
    _write(path, records[:150])
    first = scan_output(str(path))
    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records[150:]))
    later = scan_output(str(path), after=first.fork())
    whole = scan_output(str(path))
    assert later.totals() == whole.totals()
    assert (later.records, later.superseded) == (whole.records, whole.superseded)
    assert first.records == 150  # the fork kept the first scan's counts


def _old_export_order(records: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The order the export had when it sorted every row in memory."""
    last: dict[Any, dict[str, Any]] = {}
    for rec in records:
        last[("dup", rec.get("line")) if _is_dup(rec) else rec["custom_id"]] = rec
    rows = sorted(
        last.values(),
        key=lambda r: (r["line"] is None, r["line"] or 0, r["custom_id"]),
    )
    return [(r["custom_id"], r["line"]) for r in rows]


def test_the_streamed_export_keeps_the_input_order(tmp_path: Path) -> None:
    records = _mixed_records(3)
    records += [
        _ok_record("no-line", None, "x"),
        _ok_record("b-same-line", 5, "y"),  # two inputs that claim one line (an edited input)
        _ok_record("a-same-line", 5, "z"),
        _ok_record("far", 10**9, "w"),
        _ok_record("zero", 0, "v"),
    ]
    random.Random(1).shuffle(records)
    path = tmp_path / "out.jsonl"
    _write(path, records)
    out = tmp_path / "out.csv"
    rows = export_output(str(path), str(out))
    with out.open(newline="") as f:
        got = [(r["custom_id"], int(r["line"]) if r["line"] else None) for r in csv.DictReader(f)]
    assert got == _old_export_order(records)
    assert rows == len(got)


def test_a_read_that_adopts_a_check_sends_what_a_plain_read_sends(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    _write(
        out,
        [
            _ok_record("done", 1, "a"),
            _failure("flaky", 2, "RateLimitError", 429),
            _failure("bad", 3, "BadRequestError", 400),
            _failure("dup", 6, "DuplicateCustomId", None),
        ],
    )
    lines = [
        {"custom_id": "done", "prompt": "1"},
        {"custom_id": "flaky", "prompt": "2"},
        {"custom_id": "bad", "prompt": "3"},
        {"custom_id": "new", "prompt": "4"},
        {"custom_id": "done", "prompt": "5"},  # a duplicate of an answered input
        {"custom_id": "new", "prompt": "6"},  # a duplicate whose error line is written
        {"custom_id": "new", "prompt": "7"},  # a duplicate not written yet
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "\nnot json\n")

    def read(source: JobInput, *, check: bool = False) -> list[tuple[str, str]]:
        async def go() -> list[tuple[str, str]]:
            fd = os.open(path, os.O_RDONLY)
            try:
                if check:
                    await source.check(fd)
                    return []
                return [
                    (str(item["custom_id"]), type(item).__name__) async for item in source.items(fd)
                ]
            finally:
                os.close(fd)

        return asyncio.run(go())

    plain = JobInput(scan_output(str(out)), retry_failed=True)
    expected = read(plain)
    checker = JobInput(scan_output(str(out)), retry_failed=True)
    read(checker, check=True)
    planned = JobInput(scan_output(str(out)), retry_failed=True)
    planned.adopt(checker)
    assert read(planned) == expected
    assert [name for _, name in expected].count("BadLine") == 3  # two duplicates, one bad line
    assert (planned.skipped, planned.retried) == (plain.skipped, plain.retried) == (3, 1)
    assert planned.line_of == plain.line_of
