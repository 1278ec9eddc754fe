"""The run's duration estimate, computed from its settings before anything runs.

Each worker process costs its run length plus `PROCESS_OVERHEAD_S` (interpreter start,
imports, connecting); each mock server `SERVER_START_S`. BatchRunner's RSS runs are estimated
at `RSS_REQ_PER_S`, the scale runs' ramp-up at C / 1,000 s (measured: 3-4.5 s at C=4,096).
The figures are planning figures for a 2-core machine, not measurements.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from benchmarks._clients import CHAT_CLIENTS, DIALECT_CLIENTS, STREAM_CLIENTS, SYNC_CLIENTS
from benchmarks._harness_more import LONGSTREAM_VARIANTS, pair_specs, scale_cycles

__all__ = ["PROCESS_OVERHEAD_S", "estimate"]

PROCESS_OVERHEAD_S = 1.5
SERVER_START_S = 1.5
RSS_REQ_PER_S = 2500.0


def _n(args: argparse.Namespace, names: Sequence[str]) -> int:
    return sum(1 for n in names if args.clients is None or n in args.clients)


def estimate(args: argparse.Namespace) -> dict[str, float]:
    """Estimated seconds per selected measurement (and ``total``)."""
    a = args
    run = a.warmup + a.duration + PROCESS_OVERHEAD_S
    pair = a.warmup + 2 * a.pair_duration + PROCESS_OVERHEAD_S
    # A slice waits for its streams in flight: long streams overrun their slices (measured:
    # each side about 2x its duration at 1,000 chunks); half again is the average allowance.
    long_run = a.warmup + 3 * a.longstream_duration + PROCESS_OVERHEAD_S
    dialect = _n(a, DIALECT_CLIENTS)
    out: dict[str, float] = {}
    if "chat" in a.only:
        n = _n(a, CHAT_CLIENTS) * len(a.concurrency) + dialect * len(a.openai_concurrency)
        out["chat"] = n * a.repeat * run + SERVER_START_S
    if "latency" in a.only:
        n = _n(a, a.latency_clients) * len(a.latency_concurrency)
        out["latency"] = n * a.repeat * run + SERVER_START_S
    if "stream" in a.only:
        out["stream"] = (_n(a, STREAM_CLIENTS) + dialect) * a.repeat * run
    if "sync" in a.only:
        out["sync"] = _n(a, SYNC_CLIENTS) * a.repeat * run
    if "paired" in a.only:
        n = len(pair_specs(a.pair_levels, a.pair_concurrency)) + 1
        out["paired"] = n * a.repeat * pair
    if "longstream" in a.only:
        n = len(LONGSTREAM_VARIANTS) * len(a.longstream_lengths)
        servers = 2 * len(a.longstream_lengths)
        out["longstream"] = n * a.longstream_repeat * long_run + servers * SERVER_START_S
    if "batchscale" in a.only:
        latency = a.scale_latency_ms / 1000.0
        per_rep = sum(
            2 * ((scale_cycles(c, a.scale_cycles) + 2.5) * latency + c / 1000.0)
            + 2 * PROCESS_OVERHEAD_S
            for c in a.scale_concurrency
        )
        out["batchscale"] = per_rep * a.scale_repeat + SERVER_START_S
    if "rss" in a.only:
        out["rss"] = a.rss_repeat * sum(
            items / RSS_REQ_PER_S + PROCESS_OVERHEAD_S for items in a.rss_items
        )
    out["total"] = sum(out.values())
    return out
