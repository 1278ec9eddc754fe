"""``batch --max-error-rate R`` in a real subprocess: a run against an endpoint that fails
stops with exit 3 and the line that continues it; bad input lines do not count."""

from __future__ import annotations

from pathlib import Path

from test_commands import records, run, write_jsonl

FAIL = "[[fault:500]] please"  # the mock answers 500 to a prompt holding this directive


def test_a_run_that_mostly_fails_stops_with_exit_3_and_says_how_to_continue(
    tmp_path: Path,
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [{"custom_id": f"q{i}", "prompt": FAIL} for i in range(120)])
    proc = run(
        "batch", str(inp), "-o", str(out), "--mock", "--concurrency", "1", "--max-retries",
        "0", "--max-error-rate", "0.5", "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "100 of the last 100 items failed" in proc.stderr
    last = proc.stderr.splitlines()[-1]  # issue 28's one "to continue" line, with its advice
    assert last.startswith("reka-async: to continue: look at the failures"), last
    assert "reka-async batch" in last
    assert "--resume" in last
    assert "--retry-failed" in last  # the failures it stopped for are sent again
    assert len(records(out)) == 100  # the other 20 were not sent
    again = run("batch", str(inp), "-o", str(out), "--mock", "--resume", "--no-progress")
    assert again.returncode == 1, again.stderr  # finished: every input failed
    assert len(records(out)) == 120


def test_bad_input_lines_do_not_count(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, ["{not json"] * 150 + [{"prompt": f"q{i}"} for i in range(20)])
    proc = run(
        "batch", str(inp), "-o", str(out), "--mock", "--max-error-rate", "0", "--no-progress"
    )
    assert proc.returncode == 1, proc.stderr  # the bad lines failed; nothing stopped the run
    assert sum(r["ok"] for r in records(out)) == 20


def test_a_rate_of_1_or_more_is_a_usage_error(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"prompt": "q"}])
    proc = run(
        "batch", str(inp), "-o", str(tmp_path / "o.jsonl"), "--mock", "--max-error-rate", "1"
    )
    assert proc.returncode == 2
    assert "expected a share from 0 to below 1" in proc.stderr
