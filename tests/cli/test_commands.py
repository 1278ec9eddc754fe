"""Tests of the ``reka-async`` command line, run as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from reka_async.testing import MockServerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "prompts.jsonl"
TIMEOUT = 60


def env_without_key(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REKA_API_KEY", "REKA_BASE_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reka_async", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env if env is not None else env_without_key(),
        cwd=ROOT,
    )


def records(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_jsonl(path: Path, rows: Sequence[Any]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "reka-async: error:" in proc.stderr


# --------------------------------------------------------------------------- help & usage


@pytest.mark.parametrize("command", [[], ["chat"], ["batch"], ["models"], ["mock-server"]])
def test_help(command: list[str]) -> None:
    proc = run(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: reka-async")
    assert "examples:" in proc.stdout


def test_batch_help_documents_formats_and_exit_codes() -> None:
    out = run("batch", "--help").stdout
    for needle in ("custom_id", "line-N", "DuplicateCustomId", "--resume", "exit status", "2"):
        assert needle in out


def test_usage_errors_are_one_line() -> None:
    proc = run("chat")
    assert_clean_error(proc)
    assert "prompt" in proc.stderr
    proc = run("chat", "--mock", "--bogus", "x")
    assert_clean_error(proc)
    assert "--bogus" in proc.stderr
    proc = run("batch", "in.jsonl", "-o", "out.jsonl", "--concurrency", "0")
    assert_clean_error(proc)
    assert run().returncode == 2


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    proc = run("chat", "hi")
    assert_clean_error(proc)
    assert "REKA_API_KEY" in proc.stderr
    write_jsonl(tmp_path / "in.jsonl", [{"prompt": "x"}])
    out = tmp_path / "out.jsonl"
    proc = run("batch", str(tmp_path / "in.jsonl"), "-o", str(out))
    assert_clean_error(proc)
    assert "REKA_API_KEY" in proc.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- chat & models


def test_chat_mock() -> None:
    proc = run("chat", "--mock", "hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Mock reply to: hi\n"


def test_chat_mock_stream_system_and_stdin() -> None:
    proc = run("chat", "--mock", "--stream", "--system", "be brief", "tell me a story")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Mock reply to: tell me a story\n"
    proc = run("chat", "--mock", "--max-tokens", "3", "-", stdin="from stdin")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Mock reply to:\n"


def test_chat_api_error_exit_1() -> None:
    proc = run("chat", "--mock", "--max-retries", "0", "[[fault:500]]")
    assert_clean_error(proc, code=1)
    assert "InternalServerError" in proc.stderr


def test_models_mock() -> None:
    proc = run("models", "--mock")
    assert proc.returncode == 0, proc.stderr
    assert "reka-flash" in proc.stdout.split()


# --------------------------------------------------------------------------- batch


def test_batch_examples_file(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    proc = run("batch", str(EXAMPLES), "-o", str(out), "--mock")
    assert proc.returncode == 0, proc.stderr
    rows = records(out)
    n_inputs = sum(1 for line in EXAMPLES.read_text().splitlines() if line.strip())
    assert len(rows) == n_inputs >= 30
    assert all(r["ok"] for r in rows)
    assert len({r["custom_id"] for r in rows}) == n_inputs
    first = next(r for r in rows if r["custom_id"] == "q01")
    assert first["line"] == 1
    assert first["response"]["text"].startswith("Mock reply to: ")
    assert first["response"]["responses"][0]["message"]["role"] == "assistant"
    assert set(first["usage"]) == {"input_tokens", "output_tokens"}
    assert first["attempts"] == 1
    assert "results" in proc.stderr
    assert "ok" in proc.stderr
    assert "mock-key" not in out.read_text()


def test_batch_bad_lines(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(
        inp,
        [
            {"custom_id": "a", "prompt": "alpha"},
            "",  # line 2: blank, skipped
            '{"custom_id": "broken", "prompt": ',  # line 3: invalid JSON
            {"custom_id": "b", "messages": [{"role": "user", "content": "beta"}]},
            {"custom_id": "c", "prompt": "gamma", "max_tokens": 0},  # line 5: invalid request
            "[1, 2, 3]",  # line 6: not an object
            {"custom_id": "a", "prompt": "again"},  # line 7: duplicate custom_id
            {"prompt": "no id", "temperature": 0},  # line 8: gets line-8
            {"custom_id": "d", "nothing": True},  # line 9: no messages/prompt
        ],
    )
    out = tmp_path / "out.jsonl"
    proc = run("batch", str(inp), "-o", str(out), "--mock")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = records(out)
    assert len(rows) == 8  # one per non-blank input line
    by_line = {r["line"]: r for r in rows}
    assert sorted(by_line) == [1, 3, 4, 5, 6, 7, 8, 9]
    assert by_line[1]["ok"]
    assert by_line[1]["custom_id"] == "a"
    assert by_line[4]["ok"]
    assert by_line[4]["response"]["text"] == "Mock reply to: beta"
    assert by_line[8]["ok"]
    assert by_line[8]["custom_id"] == "line-8"
    for line, kind in [(3, "InvalidInputLine"), (5, "InvalidInputLine"), (6, "InvalidInputLine")]:
        err = by_line[line]["error"]
        assert not by_line[line]["ok"]
        assert err["type"] == kind
        assert err["message"].startswith(f"line {line}: ")
        assert err["status"] is None
    assert by_line[3]["custom_id"] == "line-3"
    assert "invalid JSON" in by_line[3]["error"]["message"]
    assert "max_tokens" in by_line[5]["error"]["message"]
    assert by_line[7]["error"]["type"] == "DuplicateCustomId"
    assert by_line[9]["error"]["message"].startswith("line 9: ")

    # Resuming a finished run sends nothing and writes nothing, and keeps the failure status.
    before = out.read_bytes()
    proc = run("batch", str(inp), "-o", str(out), "--mock", "--resume")
    assert proc.returncode == 1, proc.stderr
    assert out.read_bytes() == before


def test_batch_api_errors_are_recorded(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"custom_id": "x", "prompt": "[[fault:422]]"}, {"prompt": "fine"}])
    out = tmp_path / "out.jsonl"
    proc = run("batch", str(inp), "-o", str(out), "--mock")
    assert proc.returncode == 1
    rows = {r["custom_id"]: r for r in records(out)}
    err = rows["x"]["error"]
    assert err["type"] == "UnprocessableEntityError"
    assert err["status"] == 422
    assert err["request_id"]
    assert rows["line-2"]["ok"]


def test_batch_plain_text_input(tmp_path: Path) -> None:
    inp = tmp_path / "questions.txt"
    inp.write_text("What is 2 + 2?\n\nName a colour.\r\n{not json, but plain text}\n")
    out = tmp_path / "out.jsonl"
    proc = run("batch", str(inp), "-o", str(out), "--mock", "--max-tokens", "50")
    assert proc.returncode == 0, proc.stderr
    rows = {r["custom_id"]: r for r in records(out)}
    assert set(rows) == {"line-1", "line-3", "line-4"}
    assert rows["line-3"]["response"]["text"] == "Mock reply to: Name a colour."
    assert rows["line-4"]["response"]["text"] == "Mock reply to: {not json, but plain text}"


def test_batch_stdin(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    text = "\n".join(json.dumps({"custom_id": f"s{i}", "prompt": f"q{i}"}) for i in range(20))
    proc = run("batch", "-", "-o", str(out), "--mock", "--concurrency", "4", stdin=text)
    assert proc.returncode == 0, proc.stderr
    rows = records(out)
    assert sorted(r["custom_id"] for r in rows) == sorted(f"s{i}" for i in range(20))
    assert all(r["response"]["text"] == f"Mock reply to: q{r['custom_id'][1:]}" for r in rows)


def test_batch_refuses_to_overwrite(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"prompt": "x"}])
    out = tmp_path / "out.jsonl"
    out.write_text('{"custom_id": "keep-me"}\n')
    proc = run("batch", str(inp), "-o", str(out), "--mock")
    assert_clean_error(proc)
    assert "--resume" in proc.stderr
    assert out.read_text() == '{"custom_id": "keep-me"}\n'
    proc = run("batch", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o2.jsonl"), "--mock")
    assert_clean_error(proc)
    assert "not found" in proc.stderr


def test_batch_overwrite_starts_afresh(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"custom_id": "a", "prompt": "x"}, {"custom_id": "b", "prompt": "y"}])
    out = tmp_path / "out.jsonl"
    out.write_text('{"custom_id": "stale"}\n')
    for _ in range(2):  # the README's main command must work when run twice
        proc = run("batch", str(inp), "-o", str(out), "--mock", "--overwrite")
        assert proc.returncode == 0, proc.stderr
        assert sorted(r["custom_id"] for r in records(out)) == ["a", "b"]
    proc = run("batch", str(inp), "-o", str(out), "--mock", "--overwrite", "--resume")
    assert_clean_error(proc)


def test_batch_resume_skips_done_and_repairs_a_torn_line(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"custom_id": f"r{i}", "prompt": f"question {i}"} for i in range(10)])
    full = tmp_path / "full.jsonl"
    assert run("batch", str(inp), "-o", str(full), "--mock").returncode == 0
    lines = full.read_bytes().splitlines(keepends=True)
    done = [json.loads(line)["custom_id"] for line in lines[:4]]
    # An output that crashed mid-write: 4 complete records and half of a fifth.
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    proc = run("batch", str(inp), "-o", str(out), "--mock", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "torn" in proc.stderr
    rows = records(out)  # every line parses: the torn one was cut off
    assert len(rows) == 10
    assert sorted(r["custom_id"] for r in rows) == sorted(f"r{i}" for i in range(10))
    assert [r["custom_id"] for r in rows[:4]] == done  # kept as they were
    assert all(r["ok"] for r in rows)


# --------------------------------------------------------------------------- crash & resume


@pytest.fixture
def mock_server() -> Iterator[str]:
    with MockServerProcess("--latency-ms", "20") as server:
        yield server.base_url


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_sigkill_and_resume_gives_each_input_exactly_once(tmp_path: Path, mock_server: str) -> None:
    n = 300
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [{"custom_id": f"c{i:03d}", "prompt": f"prompt number {i}"} for i in range(n)])
    out = tmp_path / "out.jsonl"
    env = env_without_key(REKA_API_KEY="anything")
    cmd = [
        sys.executable,
        "-m",
        "reka_async",
        "--base-url",
        mock_server,
        "batch",
        str(inp),
        "-o",
        str(out),
        "--concurrency",
        "4",
        "--resume",
        "--no-progress",
    ]
    kills = 0
    for round_, target in enumerate((40, 120, 200)):
        log = tmp_path / f"stderr-{round_}.txt"
        with log.open("w") as err:
            proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
            try:
                deadline = time.monotonic() + TIMEOUT
                while time.monotonic() < deadline and proc.poll() is None:
                    if count_lines(out) >= target:
                        proc.send_signal(signal.SIGKILL)
                        kills += 1
                        break
                    time.sleep(0.005)
                proc.wait(timeout=TIMEOUT)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        got = count_lines(out)
        assert proc.returncode == -signal.SIGKILL, log.read_text()
        assert target <= got < n
        ids = [json.loads(line)["custom_id"] for line in out.read_bytes().splitlines()]
        assert len(ids) == len(set(ids))  # never a duplicate, even mid-way
    assert kills == 3

    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert final.returncode == 0, final.stderr
    rows = records(out)
    ids = [r["custom_id"] for r in rows]
    assert len(ids) == n
    assert set(ids) == {f"c{i:03d}" for i in range(n)}
    assert all(r["ok"] for r in rows)
    assert "anything" not in out.read_text()


def test_mock_server_command() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reka_async", "mock-server", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.split()[-1]
        chat = run("--base-url", url, "chat", "ping", env=env_without_key(REKA_API_KEY="k"))
        assert chat.returncode == 0, chat.stderr
        assert chat.stdout == "Mock reply to: ping\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_chat_on_the_openai_dialect() -> None:
    proc = run("chat", "--mock", "--api", "openai", "What is 2+2?")
    assert proc.returncode == 0, proc.stderr
    assert "Mock reply to: What is 2+2?" in proc.stdout


def test_models_prints_a_table_and_ids() -> None:
    table = run("models", "--mock")
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[:2] == ["ID", "CONTEXT"]
    ids = run("models", "--mock", "--ids")
    assert ids.returncode == 0, ids.stderr
    assert "reka-flash" in ids.stdout.splitlines()


def test_batch_at_256_turns_the_gc_tuning_on_and_says_so(tmp_path: Path) -> None:
    inp = tmp_path / "in.txt"
    inp.write_text("one\ntwo\n")
    out = tmp_path / "out.jsonl"
    proc = run("batch", str(inp), "-o", str(out), "--mock", "--concurrency", "256")
    assert proc.returncode == 0, proc.stderr
    assert "reka-async: gc: the collector's first threshold is 20,000" in proc.stderr
    small = run("batch", str(inp), "-o", str(out), "--mock", "--overwrite")
    assert small.returncode == 0, small.stderr
    assert "gc:" not in small.stderr


def test_the_cli_batch_asks_the_runner_for_the_gc_tuning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reka_async.batch.collector import GcRelief
    from reka_async.cli import main

    acquired: list[int] = []
    monkeypatch.setattr(GcRelief, "acquire", classmethod(lambda cls: acquired.append(1)))
    monkeypatch.setattr(GcRelief, "release", classmethod(lambda cls: None))
    inp = tmp_path / "in.txt"
    inp.write_text("one\n")
    status = main(
        ["batch", str(inp), "-o", str(tmp_path / "o.jsonl"), "--mock", "--concurrency", "256"]
    )
    assert status == 0
    assert acquired == [1]
