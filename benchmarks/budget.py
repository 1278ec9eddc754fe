"""CPU per request and per chunk of two checkouts, side by side: the budget of a change.

    git worktree add /tmp/before <base-commit>
    taskset -c 1 python -m benchmarks.budget --before /tmp/before --after . --repeat 5

Each run is a fresh process that imports ``reka_async`` from one checkout and measures, against
the mock server in another process: the client CPU per plain ``chat.create`` at C=64 on the
native dialect and on the OpenAI one, and per chunk of a native 64-chunk stream
(``time.process_time``, so the server's CPU is not counted). The checkouts alternate, the
order flipping every round, for ``--repeat`` rounds; the medians and the after/before ratios
are printed with each round's ratio range (the spread). Only public API is used, so any
checkout of the package can be measured. No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

MESSAGES = [{"role": "user", "content": "Write one short sentence about the sea."}]
CHUNKS = 64


async def _requests(url: str, api: str, total: int, concurrency: int) -> float:
    from reka_async import AsyncClient

    async with AsyncClient(api_key="k", base_url=url, api=api) as client:  # type: ignore[arg-type]
        left = total

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await client.chat.create(messages=MESSAGES, model="reka-flash")  # type: ignore[arg-type]

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm the pool
        left = total
        start = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - start) / total * 1e6


async def _chunks(url: str, streams: int) -> float:
    from reka_async import AsyncClient

    prompt = " ".join(f"w{i}" for i in range(CHUNKS))
    async with AsyncClient(api_key="k", base_url=url) as client:
        count, start = 0, 0.0
        for i in range(streams + 2):  # two streams of warm-up
            if i == 2:
                start, count = time.process_time(), 0
            async with client.chat.create_stream(
                messages=[{"role": "user", "content": prompt}], model="reka-flash"
            ) as stream:
                async for _ in stream:
                    count += 1
        return (time.process_time() - start) / count * 1e6


def measure_one(url: str, requests: int, streams: int) -> dict[str, float]:
    """One run in this process: µs per request (native, OpenAI) and per chunk."""
    return {
        "native": asyncio.run(_requests(url, "native", requests, 64)),
        "openai": asyncio.run(_requests(url, "openai", requests, 64)),
        "chunk": asyncio.run(_chunks(url, streams)),
    }


def _sizes(requests: int, streams: int) -> list[str]:
    return ["--requests", str(requests), "--streams", str(streams)]


def _child(tree: str, url: str, requests: int, streams: int) -> dict[str, float]:
    """One run in a fresh process importing ``reka_async`` from ``tree``."""
    out = subprocess.run(
        [sys.executable, __file__, "--probe", url, *_sizes(requests, streams)],
        env={**os.environ, "PYTHONPATH": tree},  # this file runs as a script: tree comes first
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.budget")
    parser.add_argument("--before", help="the checkout before the change")
    parser.add_argument("--after", default=".", help="the checkout after it (default: .)")
    parser.add_argument("--repeat", type=int, default=5, help="paired rounds (>= 5)")
    parser.add_argument("--requests", type=int, default=4_000, help="requests per run and API")
    parser.add_argument("--streams", type=int, default=40, help="streams per run")
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)  # one child run
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(measure_one(args.probe, args.requests, args.streams)))
        return 0
    if not args.before:
        parser.error("--before is required")
    sys.path.insert(0, str(Path(args.after).resolve()))
    from reka_async.testing import MockServerProcess

    trees = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    server = MockServerProcess()
    url = server.start()
    try:
        for round_ in range(args.repeat):
            for side in ("before", "after") if round_ % 2 == 0 else ("after", "before"):
                runs[side].append(_child(trees[side], url, args.requests, args.streams))
            print(f"round {round_ + 1}: before {runs['before'][-1]} after {runs['after'][-1]}")
    finally:
        server.stop()
    for key, unit in (("native", "request"), ("openai", "request"), ("chunk", "chunk")):
        before = [r[key] for r in runs["before"]]
        after = [r[key] for r in runs["after"]]
        ratios = [a / b for a, b in zip(after, before, strict=True)]
        print(
            f"{key:>6}: before {statistics.median(before):7.2f} µs per {unit}, after"
            f" {statistics.median(after):7.2f}; after/before median {statistics.median(ratios):.3f}"
            f" (rounds {min(ratios):.3f}-{max(ratios):.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
