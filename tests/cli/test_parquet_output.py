"""Parquet output in real subprocesses: ``batch -o X.parquet`` and ``export`` read back with
pyarrow. pyarrow is imported at the top, not skipped: it is in the ``test-full`` extra, and
this file is in noxfile.py's ``THIRD_PARTY_TESTS`` (left out only where that extra is not
installed)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from test_commands import run, write_jsonl


def _prompts(path: Path, n: int) -> Path:
    write_jsonl(path, [{"custom_id": f"q{i}", "prompt": f"question {i}"} for i in range(n)])
    return path


def test_a_parquet_output_holds_one_row_per_input(tmp_path: Path) -> None:
    inp, out = _prompts(tmp_path / "p.jsonl", 2), tmp_path / "out.parquet"
    proc = run("batch", str(inp), "-o", str(out), "--mock")
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    assert table.column("custom_id").to_pylist() == ["q0", "q1"]
    assert table.column("text").to_pylist() == [
        "Mock reply to: question 0",
        "Mock reply to: question 1",
    ]
    assert (tmp_path / "out.jsonl").exists()  # the job file beside it: --resume works on it


def test_export_writes_the_same_parquet_as_the_batch(tmp_path: Path) -> None:
    inp, out = _prompts(tmp_path / "p.jsonl", 3), tmp_path / "out.parquet"
    assert run("batch", str(inp), "-o", str(out), "--mock").returncode == 0
    again = tmp_path / "again.parquet"
    proc = run("export", str(tmp_path / "out.jsonl"), str(again))
    assert proc.returncode == 0, proc.stderr
    assert pq.read_table(again).to_pylist() == pq.read_table(out).to_pylist()
