"""Measure one client in this process and print one JSON line: the benchmark's unit of work.

    python -m benchmarks.worker --client reka_async --url http://127.0.0.1:PORT/v1 \\
        --mode chat --concurrency 64 --duration 10 --warmup 1 [--cpu 1]

Modes:

* ``chat``: ``concurrency`` worker coroutines each send non-streaming requests in a loop until
  the deadline (``reka_async_batch`` instead feeds ``BatchRunner.stream()`` a generator that
  stops at the deadline). Counted: requests completed inside the measurement window.
* ``stream``: the same loop, each call one whole stream; chunks are counted too.
* ``sync``: ``reka_async_sync`` calls ``reka_async.Client.chat.create`` sequentially from
  plain synchronous code (``reka_async`` with ``--concurrency 1`` is its async twin).
* ``rss``: ``BatchRunner.stream()`` over ``--items`` lazily generated prompts, results
  discarded; reports the peak RSS (``VmHWM``, see `benchmarks._scale.maxrss_kb`) at the end.
* ``pair``: ``--client`` and ``--baseline`` in this one process, alternating every ``--slice``
  seconds (the order flipping each round) until each has had ``--duration`` seconds; reports
  both and their ratio. On a shared machine whose speed drifts over seconds, slices this short
  see the same machine, so the ratio is far steadier than one of medians of separate runs.
  Each side is a client and a dialect (``--api`` / ``--baseline-api``); ``--stream`` pairs
  whole streams (chunks counted per slice, so CPU per chunk is compared); ``--prompt-words N``
  sends an N-word prompt (the mock echoes it: long streams whose chunks all carry text).
* ``sync_pair``: the same for ``reka_async.Client`` (sync facade) against the async client,
  both making sequential calls (C=1).
* ``scale``: ``reka_async_batch`` (BatchRunner) or ``aiohttp_raw`` as a closed loop of
  ``--concurrency`` requests against a server of ``--latency-ms``; the window is placed by
  the run (see `benchmarks._scale`); reports Little's law %, ramp-up and peak RSS.

``--api native|openai`` picks the dialect of ``reka_async`` and ``aiohttp_raw`` (every other
client is native only). Every mode first raises RLIMIT_NOFILE's soft limit to the hard one.
The measurement window is described in `benchmarks._window`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._clients import APIS, ClientUnavailable, open_client
from benchmarks._common import API_KEY, MODEL, PROMPT, long_prompt, pin_self
from benchmarks._pair import import_sync_client, run_pair, run_sync_pair
from benchmarks._scale import maxrss_kb, raise_nofile_limit, run_scale
from benchmarks._window import Measurement, Window, WindowHook, gather_all
from benchmarks._window import measure as measure_window

MODES = ("chat", "stream", "sync", "rss", "pair", "sync_pair", "scale")


async def run_loop_client(
    name: str,
    url: str,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    stream: bool,
    api: str = "native",
    on_window: WindowHook | None = None,
) -> Measurement:
    """``concurrency`` coroutines calling the client in a loop until the deadline."""
    async with open_client(name, url, concurrency, stream=stream, api=api) as call:

        async def drive(window: Window) -> None:
            async def worker() -> None:
                while window.open():
                    window.done(await call())

            await gather_all([worker() for _ in range(concurrency)])

        return await measure_window(drive, warmup=warmup, duration=duration, on_window=on_window)


async def run_batch_client(
    url: str, *, concurrency: int, duration: float, warmup: float
) -> Measurement:
    """``BatchRunner.stream()`` over a generator that stops yielding at the deadline."""
    from reka_async import AsyncClient, BatchRunner

    async with AsyncClient(
        api_key=API_KEY, base_url=url, max_connections=max(concurrency, 1024)
    ) as client:
        # As the CLI runs it: the collector tuned at C >= 256 (opt-in since issue 25).
        runner = BatchRunner(client, concurrency=concurrency, model=MODEL, gc_tuning=True)

        async def drive(window: Window) -> None:
            def prompts() -> Iterator[str]:
                while window.open():
                    yield PROMPT

            async with runner.stream(prompts()) as results:
                async for result in results:
                    if result.error is not None:
                        raise result.error
                    window.done()

        return await measure_window(drive, warmup=warmup, duration=duration)


# --------------------------------------------------------------------------- sync facade


def run_sync_client(url: str, *, duration: float, warmup: float) -> Measurement:
    """Sequential ``reka_async.Client.chat.create`` calls from synchronous code."""
    client_cls = import_sync_client()
    client = client_cls(api_key=API_KEY, base_url=url)
    messages = [{"role": "user", "content": PROMPT}]
    try:
        gc.collect()
        window = Window(warmup=warmup, duration=duration, on_window=None)
        window.tick()
        while window.open():
            client.chat.create(messages=messages, model=MODEL)
            window.done()
        return window.result()
    finally:
        client.close()


# --------------------------------------------------------------------------- peak RSS


def _current_rss_kb() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


async def run_rss(url: str, *, items: int, concurrency: int) -> dict[str, Any]:
    """Drive ``BatchRunner.stream()`` over ``items`` generated prompts; report the peak RSS."""
    from reka_async import AsyncClient, BatchRunner

    samples: list[int] = []
    step = max(items // 10, 1)

    def prompts() -> Iterator[str]:
        for i in range(items):
            yield f"Prompt number {i}: write one short sentence."

    ok = failed = 0
    start_wall = time.perf_counter()
    start_cpu = time.process_time()
    async with AsyncClient(
        api_key=API_KEY, base_url=url, max_connections=max(concurrency, 1024)
    ) as client:
        # As the CLI runs it: the collector tuned at C >= 256 (opt-in since issue 25).
        runner = BatchRunner(client, concurrency=concurrency, model=MODEL, gc_tuning=True)
        baseline_kb = maxrss_kb()
        async with runner.stream(prompts()) as results:
            async for result in results:
                if result.ok:
                    ok += 1
                else:
                    failed += 1
                if (ok + failed) % step == 0:
                    rss = _current_rss_kb()
                    if rss is not None:
                        samples.append(rss)
    wall = time.perf_counter() - start_wall
    return {
        "items": items,
        "ok": ok,
        "failed": failed,
        "wall_s": wall,
        "cpu_s": time.process_time() - start_cpu,
        "req_per_s": (ok + failed) / wall if wall > 0 else 0.0,
        "baseline_maxrss_kb": baseline_kb,
        "peak_rss_kb": maxrss_kb(),
        "rss_samples_kb": samples,
    }


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.worker", description="Measure one client; print one JSON line."
    )
    parser.add_argument("--client", required=True)
    parser.add_argument("--url", required=True, help="the mock server's base URL (…/v1)")
    parser.add_argument("--mode", choices=MODES, default="chat")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--items", type=int, default=100_000, help="prompts (rss mode)")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--baseline", default="aiohttp_raw", help="the other client (pair mode)")
    parser.add_argument("--slice", type=float, default=0.5, help="seconds per slice (pair modes)")
    parser.add_argument("--api", choices=APIS, default="native", help="dialect of --client")
    parser.add_argument(
        "--baseline-api", choices=APIS, default=None, help="dialect of --baseline (default --api)"
    )
    parser.add_argument("--stream", action="store_true", help="pair mode: pair whole streams")
    parser.add_argument(
        "--prompt-words", type=int, default=None, help="pair mode: an N-word prompt"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=2000.0, help="the server's latency (scale mode)"
    )
    parser.add_argument(
        "--cycles", type=int, default=8, help="window length in latencies (scale mode)"
    )
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the requested measurement and return its JSON-able result."""
    if args.mode == "rss":
        return asyncio.run(run_rss(args.url, items=args.items, concurrency=args.concurrency))
    if args.mode == "scale":
        return asyncio.run(
            run_scale(
                args.client,
                args.url,
                concurrency=args.concurrency,
                latency_s=args.latency_ms / 1000.0,
                cycles=args.cycles,
            )
        )
    if args.mode == "pair":
        return asyncio.run(
            run_pair(
                ((args.client, args.api), (args.baseline, args.baseline_api or args.api)),
                args.url,
                concurrency=args.concurrency,
                duration=args.duration,
                warmup=args.warmup,
                slice_s=args.slice,
                stream=args.stream,
                prompt=PROMPT if args.prompt_words is None else long_prompt(args.prompt_words),
            )
        )
    if args.mode == "sync_pair":
        return run_sync_pair(
            args.url, duration=args.duration, warmup=args.warmup, slice_s=args.slice
        )
    if args.mode == "sync" and args.client == "reka_async_sync":
        m = run_sync_client(args.url, duration=args.duration, warmup=args.warmup)
    elif args.client == "reka_async_batch":
        if args.mode != "chat":
            raise ValueError("reka_async_batch only runs in chat mode")
        m = asyncio.run(
            run_batch_client(
                args.url, concurrency=args.concurrency, duration=args.duration, warmup=args.warmup
            )
        )
    else:
        m = asyncio.run(
            run_loop_client(
                args.client,
                args.url,
                concurrency=args.concurrency,
                duration=args.duration,
                warmup=args.warmup,
                stream=args.mode == "stream",
                api=args.api,
            )
        )
    return m.as_dict()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pinned = pin_self(args.cpu)
    raise_nofile_limit()
    header: dict[str, Any] = {
        "client": args.client,
        "mode": args.mode,
        "api": args.api,
        "concurrency": args.concurrency,
    }
    if args.mode == "pair":
        header.update(
            baseline=args.baseline,
            baseline_api=args.baseline_api or args.api,
            stream=args.stream,
            prompt_words=args.prompt_words,
        )
    try:
        result = measure(args)
    except ClientUnavailable as exc:
        print(json.dumps({**header, "skipped": str(exc)}), flush=True)
        return 0
    except Exception as exc:
        traceback.print_exc()
        print(json.dumps({**header, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({**header, "pinned_cpu": args.cpu if pinned else None, **result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
