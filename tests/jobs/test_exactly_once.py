"""Issue 13, job side, in real subprocesses: exactly one final record per input whatever
happens (kills at random points, two writers, duplicate ids, edited input, SIGTERM, a full
disk, failures retried), and the exit statuses of ``cli/_exit.py``."""

from __future__ import annotations

import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reka_async.batch.fds import FD_MARGIN
from reka_async.testing import MockServerProcess

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("REKA_API_KEY", "REKA_BASE_URL")}
    out.update(PYTHONUNBUFFERED="1", REKA_API_KEY="test-key", **extra)
    return out


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "reka_async", *args]


def run(*args: str, preexec: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec,
        check=False,
    )


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_input(path: Path, n: int, *, extra: dict[int, str] | None = None) -> None:
    rows = []
    for i in range(n):
        prompt = f"question {i}" + (extra or {}).get(i, "")
        rows.append(json.dumps({"custom_id": f"q{i}", "prompt": prompt}))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def assert_exactly_once(out: Path, n: int) -> dict[str, dict[str, Any]]:
    rows = records(out)
    ids = [r["custom_id"] for r in rows]
    assert sorted(ids) == sorted(f"q{i}" for i in range(n)), "missing or duplicated ids"
    return {r["custom_id"]: r for r in rows}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServerProcess]:
    """One mock for several runs: a ``[[fault:NAME*1]]`` directive fires once across them."""
    with MockServerProcess("--api-key", "test-key") as server:
        yield server


@pytest.fixture(scope="module")
def slow_server() -> Iterator[MockServerProcess]:
    with MockServerProcess("--latency-ms", "40", "--api-key", "test-key") as server:
        yield server


def test_kills_at_random_points_then_resume_end_with_each_input_exactly_once(
    tmp_path: Path, slow_server: MockServerProcess
) -> None:
    n = 120
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, n)
    rng = random.Random(13)
    base = ["--base-url", slow_server.base_url, "batch", str(inp), "-o", str(out)]
    for round_ in range(4):
        args = [*base, "--concurrency", "8", "--no-progress"]
        if round_:
            args.append("--resume")
        proc = subprocess.Popen(
            cli(*args), env=env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        target = rng.randint(1, 25)  # kill once this many more records are written
        before = len(records(out)) if out.exists() else 0
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if (
                out.exists()
                and out.stat().st_size
                and len(out.read_bytes().split(b"\n")) > (before + target)
            ):
                break
            time.sleep(0.005)  # polling the file for a condition, not timing anything
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        assert proc.stderr is not None
        proc.stderr.close()
    final = run(*base, "--resume", "--no-progress")
    assert final.returncode == 0, final.stderr
    rows = assert_exactly_once(out, n)
    assert all(r["ok"] for r in rows.values())
    assert all(r["request_hash"].startswith("sha256:") for r in rows.values())


def test_a_second_writer_on_the_same_output_is_refused(
    tmp_path: Path, slow_server: MockServerProcess
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    # Far more than the first run can finish while the second starts, however loaded the
    # machine: the first is stopped with SIGTERM once the second has been refused.
    n = 1000
    write_input(inp, n)
    args = ["--base-url", slow_server.base_url, "batch", str(inp), "-o", str(out)]
    first = subprocess.Popen(
        cli(*args, "--concurrency", "2", "--no-progress"),
        env=env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.005)  # wait until the first run is writing
        second = run(*args, "--resume", "--no-progress")
        assert second.returncode == 2, second.stderr
        assert "being written by another run" in second.stderr
        assert f"pid {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=TIMEOUT) == 143  # stopped by SIGTERM, its summary written
        assert first.stderr is not None
        first.stderr.close()
    assert not Path(str(out) + ".lock").exists()
    final = run(*args, "--resume", "--concurrency", "64", "--no-progress")
    assert final.returncode == 0, final.stderr
    assert_exactly_once(out, n)


#: The original's latency in each try of the kill below: the kill must land while it is in
#: flight, so a busy machine that misses the window gets a wider one (a bounded number).
KILL_WINDOWS_MS = (300, 1500, 6000)


def _killed_while_the_original_is_in_flight(inp: Path, out: Path, latency_ms: int) -> bool:
    """Run the batch and kill it once the duplicate's error line is written; return whether
    the kill landed before the original's answer was (the case the test is about)."""
    rows = [
        {"custom_id": "a", "prompt": f"slow [[latency_ms:{latency_ms}]]"},
        {"custom_id": "a", "prompt": "the duplicate, rejected while the first is in flight"},
        {"custom_id": "b", "prompt": "fine"},
    ]
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out.unlink(missing_ok=True)
    proc = subprocess.Popen(
        cli("batch", str(inp), "-o", str(out), "--mock", "--no-progress"),
        env=env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if out.exists() and b"DuplicateCustomId" in out.read_bytes():
            break
        time.sleep(0.002)  # polling a file another process writes: not a synchronisation
    proc.kill()
    proc.wait(timeout=TIMEOUT)
    return '"custom_id": "a", "line": 1' not in out.read_text()


def test_a_duplicate_id_never_marks_the_original_done(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    # Kill the run once the duplicate's error line is written but before the original's;
    # each try that misses (the original answered first) tries again with a wider window.
    landed = any(_killed_while_the_original_is_in_flight(inp, out, ms) for ms in KILL_WINDOWS_MS)
    assert landed, f"the original finished before the kill in every window {KILL_WINDOWS_MS}"
    resumed = run("batch", str(inp), "-o", str(out), "--mock", "--resume", "--no-progress")
    assert resumed.returncode == 1, resumed.stderr  # the duplicate line is a failure
    by_line = {r["line"]: r for r in records(out)}
    assert by_line[1]["ok"] is True  # the original was sent and answered
    assert by_line[2]["error"]["type"] == "DuplicateCustomId"
    assert len([r for r in records(out) if r["line"] == 2]) == 1


def test_edited_input_is_refused_on_resume_or_rerun_with_a_flag(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, 6)
    assert run("batch", str(inp), "-o", str(out), "--mock", "--no-progress").returncode == 0
    before = out.read_bytes()
    write_input(inp, 8, extra={2: " (edited)"})  # one line changed, two lines added
    refused = run("batch", str(inp), "-o", str(out), "--mock", "--resume", "--no-progress")
    assert refused.returncode == 2, refused.stderr
    assert "1 input(s) changed" in refused.stderr
    assert "line 3, custom_id 'q2'" in refused.stderr
    assert out.read_bytes() == before  # nothing was sent or written
    # A changed flag changes every request too.
    flags = run("batch", str(inp), "-o", str(out), "--mock", "--resume", "--max-tokens", "7")
    assert flags.returncode == 2
    rerun = run(
        "batch", str(inp), "-o", str(out), "--mock", "--resume", "--rerun-changed", "--no-progress"
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "1 input(s) changed since their answer and were sent again" in rerun.stderr
    rows = assert_exactly_once(out, 8)  # compacted: the old answer of q2 is gone
    assert "(edited)" in json.dumps(rows["q2"])  # the mock echoes the prompt
    assert "compacted 1 superseded record(s)" in rerun.stderr


def test_sigterm_is_handled_like_sigint(tmp_path: Path, slow_server: MockServerProcess) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, 200)
    args = ["--base-url", slow_server.base_url, "batch", str(inp), "-o", str(out)]
    proc = subprocess.Popen(
        cli(*args, "--concurrency", "4", "--no-progress"),
        env=env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while not (out.exists() and out.stat().st_size > 2000) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr
    written = len(records(out))
    assert f"({written} record(s) written by this run)" in stderr
    assert "to continue: reka-async" in stderr
    assert "--resume" in stderr
    done = run(*args, "--resume", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert_exactly_once(out, 200)


def test_a_full_disk_exits_74_naming_the_path_and_counting_what_was_written(
    tmp_path: Path,
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, 50)

    def small_files() -> None:  # writes past 4 KB fail with EFBIG, as a full disk would
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = run("batch", str(inp), "-o", str(out), "--mock", "--no-progress", preexec=small_files)
    assert proc.returncode == 74, proc.stderr
    assert f"could not write to {out}" in proc.stderr
    written = len(records(out))  # every line whole: the failed one was cut off
    assert 0 < written < 50
    assert f"({written} record(s) written by this run)" in proc.stderr
    done = run("batch", str(inp), "-o", str(out), "--mock", "--resume", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert_exactly_once(out, 50)


def test_retry_failed_reruns_what_can_change_and_keeps_input_errors(
    tmp_path: Path, server: MockServerProcess
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    # Each directive is distinct (trailing spaces), so each fires on its first request only.
    rows = [{"custom_id": f"q{i}", "prompt": f"q {i} [[fault:503*1{' ' * i}]]"} for i in range(5)]
    rows.append({"custom_id": "q5", "prompt": "bad input [[fault:422]]"})
    rows.append({"custom_id": "q6", "prompt": "fine"})
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = ["--base-url", server.base_url, "batch", str(inp), "-o", str(out)]
    first = run(*job, "--max-retries", "0")
    assert first.returncode == 1
    assert sum(not r["ok"] for r in records(out)) == 6
    plain = run(*job, "--resume")
    assert plain.returncode == 1  # a plain resume keeps the failures
    assert len(records(out)) == 7
    retried = run(*job, "--resume", "--retry-failed")
    assert retried.returncode == 1, retried.stderr  # q5's 422 is an input error, kept
    assert "retried 5 failed input(s)" in retried.stderr
    final = assert_exactly_once(out, 7)
    assert [final[f"q{i}"]["ok"] for i in range(7)] == [True] * 5 + [False, True]
    assert final["q5"]["error"]["status"] == 422
    assert "job total: 7 input(s), 6 ok, 1 failed" in retried.stderr


def test_the_circuit_breaker_exits_3_and_resume_continues(
    tmp_path: Path, server: MockServerProcess
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"custom_id": f"q{i}", "prompt": f"q {i}"} for i in range(40)]
    rows[3]["prompt"] = "[[fault:credits*1]]"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = ["--base-url", server.base_url, "batch", str(inp), "-o", str(out)]
    stopped = run(*job, "--concurrency", "1")
    assert stopped.returncode == 3, stopped.stderr
    assert "out of credits" in stopped.stderr
    assert len(records(out)) == 4  # three answers and the credits error; the rest not sent
    resumed = run(*job, "--resume", "--retry-failed")
    assert resumed.returncode == 0, resumed.stderr
    assert all(r["ok"] for r in assert_exactly_once(out, 40).values())


def test_the_cli_raises_the_open_file_limit_when_concurrency_needs_it(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, 30)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4000:
        pytest.skip(f"the hard open-file limit ({hard}) is too low to raise toward")

    def low_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    proc = run(
        "batch", str(inp), "-o", str(out), "--mock", "--concurrency", "1000",
        preexec=low_soft_limit,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    raised = re.search(r"raised the open-file limit from 256 to (\d+) for this run", proc.stderr)
    assert raised is not None, proc.stderr
    # Two descriptors per connection: the in-process mock holds the server's ends.
    assert int(raised.group(1)) >= 2000 + FD_MARGIN
    assert "running at concurrency" not in proc.stderr
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # ours is untouched


def test_without_enough_descriptors_a_mock_run_fits_its_concurrency_and_every_item_ends_ok(
    tmp_path: Path,
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, 1000)

    def tight_limits() -> None:  # soft and hard: nothing to raise toward
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    # Half a second of latency holds every connection while a thousand items want one (a
    # quarter of them used to fail "Too many open files", the mock's ends counted nowhere).
    proc = run(
        "batch", str(inp), "-o", str(out), "--mock", "--concurrency", "1000",
        "--mock-latency-ms", "500", "--no-progress", preexec=tight_limits,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = re.search(
        r"the open-file limit \(256, hard limit 256\) holds about (\d+) connections \(the "
        r"in-process mock holds a descriptor per connection too\), not 1000: running at "
        r"concurrency \1; raise the limit \(ulimit -n \d+\) to run at 1000",
        proc.stderr,
    )
    assert said is not None, proc.stderr[-2000:]
    assert 2 * int(said.group(1)) + FD_MARGIN <= 256
    assert all(r["ok"] for r in assert_exactly_once(out, 1000).values())
    assert "Too many open files" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) < 10, proc.stderr[-2000:]
