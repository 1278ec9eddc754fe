"""The paired, long-stream and scale measurements of ``benchmarks.run`` (see its README)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from benchmarks._harness import Harness, log

__all__ = ["LONGSTREAM_VARIANTS", "FullHarness", "PairSpec", "pair_specs", "scale_cycles"]

#: (name, the mock's --native-stream, api): the three long-stream variants.
LONGSTREAM_VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("native cumulative", "cumulative", "native"),
    ("native delta", "delta", "native"),
    ("openai deltas", "cumulative", "openai"),
)

#: One paired run: (pair id, client, api, baseline, baseline api, concurrency, stream).
PairSpec = tuple[str, str, str, str, str, int, bool]


def pair_specs(levels: Sequence[int], dialect_c: int) -> list[PairSpec]:
    """The paired runs of the ``paired`` measurement, in run order (``sync`` not included)."""
    specs: list[PairSpec] = []
    for api in ("native", "openai"):
        specs += [
            (f"chat/{api}/C={c}", "reka_async", api, "aiohttp_raw", api, c, False) for c in levels
        ]
    for api in ("native", "openai"):
        specs.append((f"stream/{api}", "reka_async", api, "aiohttp_raw", api, 0, True))
    specs.append(
        (f"dialect/chat/C={dialect_c}", "reka_async", "openai", "reka_async", "native",
         dialect_c, False)
    )  # fmt: skip
    specs.append(("dialect/stream", "reka_async", "openai", "reka_async", "native", 0, True))
    return specs


def scale_cycles(concurrency: int, cycles: int | None) -> int:
    """Window length in latencies: ``cycles`` if given, else max(8, ceil(C / 80)).

    Measured ramp-up grows with C (about 3-4.5 s at C=4,096 and 2 s latency on the 2-core
    machine: 4,096 connects through the server's accept backlog); a window of C/80 cycles
    (104 s at C=4,096) keeps it near 4 % of the run there.
    """
    return cycles if cycles is not None else max(8, math.ceil(concurrency / 80))


class FullHarness(Harness):
    """`Harness` with the paired runs, long streams and BatchRunner at scale."""

    def _pair_args(self, url: str, spec: PairSpec, duration: float) -> list[str]:
        a = self.args
        _, _client, api, baseline, baseline_api, conc, stream = spec
        extra = [
            "--url",
            url,
            "--mode",
            "pair",
            "--api",
            api,
            "--baseline",
            baseline,
            "--baseline-api",
            baseline_api,
            "--concurrency",
            str(conc or a.stream_concurrency),
            "--duration",
            str(duration),
            "--warmup",
            str(a.warmup),
            "--slice",
            str(a.slice),
        ]
        return [*extra, "--stream"] if stream else extra

    def paired(self, url: str) -> None:
        """Every ratio target's pair, alternating in one process (see worker ``pair``)."""
        a = self.args
        specs = pair_specs(a.pair_levels, a.pair_concurrency)
        for rep in range(a.repeat):
            for spec in specs:
                pid, client = spec[0], spec[1]
                if a.clients is not None and not {client, spec[3]} <= set(a.clients):
                    continue
                extra = self._pair_args(url, spec, a.pair_duration)
                # Each of the two sides gets ``duration`` seconds: the run lasts twice that.
                timeout = a.warmup + 2 * a.pair_duration + 120.0
                r = self.worker("paired", client, extra, rep, timeout)
                if r is not None:
                    r["pair_id"] = pid
                    key = "ratio_cpu_per_chunk" if spec[6] else "ratio_req_per_s"
                    log(f"  [paired {rep + 1}/{a.repeat}] {pid:<22} {key} {r[key]:.3f}")
            if a.clients is None or "reka_async_sync" in a.clients:
                extra = [
                    "--url",
                    url,
                    "--mode",
                    "sync_pair",
                    "--concurrency",
                    "1",
                    "--duration",
                    str(a.pair_duration),
                    "--warmup",
                    str(a.warmup),
                    "--slice",
                    str(a.slice),
                ]
                timeout = a.warmup + 2 * a.pair_duration + 120.0
                r = self.worker("paired", "reka_async_sync", extra, rep, timeout)
                if r is not None:
                    r["pair_id"] = "sync"
                    log(
                        f"  [paired {rep + 1}/{a.repeat}] {'sync':<22} ratio_wall_per_req "
                        f"{r['ratio_wall_per_req']:.3f}"
                    )

    def longstream(self) -> None:
        """CPU per chunk against stream length, reka_async paired with raw aiohttp."""
        a = self.args
        if a.clients is not None and not {"reka_async", "aiohttp_raw"} <= set(a.clients):
            return
        for rep in range(a.longstream_repeat):
            for length in a.longstream_lengths:
                for variant, native_stream, api in LONGSTREAM_VARIANTS:
                    url = self.server(
                        f"long-{native_stream}-{length}",
                        0.0,
                        stream_chunks=length,
                        extra_args=["--native-stream", native_stream],
                    )
                    spec: PairSpec = (
                        variant, "reka_async", api, "aiohttp_raw", api,
                        a.longstream_concurrency, True,
                    )  # fmt: skip
                    # An N-word prompt: the reply (echo) has N + 3 words, every chunk has text.
                    extra = [
                        *self._pair_args(url, spec, a.longstream_duration),
                        "--prompt-words",
                        str(length),
                    ]
                    timeout = a.warmup + 2 * a.longstream_duration + 180.0
                    r = self.worker("longstream", "reka_async", extra, rep, timeout)
                    if r is not None:
                        r.update(variant=variant, length=length)
                        sides = r["pair"]
                        log(
                            f"  [longstream {rep + 1}/{a.longstream_repeat}] {variant:<17} "
                            f"{length:>5} chunks: ratio {r['ratio_cpu_per_chunk']:.3f} "
                            f"({sides['reka_async/' + api].get('cpu_us_per_chunk', 0):.1f} vs "
                            f"{sides['aiohttp_raw/' + api].get('cpu_us_per_chunk', 0):.1f} µs)"
                        )

    def batchscale(self) -> None:
        """BatchRunner and a raw aiohttp closed loop at C in --scale-concurrency, 2 s latency."""
        a = self.args
        url = self.server("scale", a.scale_latency_ms)
        clients = self.clients(("reka_async_batch", "aiohttp_raw"))
        for rep in range(a.scale_repeat):
            for conc in a.scale_concurrency:
                order = clients if (rep + conc) % 2 == 0 else clients[::-1]
                cycles = scale_cycles(conc, a.scale_cycles)
                for client in order:
                    extra = [
                        "--url",
                        url,
                        "--mode",
                        "scale",
                        "--concurrency",
                        str(conc),
                        "--latency-ms",
                        str(a.scale_latency_ms),
                        "--cycles",
                        str(cycles),
                    ]
                    timeout = (cycles + 4) * a.scale_latency_ms / 1000.0 + 180.0
                    r = self.worker("batchscale", client, extra, rep, timeout)
                    if r is not None:
                        flag = " RAMP-UP >= 5 %" if r["ramp_up_flag"] else ""
                        pct = r["pct_of_little"]
                        log(
                            f"  [batchscale {rep + 1}/{a.scale_repeat}] {client:<17} "
                            f"C={conc:<5} {r['req_per_s']:>8,.0f} req/s "
                            f"({'n/a' if pct is None else f'{pct:.1f}'} % of Little) "
                            f"RSS {r['peak_rss_kb'] / 1024:.0f} MB "
                            f"ramp-up {r['ramp_up_s'] or 0:.2f} s{flag}"
                        )


def describe_runs(results: dict[str, Any]) -> str:
    """A one-line count of the runs, for the log."""
    return f"{len(results['runs'])} runs, {len(results['errors'])} failed"
