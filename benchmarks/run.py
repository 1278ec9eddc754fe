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
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._clients import CHAT_CLIENTS, LABELS, STREAM_CLIENTS, SYNC_CLIENTS
from benchmarks._common import (
    REPO_ROOT,
    MockServerProcess,
    child_env,
    cpu_plan,
    load_average,
    machine_info,
)
from benchmarks._report import REFERENCE, markdown, plot_throughput, summarise, targets

MEASUREMENTS: Final = ("chat", "latency", "stream", "sync", "paired", "rss")
RESULTS_DIR: Final = REPO_ROOT / "benchmarks" / "results"

FULL: Final = {"duration": 10.0, "warmup": 1.0, "repeat": 3, "rss_items": "100000,1000000"}
QUICK: Final = {"duration": 1.0, "warmup": 0.2, "repeat": 1, "rss_items": "2000,20000"}


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
        help="smoke run: 1 s runs, 1 repetition, 2k/20k RSS prompts; writes results/quick/",
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
        help="concurrency of the paired reka_async / aiohttp_raw run (default 64)",
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
        args.duration = defaults["duration"]
    if args.warmup is None:
        args.warmup = defaults["warmup"]
    if args.repeat is None:
        args.repeat = defaults["repeat"]
    if args.rss_items is None:
        args.rss_items = _int_list(str(defaults["rss_items"]))
    if args.out is None:
        args.out = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR
    if args.duration <= 0 or args.warmup < 0 or args.repeat < 1:
        parser.error("--duration must be > 0, --warmup >= 0 and --repeat >= 1")
    if args.slice <= 0 or args.pair_concurrency < 1:
        parser.error("--slice must be > 0 and --pair-concurrency >= 1")
    return args


# --------------------------------------------------------------------------- running


class Harness:
    """Runs worker processes and collects their results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server_cpu, self.client_cpu, self.pin_note = cpu_plan(not args.no_pin)
        self.runs: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.servers: dict[str, MockServerProcess] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def server(self, name: str, latency_ms: float) -> str:
        """The URL of the named mock server, started on first use."""
        server = self.servers.get(name)
        if server is None:
            server = MockServerProcess(
                latency_ms=latency_ms,
                stream_chunks=self.args.stream_chunks,
                cpu=self.server_cpu,
                log_path=self.args.out / f"mock-{name}.log",
            )
            self._stack.enter_context(server)
            self.servers[name] = server
            _log(f"mock server '{name}' ({latency_ms:g} ms) at {server.url} [{server.pinned_with}]")
        return server.url

    def clients(self, candidates: Sequence[str]) -> list[str]:
        wanted = self.args.clients
        return [c for c in candidates if wanted is None or c in wanted]

    def worker(
        self, measurement: str, client: str, extra: list[str], rep: int, timeout: float
    ) -> dict[str, Any] | None:
        """Run one worker process; record and return its result (None if skipped/failed)."""
        cmd = [sys.executable, "-m", "benchmarks.worker", "--client", client, *extra]
        if self.client_cpu is not None:
            cmd += ["--cpu", str(self.client_cpu)]
        record: dict[str, Any] = {"measurement": measurement, "client": client, "rep": rep}
        try:
            proc = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            record["error"] = f"timed out after {timeout:.0f} s"
            self.errors.append(record)
            _log(f"  {measurement} {client}: TIMEOUT")
            return None
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        data: dict[str, Any] = {}
        if lines:
            with contextlib.suppress(ValueError):
                data = json.loads(lines[-1])
        record.update(data)
        if "skipped" in data:
            if not any(
                s["client"] == client and s["measurement"] == measurement for s in self.skipped
            ):
                self.skipped.append(record)
            _log(f"  {measurement} {client}: skipped ({data['skipped']})")
            return None
        if proc.returncode != 0 or not data or "error" in data:
            tail = proc.stderr.strip().splitlines()[-5:]
            record.setdefault("error", f"exit status {proc.returncode}")
            record["stderr_tail"] = tail
            self.errors.append(record)
            _log(f"  {measurement} {client}: FAILED {record['error']}\n    " + "\n    ".join(tail))
            return None
        if data.get("failed"):
            record["error"] = f"{data['failed']} items failed"
            self.errors.append(record)
        self.runs.append(record)
        return record

    # ---------------------------------------------------------------- measurements

    def throughput(self, measurement: str, url: str, levels: Sequence[int], mode: str) -> None:
        a = self.args
        candidates = STREAM_CLIENTS if mode == "stream" else CHAT_CLIENTS
        names = self.clients(candidates)
        for rep in range(a.repeat):
            # Rotate the order each repetition so no client always runs first or last.
            order = names[rep % len(names) :] + names[: rep % len(names)] if names else []
            for conc in levels:
                for client in order:
                    extra = [
                        "--url",
                        url,
                        "--mode",
                        mode,
                        "--concurrency",
                        str(conc),
                        "--duration",
                        str(a.duration),
                        "--warmup",
                        str(a.warmup),
                    ]
                    timeout = a.warmup + a.duration + 120.0
                    r = self.worker(measurement, client, extra, rep, timeout)
                    if r is not None:
                        r["latency_ms"] = a.latency_ms if measurement == "latency" else 0.0
                        what = (
                            f"{r['cpu_us_per_chunk']:.1f} µs CPU/chunk"
                            if mode == "stream"
                            else f"{r['cpu_us_per_req']:.0f} µs CPU/req"
                        )
                        _log(
                            f"  [{measurement} {rep + 1}/{a.repeat}] {client:<17} C={conc:<4} "
                            f"{r['req_per_s']:>9,.0f} req/s  {what}"
                        )

    def sync(self, url: str) -> None:
        a = self.args
        names = self.clients(SYNC_CLIENTS)
        for rep in range(a.repeat):
            order = names[rep % len(names) :] + names[: rep % len(names)] if names else []
            for client in order:
                extra = [
                    "--url",
                    url,
                    "--mode",
                    "sync",
                    "--concurrency",
                    "1",
                    "--duration",
                    str(a.duration),
                    "--warmup",
                    str(a.warmup),
                ]
                r = self.worker("sync", client, extra, rep, a.warmup + a.duration + 120.0)
                if r is not None:
                    _log(
                        f"  [sync {rep + 1}/{a.repeat}] {client:<17} "
                        f"{r['wall_us_per_req']:,.0f} µs/call"
                    )

    def paired(self, url: str) -> None:
        """The two ratio targets, each pair alternating in one process (see worker ``pair``)."""
        a = self.args
        pairs = [
            (
                "reka_async",
                "pair",
                ["--baseline", REFERENCE, "--concurrency", str(a.pair_concurrency)],
            ),
            ("reka_async_sync", "sync_pair", ["--concurrency", "1"]),
        ]
        for rep in range(a.repeat):
            for client, mode, options in pairs:
                if a.clients is not None and client not in a.clients:
                    continue
                extra = [
                    "--url",
                    url,
                    "--mode",
                    mode,
                    *options,
                    "--duration",
                    str(a.duration),
                    "--warmup",
                    str(a.warmup),
                    "--slice",
                    str(a.slice),
                ]
                # Each of the two clients gets ``duration`` seconds: the run lasts twice that.
                r = self.worker("paired", client, extra, rep, a.warmup + 2 * a.duration + 120.0)
                if r is not None:
                    key = "ratio_req_per_s" if mode == "pair" else "ratio_wall_per_req"
                    _log(f"  [paired {rep + 1}/{a.repeat}] {client:<17} {key} {r[key]:.3f}")

    def rss(self, url: str) -> None:
        a = self.args
        if a.clients is not None and "reka_async_batch" not in a.clients:
            return
        for rep in range(a.rss_repeat):
            for items in a.rss_items:
                extra = [
                    "--url",
                    url,
                    "--mode",
                    "rss",
                    "--items",
                    str(items),
                    "--concurrency",
                    str(a.rss_concurrency),
                ]
                # Generous: even a slow, shared machine does 100 req/s.
                r = self.worker("rss", "reka_async_batch", extra, rep, items / 100.0 + 300.0)
                if r is not None:
                    _log(
                        f"  [rss {rep + 1}/{a.rss_repeat}] {items:>9,} prompts: peak RSS "
                        f"{r['peak_rss_kb'] / 1024:.1f} MB ({r['req_per_s']:,.0f} req/s)"
                    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
        "slice": args.slice,
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
