"""The benchmark harness still runs end to end (tiny budget; no speed is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Every measurement but ``latency`` (the same code path as ``chat`` against a second server),
# every client, the smallest sizes: about 20 worker processes, ~20 s.
TINY = [
    "--quick",
    "--only",
    "chat,stream,sync,paired,rss",
    "--duration",
    "0.3",
    "--warmup",
    "0.1",
    "--concurrency",
    "2",
    "--stream-concurrency",
    "2",
    "--stream-chunks",
    "8",
    "--rss-items",
    "200,400",
    "--pair-concurrency",
    "2",
    "--slice",
    "0.1",
]


@pytest.mark.slow
def test_quick_benchmark_run_writes_complete_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *TINY, "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert {"meta", "settings", "notes", "runs", "skipped", "errors", "summary", "targets"} <= set(
        results
    )
    assert results["errors"] == []
    assert {"cpu_model", "cpu_count", "python", "packages", "date"} <= set(
        results["meta"]["machine"]
    )
    assert set(results["summary"]) == {"chat", "stream", "sync", "paired", "rss"}

    chat_clients = {row["client"] for row in results["summary"]["chat"]}
    assert {"reka_async", "reka_async_batch", "aiohttp_raw", "aiohttp_json"} <= chat_clients
    for run in results["runs"]:
        if run["measurement"] in ("chat", "stream", "sync"):
            assert {"requests", "wall_s", "cpu_s", "req_per_s", "cpu_us_per_req"} <= set(run)
        elif run["measurement"] == "paired":
            assert len(run["pair"]) == 2
            for side in run["pair"].values():
                assert side["requests"] > 0
                assert side["slices"] >= 2
        else:
            assert {"items", "peak_rss_kb", "baseline_maxrss_kb"} <= set(run)
    assert [row["items"] for row in results["summary"]["rss"]] == [200, 400]

    assert len(results["targets"]) == 7
    for target in results["targets"]:
        assert {"target", "goal", "measured", "pass"} <= set(target)

    paired = {row["client"]: row for row in results["summary"]["paired"]}
    assert paired["reka_async"]["baseline"] == "aiohttp_raw"
    assert paired["reka_async_sync"]["baseline"] == "reka_async"
    # The two ratio targets are judged on the paired runs when they ran.
    by_name = {t["target"]: t for t in results["targets"]}
    assert "paired" in by_name["sync facade time per call vs async (C=1)"]["measured"]

    report = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "## Targets" in report
    assert "## Paired runs" in report
