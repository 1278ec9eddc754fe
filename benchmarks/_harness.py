"""The harness of ``benchmarks.run``: mock servers, worker processes, the measurements.

Each measurement runs every client in a fresh worker process (``python -m benchmarks.worker``,
pinned to the client CPU), clients interleaved round-robin within each repetition. The
paired, long-stream and scale measurements live in `benchmarks._harness_more`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from benchmarks._clients import CHAT_CLIENTS, DIALECT_CLIENTS, STREAM_CLIENTS, SYNC_CLIENTS
from benchmarks._common import REPO_ROOT, MockServerProcess, child_env, cpu_plan

__all__ = ["Harness", "log"]

_H = TypeVar("_H", bound="Harness")


def log(message: str) -> None:
    """One progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


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

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def server(
        self,
        name: str,
        latency_ms: float,
        *,
        stream_chunks: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> str:
        """The URL of the named mock server, started on first use.

        Every server serves both dialects (``/v1/chat`` and ``/v1/chat/completions``).
        """
        server = self.servers.get(name)
        if server is None:
            server = MockServerProcess(
                latency_ms=latency_ms,
                stream_chunks=stream_chunks or self.args.stream_chunks,
                cpu=self.server_cpu,
                log_path=self.args.out / f"mock-{name}.log",
                extra_args=extra_args,
            )
            self._stack.enter_context(server)
            self.servers[name] = server
            log(f"mock server '{name}' ({latency_ms:g} ms) at {server.url} [{server.pinned_with}]")
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
            log(f"  {measurement} {client}: TIMEOUT")
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
            log(f"  {measurement} {client}: skipped ({data['skipped']})")
            return None
        if proc.returncode != 0 or not data or "error" in data:
            tail = proc.stderr.strip().splitlines()[-5:]
            record.setdefault("error", f"exit status {proc.returncode}")
            record["stderr_tail"] = tail
            self.errors.append(record)
            log(f"  {measurement} {client}: FAILED {record['error']}\n    " + "\n    ".join(tail))
            return None
        if data.get("failed"):
            record["error"] = f"{data['failed']} items failed"
            self.errors.append(record)
        self.runs.append(record)
        return record

    # ---------------------------------------------------------------- measurements

    def throughput(self, measurement: str, url: str, levels: Sequence[int], mode: str) -> None:
        """Separate-process runs: every client at every level, native dialect; then the
        dialect clients on the OpenAI dialect (``chat``: at ``--openai-concurrency``)."""
        a = self.args
        if mode == "stream":
            candidates: Sequence[str] = STREAM_CLIENTS
        elif measurement == "latency":
            candidates = a.latency_clients
        else:
            candidates = CHAT_CLIENTS
        names = self.clients(candidates)
        plan: list[tuple[int, str, str]] = [(c, n, "native") for c in levels for n in names]
        if measurement != "latency":
            openai_levels = levels if mode == "stream" else a.openai_concurrency
            dialect = self.clients(DIALECT_CLIENTS)
            plan += [(c, n, "openai") for c in openai_levels for n in dialect]
        for rep in range(a.repeat):
            # Rotate the order each repetition so no client always runs first or last.
            shift = rep % len(plan) if plan else 0
            for conc, client, api in sorted(plan[shift:] + plan[:shift], key=lambda p: p[0]):
                extra = [
                    "--url",
                    url,
                    "--mode",
                    mode,
                    "--api",
                    api,
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
                    log(
                        f"  [{measurement} {rep + 1}/{a.repeat}] {client:<17} {api:<6} "
                        f"C={conc:<4} {r['req_per_s']:>9,.0f} req/s  {what}"
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
                    log(
                        f"  [sync {rep + 1}/{a.repeat}] {client:<17} "
                        f"{r['wall_us_per_req']:,.0f} µs/call"
                    )

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
                    log(
                        f"  [rss {rep + 1}/{a.rss_repeat}] {items:>9,} prompts: peak RSS "
                        f"{r['peak_rss_kb'] / 1024:.1f} MB ({r['req_per_s']:,.0f} req/s)"
                    )
