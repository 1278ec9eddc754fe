"""``reka-async bench`` as a real subprocess, against the mock server in its own process."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reka_async.bench import Progress
from reka_async.cli._bench import _ProgressLine, _ProgressLog
from reka_async.testing import MockRekaServer, MockServerProcess

ROOT = Path(__file__).resolve().parents[2]
CANARY = "sk-bench-canary-5f1d"


def bench(*args: str, key: str | None = CANARY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REKA_API_KEY", "REKA_BASE_URL")}
    if key is not None:
        env["REKA_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "reka_async", "bench", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServerProcess]:
    """The standalone mock with a generation model: no delays, two generations at once."""
    with MockServerProcess("--api-key", CANARY, "--capacity", "2") as server:
        yield server


def test_a_sweep_prints_a_table_and_writes_every_sample(
    mock: MockServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    proc = bench(
        "--base-url", mock.base_url, "--model", "reka-flash", "--concurrency", "2,1",
        "--num-requests", "5", "--stream", "--input-tokens", "40", "--output-tokens", "7",
        "--slo", "ttft=30s,e2e=60s", "--json", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[1].split()
    assert header[:3] == ["concurrency", "ok", "fail"]
    assert "TTFT" in header
    assert "saturation:" in proc.stdout
    data = json.loads(out.read_text())
    assert data["config"]["loads"] == [1, 2]
    assert data["config"]["stream"] is True
    assert [r["concurrency"] for r in data["runs"]] == [1, 2]
    for step in data["runs"]:
        assert step["ok"] == 5
        assert step["errors"] == {}
        assert step["goodput"]["good"] == 5
        # The mock ran every answer to max_tokens and counted the prompt's words.
        assert {(s["output_tokens"], s["usage_input_tokens"]) for s in step["samples"]} == {(7, 40)}
    assert data["saturation"]["rule"].startswith("the saturation point is")
    for text in (proc.stdout, proc.stderr, out.read_text()):
        assert CANARY not in text


def test_failures_give_status_1_with_their_types() -> None:
    proc = bench(
        "--mock", "--mock-args", "--fault-rate 1 --fault-kinds 500", "--warmup", "0",
        "--num-requests", "4", "--rate", "100",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "4 of 4 requests failed (InternalServerError 4)" in proc.stderr
    assert "lag p99" in proc.stdout  # an open loop shows how far sending fell behind


def test_a_failed_warm_up_stops_with_status_1(mock: MockServerProcess) -> None:
    proc = bench("--base-url", mock.base_url, "--num-requests", "3", key="wrong-key")
    assert proc.returncode == 1
    assert "AuthenticationError" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo", "ttft=500"], "give a unit"),  # from the configuration's checks
        (["--input-tokens", "normal:5"], "invalid length distribution"),
        (["--concurrency", "1", "--rate", "5"], "not allowed with argument"),  # argparse
        (["--concurrency", "0"], "expected a positive integer"),
        (["--mock", "--base-url", "http://127.0.0.1:1/v1"], "cannot be used together"),
    ],
)
def test_usage_errors_say_what_to_fix(args: list[str], message: str) -> None:
    proc = bench(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plots_without_matplotlib_name_the_extra(tmp_path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is not None:  # pragma: no cover
        pytest.skip("matplotlib is installed: the plots are drawn (see test_bench_counts.py)")
    proc = bench("--plot", str(tmp_path))
    assert proc.returncode == 2
    assert "reka-async[plot]" in proc.stderr


def test_help_documents_the_metrics_and_the_saturation_rule() -> None:
    proc = bench("--help", key=None)
    assert proc.returncode == 0
    for needle in ("TTFT", "TPOT", "ITL", "coordinated", "saturation", "exit status", "--slo"):
        assert needle in proc.stdout


def test_the_progress_line_is_rewritten_in_place_and_ends_with_its_step() -> None:
    out = io.StringIO()
    line = _ProgressLine(out)
    common = {"step": 1, "steps": 2, "label": "concurrency 4", "total": 10, "failed": 0}
    line(Progress(done=2, ok=2, in_flight=4, elapsed_s=1.0, **common))  # type: ignore[arg-type]
    line(Progress(done=10, ok=10, in_flight=0, elapsed_s=2.0, finished=True, **common))  # type: ignore[arg-type]
    first, second = out.getvalue().split("\r")[1:]
    assert first.startswith("step 1/2 concurrency 4: 2/10 done, 2 ok, 0 failed, 4 in flight")
    assert second.endswith("5.0 req/s, 2.0 s\n")
    assert len(second.rstrip("\n")) >= len(first)  # the longer line before is blanked out


@pytest.mark.parametrize(
    ("flag", "where"),
    [
        ("--json", "missing/bench.json"),  # a directory that does not exist
        ("--json", "."),  # a directory, not a file
        ("--plot", "file.txt/plots"),  # under a regular file: no directory can be made
    ],
)
async def test_unwritable_outputs_are_refused_before_anything_is_sent(
    flag: str, where: str, tmp_path: Path
) -> None:
    if flag == "--plot" and importlib.util.find_spec("matplotlib") is None:  # pragma: no cover
        pytest.skip("without matplotlib --plot is refused first (exit 2)")
    (tmp_path / "file.txt").write_text("x")
    env = {k: v for k, v in os.environ.items() if k not in ("REKA_API_KEY", "REKA_BASE_URL")}
    env["REKA_API_KEY"] = CANARY
    # The mock shares this loop: the subprocess is awaited, never waited for in a block.
    async with MockRekaServer(api_key=CANARY) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reka_async", "bench", "--base-url", server.base_url,
            "--num-requests", "3", "--warmup", "0", flag, str(tmp_path / where),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=ROOT,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        stderr = err.decode()
        assert proc.returncode == 74, stderr
        assert f"cannot write {tmp_path / where}" in stderr, stderr
        assert "before sending anything" in stderr
        assert "Traceback" not in stderr
        assert server.requests == []


def test_without_a_terminal_progress_lines_go_to_stderr(mock: MockServerProcess) -> None:
    # stderr is a pipe here, as under CI or nohup: lines, not a line rewritten in place.
    proc = bench(
        "--base-url", mock.base_url, "--concurrency", "1,2", "--num-requests", "4",
        "--warmup", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("reka-async: progress ")]
    assert any("step 1/2 concurrency 1: 4/4 done, 4 ok" in ln for ln in lines), proc.stderr
    assert any("step 2/2 concurrency 2: 4/4 done, 4 ok" in ln for ln in lines), proc.stderr
    assert "\r" not in proc.stderr


def test_the_progress_log_writes_a_line_per_interval_and_at_each_step_end() -> None:
    out = io.StringIO()
    log = _ProgressLog(out, interval=5.0)
    common = {"steps": 2, "label": "concurrency 4", "total": 10, "failed": 0, "in_flight": 4}

    def call(step: int, elapsed: float, done: int, finished: bool = False) -> None:
        log(Progress(step=step, done=done, ok=done, elapsed_s=elapsed, finished=finished, **common))  # type: ignore[arg-type]

    for elapsed in (0.0, 0.25, 4.9, 5.0, 5.25, 9.9, 10.1):
        call(1, elapsed, int(elapsed))
    call(1, 10.2, 10, finished=True)
    call(2, 0.0, 0)  # the next step starts with a line of its own
    call(2, 0.25, 0)
    lines = out.getvalue().splitlines()
    assert [ln.split(", ")[-1] for ln in lines] == ["0.0 s", "5.0 s", "10.1 s", "10.2 s", "0.0 s"]
    assert all(ln.startswith("reka-async: progress step ") for ln in lines)


def test_requests_out_writes_a_line_per_request_with_its_error(tmp_path: Path) -> None:
    out, result = tmp_path / "requests.jsonl", tmp_path / "bench.json"
    proc = bench(
        "--mock", "--mock-args", "--fault-rate 1 --fault-kinds 500", "--warmup", "0",
        "--num-requests", "3", "--rate", "100", "--burstiness", "0.5",
        "--requests-out", str(out), "--json", str(result),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["step"], r["rate"], r["ok"]) for r in lines] == [(1, 100.0, False)] * 3
    assert {(r["error"]["type"], r["error"]["status"]) for r in lines} == {
        ("InternalServerError", 500)
    }
    step = json.loads(result.read_text())["runs"][0]
    assert (step["completed"], step["failed"], step["request_rate"], step["burstiness"]) == (
        0,
        3,
        100.0,
        0.5,
    )


def test_a_duration_step_shows_an_unknown_total_in_its_progress(mock: MockServerProcess) -> None:
    proc = bench(
        "--base-url", mock.base_url, "--concurrency", "2", "--num-requests", "2",
        "--duration", "0.3", "--warmup", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "0.3 s per step" in proc.stdout
    assert "/? done" in proc.stderr
