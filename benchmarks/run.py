"""Run the reka_async benchmarks: ``python -m benchmarks.run [--quick]``.

Starts the mock Reka server in its own process (pinned to one CPU where possible), then runs
every measurement with each client in a fresh worker process (pinned to another CPU), clients
interleaved round-robin within each repetition. Writes ``results.json`` (every run, machine
info), ``results.md`` (medians, ratios, targets) and ``throughput.png`` to
``benchmarks/results/`` (``benchmarks/results/quick/`` with ``--quick``).
See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._clients import CHAT_CLIENTS, LABELS
from benchmarks._common import REPO_ROOT, load_average, machine_info
from benchmarks._harness import log as _log
from benchmarks._harness_more import FullHarness as Harness
from benchmarks._plan import estimate
from benchmarks._report import markdown, plot_throughput, summarise
from benchmarks._scale import raise_nofile_limit
from benchmarks._targets import targets

MEASUREMENTS: Final = (
    "chat",
    "latency",
    "stream",
    "sync",
    "paired",
    "longstream",
    "batchscale",
    "rss",
)
RESULTS_DIR: Final = REPO_ROOT / "benchmarks" / "results"
#: The clients of the slow-server runs by default (the others add nothing there).
LATENCY_CLIENTS: Final = ("reka_async", "reka_async_batch", "aiohttp_raw", "reka_api")

#: Defaults of a full run (about 46 minutes on 2 cores: see `benchmarks._plan`) and of --quick.
FULL: Final[dict[str, object]] = {
    "duration": 3.0,
    "warmup": 1.0,
    "repeat": 3,
    "rss_items": "10000,100000",
    "pair_duration": 5.0,
    "longstream_duration": 3.0,
    "longstream_lengths": "64,250,1000",
    "scale_concurrency": "256,1024,4096",
    "scale_latency_ms": 2000.0,
    "scale_repeat": 3,
    "longstream_repeat": 5,
}
QUICK: Final[dict[str, object]] = {
    "duration": 1.0,
    "warmup": 0.2,
    "repeat": 1,
    "rss_items": "2000,20000",
    "pair_duration": 0.6,
    "longstream_duration": 0.6,
    "longstream_lengths": "8,32",
    "scale_concurrency": "16,64",
    "scale_latency_ms": 50.0,
    "scale_repeat": 1,
    "longstream_repeat": 1,
}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _name_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [x.strip() for x in text.split(",") if x.strip()]
        unknown = sorted(set(names) - set(choices))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(choices)}")
        return names

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark reka_async against raw aiohttp, httpx and reka-api.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: every measurement at a tiny scale, 1 repetition; writes results/quick/",
    )
    parser.add_argument(
        "--only",
        type=_name_list(MEASUREMENTS),
        default=list(MEASUREMENTS),
        help=f"comma-separated measurements to run (default: all of {','.join(MEASUREMENTS)})",
    )
    parser.add_argument(
        "--clients",
        type=_name_list(tuple(LABELS)),
        default=None,
        help=f"comma-separated clients to include (default: all of {','.join(LABELS)})",
    )
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=None, help="unmeasured seconds per run")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per measurement")
    parser.add_argument(
        "--concurrency",
        type=_int_list,
        default=[1, 16, 64, 256],
        help="concurrencies of the latency-0 throughput runs (default 1,16,64,256)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=200.0, help="server latency of the slow-server runs"
    )
    parser.add_argument(
        "--latency-concurrency",
        type=_int_list,
        default=[64, 256],
        help="concurrencies of the slow-server runs (default 64,256)",
    )
    parser.add_argument(
        "--stream-concurrency", type=int, default=16, help="concurrency of the streaming runs"
    )
    parser.add_argument("--stream-chunks", type=int, default=64, help="events per stream")
    parser.add_argument(
        "--rss-items",
        type=_int_list,
        default=None,
        help="prompt counts of the RSS runs (default 100000,1000000; quick 2000,20000)",
    )
    parser.add_argument(
        "--rss-concurrency", type=int, default=64, help="BatchRunner concurrency of RSS runs"
    )
    parser.add_argument("--rss-repeat", type=int, default=1, help="fresh processes per RSS size")
    parser.add_argument(
        "--pair-concurrency",
        type=int,
        default=64,
        help="concurrency of the paired OpenAI-vs-native reka_async run (default 64)",
    )
    parser.add_argument(
        "--pair-levels",
        type=_int_list,
        default=[1, 64, 256],
        help="concurrencies of the paired reka_async / aiohttp_raw runs, each dialect",
    )
    parser.add_argument(
        "--pair-duration", type=float, default=None, help="seconds per side of a paired run"
    )
    parser.add_argument(
        "--openai-concurrency",
        type=_int_list,
        default=[1, 64, 256],
        help="concurrencies of the OpenAI-dialect chat runs (default 1,64,256)",
    )
    parser.add_argument(
        "--latency-clients",
        type=_name_list(CHAT_CLIENTS),
        default=list(LATENCY_CLIENTS),
        help=f"clients of the slow-server runs (default {','.join(LATENCY_CLIENTS)})",
    )
    parser.add_argument(
        "--longstream-lengths",
        type=_int_list,
        default=None,
        help="chunks per stream of the long-stream runs (default 64,250,1000; quick 8,32)",
    )
    parser.add_argument(
        "--longstream-concurrency", type=int, default=16, help="concurrency of long streams"
    )
    parser.add_argument(
        "--longstream-duration", type=float, default=None, help="seconds per side, long streams"
    )
    parser.add_argument(
        "--scale-concurrency",
        type=_int_list,
        default=None,
        help="concurrencies of BatchRunner at scale (default 256,1024,4096; quick 16,64)",
    )
    parser.add_argument(
        "--scale-latency-ms",
        type=float,
        default=None,
        help="server latency of BatchRunner at scale (default 2000; quick 50)",
    )
    parser.add_argument(
        "--scale-cycles",
        type=int,
        default=None,
        help="window of a scale run in latencies (default max(8, ceil(C / 80)))",
    )
    parser.add_argument(
        "--scale-repeat", type=int, default=None, help="fresh processes per scale level"
    )
    parser.add_argument(
        "--longstream-repeat",
        type=int,
        default=None,
        help="paired runs per long-stream variant and length (default 5; quick 1)",
    )
    parser.add_argument(
        "--slice",
        type=float,
        default=0.5,
        help="seconds per slice in the paired runs, clients alternating (default 0.5)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default benchmarks/results[/quick])"
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    defaults = QUICK if args.quick else FULL
    if args.duration is None:
        args.duration = float(str(defaults["duration"]))
    if args.warmup is None:
        args.warmup = float(str(defaults["warmup"]))
    if args.repeat is None:
        args.repeat = int(str(defaults["repeat"]))
    for name in ("rss_items", "longstream_lengths", "scale_concurrency"):
        if getattr(args, name) is None:
            setattr(args, name, _int_list(str(defaults[name])))
    for name in ("pair_duration", "longstream_duration", "scale_latency_ms"):
        if getattr(args, name) is None:
            setattr(args, name, float(str(defaults[name])))
    if args.scale_repeat is None:
        args.scale_repeat = int(str(defaults["scale_repeat"]))
    if args.longstream_repeat is None:
        args.longstream_repeat = int(str(defaults["longstream_repeat"]))
    if args.out is None:
        args.out = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR
    if args.duration <= 0 or args.warmup < 0 or args.repeat < 1:
        parser.error("--duration must be > 0, --warmup >= 0 and --repeat >= 1")
    if args.slice <= 0 or args.pair_concurrency < 1:
        parser.error("--slice must be > 0 and --pair-concurrency >= 1")
    if args.pair_duration <= 0 or args.longstream_duration <= 0:
        parser.error("--pair-duration and --longstream-duration must be > 0")
    if args.longstream_repeat < 1:
        parser.error("--longstream-repeat must be >= 1")
    if args.scale_latency_ms <= 0 or args.scale_repeat < 1 or (args.scale_cycles or 1) < 1:
        parser.error("--scale-latency-ms must be > 0, --scale-repeat and --scale-cycles >= 1")
    return args


def _notes(args: argparse.Namespace, harness: Harness, packages: dict[str, Any]) -> list[str]:
    notes = [harness.pin_note]
    if args.quick:
        notes.append(
            "Quick mode: short runs and one repetition; the numbers are a smoke test, not a "
            "measurement. Targets judged on them are indicative only."
        )
    limit = "100"
    with contextlib.suppress(Exception):
        import httpx

        limit = str(httpx.Limits().max_connections or httpx._config.DEFAULT_LIMITS.max_connections)
    notes.append(
        "reka-api is used as shipped: `AsyncReka(api_key=..., base_url=...)` and "
        "`await client.chat.create(messages=[ChatMessage(...)], model=...)`; its internal "
        f"httpx.AsyncClient keeps httpx's default pool (max {limit} connections), so above "
        f"C={limit} its extra requests queue inside httpx. The SDK never closes that httpx "
        "client (no close()/async with); the harness closes it at the end of each run via "
        "`client._client_wrapper.httpx_client.httpx_client.aclose()`."
    )
    notes.append(
        "reka-api's `chat.create_stream` is an async generator function (its docstring shows "
        "`await`, which would fail): the harness iterates it with `async for`."
    )
    orjson = "installed" if packages.get("orjson") else "not installed"
    notes.append(
        f"reka_async decodes with orjson when it is installed ({orjson} here); the raw "
        "aiohttp/httpx baselines decode with the standard library's json.loads, as a typical "
        "hand-written client would. `aiohttp_raw` neither builds typed objects nor serialises "
        "per request."
    )
    notes.append(
        "httpx is sized for each run: `httpx.Limits(max_connections=C, "
        "max_keepalive_connections=C)`; aiohttp uses `TCPConnector(limit=0)`; reka_async "
        "uses its default pool (1024 connections)."
    )
    notes.append(
        "The mock server (`python -m reka_async.testing`) does not record requests when run "
        "standalone (record_requests=False), so its memory stays flat over long runs. It runs "
        "with uvloop when uvloop is installed; the clients always use the default asyncio loop."
    )
    return notes


def run(args: argparse.Namespace) -> int:
    """Run the selected measurements and write the reports; return the exit status."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    started = time.monotonic()
    raise_nofile_limit()  # the mock servers inherit it (4,096 connections at scale)
    plan = estimate(args)
    _log(
        "estimated run time: "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in plan.items() if k != "total")
        + f"; total {plan['total'] / 60:.1f} min"
    )
    with Harness(args) as harness:
        _log(harness.pin_note)
        if "chat" in args.only:
            harness.throughput("chat", harness.server("fast", 0.0), args.concurrency, "chat")
        if "latency" in args.only:
            url = harness.server("slow", args.latency_ms)
            harness.throughput("latency", url, args.latency_concurrency, "chat")
        if "stream" in args.only:
            url = harness.server("fast", 0.0)
            harness.throughput("stream", url, [args.stream_concurrency], "stream")
        if "sync" in args.only:
            harness.sync(harness.server("fast", 0.0))
        if "paired" in args.only:
            harness.paired(harness.server("fast", 0.0))
        if "longstream" in args.only:
            harness.longstream()
        if "batchscale" in args.only:
            harness.batchscale()
        if "rss" in args.only:
            harness.rss(harness.server("fast", 0.0))
        servers = {name: s.describe() for name, s in harness.servers.items()}

    settings = {
        "quick": args.quick,
        "only": args.only,
        "clients": args.clients or list(LABELS),
        "duration": args.duration,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "latency_concurrency": args.latency_concurrency,
        "stream_concurrency": args.stream_concurrency,
        "stream_chunks": args.stream_chunks,
        "pair_concurrency": args.pair_concurrency,
        "pair_levels": args.pair_levels,
        "pair_duration": args.pair_duration,
        "openai_concurrency": args.openai_concurrency,
        "latency_clients": args.latency_clients,
        "slice": args.slice,
        "longstream_lengths": args.longstream_lengths,
        "longstream_concurrency": args.longstream_concurrency,
        "longstream_duration": args.longstream_duration,
        "scale_concurrency": args.scale_concurrency,
        "scale_latency_ms": args.scale_latency_ms,
        "scale_cycles": args.scale_cycles,
        "scale_repeat": args.scale_repeat,
        "longstream_repeat": args.longstream_repeat,
        "rss_items": args.rss_items,
        "rss_concurrency": args.rss_concurrency,
        "rss_repeat": args.rss_repeat,
        "pinning": {
            "server_cpu": harness.server_cpu,
            "client_cpu": harness.client_cpu,
            "note": harness.pin_note,
        },
    }
    summary = summarise(harness.runs, settings)
    results: dict[str, Any] = {
        "meta": {
            "command": f"python -m benchmarks.run {shlex.join(args.argv)}".strip(),
            "argv": args.argv,
            "python_executable": sys.executable,
            "machine": machine,
            "servers": servers,
            "elapsed_s": round(time.monotonic() - started, 1),
            "estimated_s": round(plan["total"], 1),
            "load_average_at_end": load_average(),
        },
        "settings": settings,
        "notes": _notes(args, harness, machine["packages"]),
        "runs": harness.runs,
        "skipped": harness.skipped,
        "errors": harness.errors,
        "summary": summary,
        "targets": targets(summary, settings),
        "plot": None,
    }
    plot_note = plot_throughput(summary, out / "throughput.png")
    if plot_note is None:
        results["plot"] = "throughput.png"
    else:
        results["notes"].append(plot_note)
    if harness.skipped:
        results["notes"].append(
            "Skipped: "
            + "; ".join(
                f"{s['measurement']}/{s['client']}: {s['skipped']}" for s in harness.skipped
            )
        )
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report = markdown(results)
    (out / "results.md").write_text(report + "\n", encoding="utf-8")
    print(report)
    _log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    if harness.errors:
        _log(f"{len(harness.errors)} run(s) failed; see results.json 'errors'")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
