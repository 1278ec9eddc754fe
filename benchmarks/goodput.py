"""Goodput under rate limits: how much of a server's allowance a batch uses, and what random
overload 429s cost. Numbers, not assertions (issue 13's targets are in the README).

Run: ``python -m benchmarks.goodput`` (about a minute; ``--quick`` for a smoke run).

Scenario 1, a limit that tells the truth: the mock in its own process with a fixed-window
limiter (``--rate-limit 50/s``) whose ``x-ratelimit-*`` headers match it, 300 ms latency, a
BatchRunner at concurrency 64 (which alone would send ~213 requests a second). Reported: the
throughput as a share of the limit, and the share of requests the server answered 429.

Scenario 2, random overload: the same mock without a limiter, 1 % of requests answered by an
overload 429 (``retry-after: 1``, quota not spent), against a clean run in the same process:
the throughput ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from reka_async import AsyncClient, BatchRunner
from reka_async.testing import MockServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "goodput.json"


async def _run(base_url: str, n: int, concurrency: int) -> dict[str, Any]:
    async with AsyncClient("bench-key", base_url, max_connections=max(concurrency, 64)) as client:
        runner = BatchRunner(client, concurrency=concurrency)
        started = time.monotonic()
        results = await runner.run([f"item {i}" for i in range(n)])
        wall = time.monotonic() - started
    stats = runner.stats
    attempts = sum(r.attempts for r in results)
    return {
        "items": n,
        "ok": stats.ok,
        "failed": stats.failed,
        "wall_s": round(wall, 3),
        "throughput_rps": round(stats.ok / wall, 2),
        "attempts": attempts,
        "rate_limited": stats.rate_limited,
        "quota_pauses": stats.quota_pauses,
        "rate_limited_share": round(stats.rate_limited / attempts, 4) if attempts else 0.0,
        "concurrency_limit_end": round(stats.concurrency_limit, 1),
        "pacing_rate": stats.pacing_rate,
    }


def _server(*args: str) -> MockServerProcess:
    return MockServerProcess("--latency-ms", "300", *args, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario")
    args = parser.parse_args()
    limited_n = 200 if args.quick else 1500  # 30 s at 50/s
    overload_n = 300 if args.quick else 3000
    report: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version()}

    with _server("--rate-limit", "50/s") as server:
        limited = asyncio.run(_run(server.base_url, limited_n, 64))
    limited["limit_rps"] = 50
    limited["share_of_limit"] = round(limited["throughput_rps"] / 50, 4)
    report["rate_limit_50_per_s"] = limited

    with _server() as server:
        clean = asyncio.run(_run(server.base_url, overload_n, 64))
    with _server(
        "--fault-rate", "0.01", "--fault-kinds", "overloaded", "--retry-after", "1"
    ) as server:
        overloaded = asyncio.run(_run(server.base_url, overload_n, 64))
    report["clean"] = clean
    report["overload_1pct"] = overloaded
    report["overload_ratio"] = round(overloaded["throughput_rps"] / clean["throughput_rps"], 4)

    print(f"rate limit 50/s, C=64, 300 ms: {limited['throughput_rps']} req/s = "
          f"{limited['share_of_limit']:.1%} of the limit; "
          f"{limited['rate_limited_share']:.2%} of requests answered 429 "
          f"({limited['rate_limited']} of {limited['attempts']}); "
          f"pacing rate {limited['pacing_rate']}")  # fmt: skip
    print(f"1 % overload 429s (retry-after 1 s), C=64, 300 ms: {overloaded['throughput_rps']} "
          f"req/s vs {clean['throughput_rps']} clean = {report['overload_ratio']:.1%}; "
          f"concurrency limit at the end {overloaded['concurrency_limit_end']}")  # fmt: skip
    if not args.quick:
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
