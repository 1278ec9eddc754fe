"""The "to continue" line: one function writes it for every way a run stops, and the command
it prints completes the job (``--retry-failed`` where items failed for a reason to fix)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from test_commands import env_without_key, records, run, write_jsonl

from reka_async.cli._exit import ExitCode, StopReason, continue_line
from reka_async.testing import Billing, MockRekaServer

ARGV = ["--api-key", "sk-secret", "batch", "in.jsonl", "-o", "out.jsonl", "--overwrite"]


@pytest.mark.parametrize(
    ("reason", "advice", "status"),
    [
        (StopReason.BUDGET, "raise --max-cost", ExitCode.STOPPED),
        (StopReason.BOUND_EXCEEDED, "--message-overhead", ExitCode.STOPPED),
        (StopReason.BREAKER, "fix what the error says", ExitCode.STOPPED),
        (StopReason.ERROR_RATE, "--max-error-rate", ExitCode.STOPPED),
        (StopReason.INTERRUPTED, "to continue: reka-async", ExitCode.SIGINT),
        (StopReason.TERMINATED, "to continue: reka-async", ExitCode.SIGTERM),
    ],
)
def test_each_stop_has_its_advice_status_and_a_command_without_the_key(
    reason: StopReason, advice: str, status: ExitCode
) -> None:
    line = continue_line(reason, ARGV)
    assert line is not None
    assert advice in line
    assert reason.exit_code is status
    assert "sk-secret" not in line
    assert "--api-key" not in line
    assert "--overwrite" not in line
    # An error-rate stop sends its failures again (those that can change); the others only
    # when a failure is one the user is told to fix.
    again = " --retry-failed" if reason is StopReason.ERROR_RATE else ""
    assert line.endswith(f"reka-async batch in.jsonl -o out.jsonl --resume{again}")
    fixed = continue_line(reason, ARGV, failed_types=["AuthenticationError"])
    assert fixed is not None
    assert fixed.endswith("--resume --retry-failed")
    kept = continue_line(reason, ARGV, failed_types=["BadRequestError"])  # an input error
    assert kept is not None
    assert kept.endswith(f"--resume{again}")


def test_failures_to_fix_get_a_line_and_other_failures_none() -> None:
    assert continue_line(StopReason.FAILED, ARGV, failed_types=["NotFoundError"]) is None
    line = continue_line(StopReason.FAILED, ARGV, failed_types=["UnpricedModelError"])
    assert line is not None
    assert line.endswith("--resume --retry-failed")


def printed_command(stderr: str) -> list[str]:
    line = next(x for x in stderr.splitlines() if "to continue:" in x)
    words = shlex.split(line[line.index("reka-async ") :])
    assert words[0] == "reka-async"
    return words[1:]


def test_after_a_refused_key_the_printed_command_completes_the_job(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"custom_id": f"c{i}", "prompt": f"q {i}"} for i in range(40)]
    rows[39]["prompt"] = "[[fault:401*1]] the last one"
    write_jsonl(inp, rows)
    env = env_without_key(REKA_API_KEY="k")
    with MockRekaServer.in_thread() as server:
        base = ("--base-url", server.base_url)
        first = run(*base, "batch", str(inp), "-o", str(out), "--concurrency", "1", env=env)
        assert first.returncode in (1, 3), first.stderr
        assert "--retry-failed" in first.stderr
        again = run(*printed_command(first.stderr), env=env)
    assert again.returncode == 0, again.stderr
    assert len(records(out)) == 40
    assert all(r["ok"] for r in records(out))


def test_items_refused_for_a_missing_price_are_sent_once_it_is_given(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"custom_id": f"c{i}", "prompt": f"q {i}"} for i in range(6)]
    rows += [{"custom_id": f"u{i}", "prompt": f"q {i}", "model": "reka-core"} for i in range(4)]
    write_jsonl(inp, rows)
    args = ("batch", str(inp), "-o", str(out), "--mock", "--max-cost", "1", "--no-progress")
    first = run(*args)
    assert first.returncode == 1, first.stderr
    refused = [r for r in records(out) if not r["ok"]]
    assert {r["error"]["type"] for r in refused} == {"UnpricedModelError"}
    assert len(refused) == 4
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"reka-core": {"input": 2, "output": 8}}))
    command = printed_command(first.stderr)
    assert command[-2:] == ["--resume", "--retry-failed"]
    again = run(*command, "--prices", str(prices))
    assert again.returncode == 0, again.stderr
    final = {r["custom_id"]: r for r in records(out)}
    assert len(final) == 10
    assert all(r["ok"] for r in final.values())


def test_a_spent_budget_says_to_raise_it_and_how_much_the_job_spent(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [{"custom_id": f"c{i}", "prompt": f"q {i}"} for i in range(100)])
    args = ("batch", str(inp), "-o", str(out), "--mock", "--max-tokens", "100", "--no-progress")
    proc = run(*args, "--max-cost", "0.0003", "--concurrency", "1")
    assert proc.returncode == 3, proc.stderr
    assert "to continue: raise --max-cost" in proc.stderr
    assert "budget: the job has spent $0.00" in proc.stderr


def test_usage_above_the_bound_stops_with_exit_3_naming_the_setting(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [{"custom_id": f"c{i}", "prompt": f"q {i}"} for i in range(50)])
    env = env_without_key(REKA_API_KEY="k")
    with MockRekaServer.in_thread(billing=Billing(message_overhead=60)) as server:
        proc = run(
            "--base-url", server.base_url, "batch", str(inp), "-o", str(out),
            "--max-cost", "0.05", "--max-tokens", "20", "--concurrency", "2", env=env,
        )  # fmt: skip
        sent = len(server.requests)
    assert proc.returncode == 3, proc.stderr
    assert "UsageAboveBound" in proc.stderr or "billed above the bound" in proc.stderr
    assert "--message-overhead" in proc.stderr
    assert sent <= 2 + 1  # the /models listing, and the two in flight
