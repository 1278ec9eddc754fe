"""Goodput under rate limits: how much of a server's allowance a batch uses against every
kind of limiter, and what random overload 429s cost. Numbers, not assertions (issue 27's
targets are on docs/performance.md).

Run: ``python -m benchmarks.goodput`` (a few minutes; ``--quick`` for a smoke run,
``--kinds bucket,bare`` for some kinds only).

Every scenario runs the mock in its own process (300 ms latency) and a default
``BatchRunner`` (no ``rpm``/``tpm``: the client learns the rate).

1. Limited, for each limiter kind (``--rate-limit 50/s --rate-limit-kind KIND``: fixed
   windows, a sliding window, a token bucket with OpenAI's headers, a bucket with no
   ``x-ratelimit-*`` headers): C=64 with 600 items and C=256 with 3,000 items. Reported:
   ok answers per second as a share of the limit, the share of requests answered 429
   (overall, and after the first second for C=256: the first wave against an unknown limit
   is reported on its own), failed items.
2. Random overload: 1 % of requests answered by an overload 429 (``retry-after: 1``, quota
   not spent), 4,000 items at C=64, against a clean run of the same size in the same
   process: the throughput ratio, and the same ratio up to the moment 99 % of the items had
   finished (the last items' retries, each a second's wait the server asked for, end a run
   alone).
3. Clean runs (no limit), C=64 and C=256 with 3,000 items: requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reka_async import AsyncClient, BatchRunner, ResponseEvent
from reka_async.testing import MockServerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "goodput"
KINDS = ("fixed", "sliding", "bucket", "bare")
LIMIT = 50


async def _run(base_url: str, n: int, concurrency: int) -> dict[str, Any]:
    answers: list[tuple[float, int | None]] = []

    def on_response(event: ResponseEvent) -> None:
        answers.append((event.request.started, event.status_code))

    async with AsyncClient(
        "bench-key", base_url, max_connections=max(concurrency, 64), on_response=on_response
    ) as client:
        finished: list[float] = []
        runner = BatchRunner(
            client,
            concurrency=concurrency,
            on_result=lambda r, s: finished.append(time.monotonic()),
        )
        started = time.monotonic()
        results = await runner.run([f"item {i}" for i in range(n)])
        wall = time.monotonic() - started
    # When 99 % of the items had finished: the run without its tail (the last items'
    # retries, after a server's wait, end it alone).
    p99_s = sorted(finished)[max(int(0.99 * n) - 1, 0)] - started if finished else wall
    stats = runner.stats
    attempts = len(answers)
    refused = sum(1 for _, status in answers if status == 429)
    late = [(t, s) for t, s in answers if t >= started + 1.0]
    late_refused = sum(1 for _, status in late if status == 429)
    return {
        "items": n,
        "concurrency": concurrency,
        "ok": sum(1 for r in results if r.ok),
        "failed": sum(1 for r in results if not r.ok),
        "errors": dict(stats.errors),
        "wall_s": round(wall, 3),
        "throughput_rps": round(stats.ok / wall, 2),
        "p99_done_s": round(p99_s, 3),
        "throughput_rps_to_p99": round(0.99 * n / p99_s, 2) if p99_s > 0 else 0.0,
        "attempts": attempts,
        "refused_429": refused,
        "refused_share": round(refused / attempts, 4) if attempts else 0.0,
        "refused_first_second": refused - late_refused,
        "refused_share_after_first_second": round(late_refused / len(late), 4) if late else 0.0,
        "quota_pauses": stats.quota_pauses,
        "unlabelled_429s": stats.unlabelled_429s,
        "overload_429s": stats.overload_429s,
        "rate_cuts": stats.rate_cuts,
        "pacing_rate_end": None if stats.pacing_rate is None else round(stats.pacing_rate, 2),
        "concurrency_limit_end": round(stats.concurrency_limit, 1),
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
    }


def _server(*args: str) -> MockServerProcess:
    return MockServerProcess("--latency-ms", "300", *args, stderr=subprocess.DEVNULL)


def _limited(kind: str, n: int, concurrency: int) -> dict[str, Any]:
    with _server("--rate-limit", f"{LIMIT}/s", "--rate-limit-kind", kind) as server:
        row = asyncio.run(_run(server.base_url, n, concurrency))
    row["kind"] = kind
    row["share_of_limit"] = round(row["throughput_rps"] / LIMIT, 4)
    print(
        f"{kind:8s} C={concurrency:<4d} {n:5d} items: {row['ok']} ok, {row['failed']} failed; "
        f"{row['throughput_rps']} req/s = {row['share_of_limit']:.1%} of the limit; "
        f"{row['refused_share']:.2%} refused ({row['refused_429']} of {row['attempts']}; "
        f"{row['refused_first_second']} in the first second, "
        f"{row['refused_share_after_first_second']:.2%} after it); "
        f"rate at the end {row['pacing_rate_end']}; errors {row['errors']}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--kinds", default=",".join(KINDS), help="limiter kinds to run")
    parser.add_argument(
        "--only", choices=("limited", "overload", "clean"), default=None, help="one scenario"
    )
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    small, large = (150, 600) if args.quick else (600, 3000)
    overload_n = 400 if args.quick else 4000
    clean_n = 300 if args.quick else 3000
    report: dict[str, Any] = {
        "command": "python -m benchmarks.goodput " + " ".join(sys.argv[1:]),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "limit_rps": LIMIT,
        "latency_ms": 300,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    if args.only in (None, "limited"):
        report["limited"] = [
            _limited(kind, n, c) for kind in kinds for n, c in ((small, 64), (large, 256))
        ]
    if args.only in (None, "overload"):
        # Paired in one process: clean, overloaded, clean again (the machine is shared).
        pairs = []
        for _ in range(1 if args.quick else 2):
            with _server() as server:
                clean = asyncio.run(_run(server.base_url, overload_n, 64))
            with _server(
                "--fault-rate", "0.01", "--fault-kinds", "overloaded", "--retry-after", "1"
            ) as server:
                overloaded = asyncio.run(_run(server.base_url, overload_n, 64))
            ratio = round(overloaded["throughput_rps"] / clean["throughput_rps"], 4)
            body = round(overloaded["throughput_rps_to_p99"] / clean["throughput_rps_to_p99"], 4)
            pairs.append(
                {"clean": clean, "overload_1pct": overloaded, "ratio": ratio, "ratio_to_p99": body}
            )
            print(
                f"1 % overload 429s, C=64, {overload_n} items: {overloaded['throughput_rps']} "
                f"req/s vs {clean['throughput_rps']} clean = {ratio:.1%} ({body:.1%} until 99 % "
                f"of the items had finished); {overloaded['failed']} failed; "
                f"rate cuts {overloaded['rate_cuts']}",
                flush=True,
            )
        report["overload"] = pairs
    if args.only in (None, "clean"):
        clean_rows = []
        for concurrency in (64, 256):
            with _server() as server:
                row = asyncio.run(_run(server.base_url, clean_n, concurrency))
            clean_rows.append(row)
            print(
                f"clean C={concurrency}, {clean_n} items: {row['throughput_rps']} req/s, "
                f"{row['failed']} failed",
                flush=True,
            )
        report["clean"] = clean_rows
    report["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = "goodput.json" if args.only is None and kinds == list(KINDS) else "partial.json"
        path = RESULTS / name
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written: {path}")


if __name__ == "__main__":
    main()
