"""Profile one client's request path under cProfile, against a mock server subprocess.

    python -m benchmarks.profile_hotpath                      # reka_async, C=64, ~5 s
    python -m benchmarks.profile_hotpath --client aiohttp_raw # the physical limit, to compare
    python -m benchmarks.profile_hotpath --stream             # the streaming path

Prints the top functions by cumulative and by own time, and the profiled CPU per request.
The output is for reading (PR notes), not for committing; cProfile inflates the cost of every
Python call, so compare clients under the profiler with each other, not with run.py's numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._clients import LABELS, STREAM_CLIENTS
from benchmarks._common import MockServerProcess, cpu_plan, pin_self
from benchmarks.worker import run_loop_client


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_hotpath")
    parser.add_argument(
        "--client",
        default="reka_async",
        choices=[c for c in LABELS if c not in ("reka_async_batch", "reka_async_sync")],
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0, help="profiled seconds")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--top", type=int, default=30, help="rows per table")
    parser.add_argument("--stream", action="store_true", help="profile streaming instead")
    parser.add_argument("--stream-chunks", type=int, default=64)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--save", type=Path, default=None, help="also dump the raw pstats here")
    args = parser.parse_args(argv)
    if args.stream and args.client not in STREAM_CLIENTS:
        parser.error(f"--stream supports {', '.join(STREAM_CLIENTS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server_cpu, client_cpu, note = cpu_plan(not args.no_pin)
    profiler = cProfile.Profile()
    with MockServerProcess(stream_chunks=args.stream_chunks, cpu=server_cpu) as server:
        pin_self(client_cpu)

        def on_window(opening: bool) -> None:
            # Only the measurement window: imports, connection set-up and the drain stay out.
            if opening:
                profiler.enable()
            else:
                profiler.disable()

        result = asyncio.run(
            run_loop_client(
                args.client,
                server.url,
                concurrency=args.concurrency,
                duration=args.duration,
                warmup=args.warmup,
                stream=args.stream,
                on_window=on_window,
            )
        ).as_dict()

    what = "stream" if args.stream else "request"
    print(f"# {LABELS[args.client]}, C={args.concurrency}, {note}")
    print(
        f"# under cProfile: {result['requests']} {what}s in {result['wall_s']:.2f} s, "
        f"{result['cpu_us_per_req']:.0f} µs CPU per {what}"
        + (f", {result['cpu_us_per_chunk']:.1f} µs per chunk" if args.stream else "")
    )
    for order in ("cumulative", "tottime"):
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.strip_dirs().sort_stats(order).print_stats(args.top)
        print(f"\n## top {args.top} by {order}\n")
        print(buf.getvalue())
    if args.save is not None:
        profiler.dump_stats(str(args.save))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
