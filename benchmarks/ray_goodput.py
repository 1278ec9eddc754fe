"""Goodput of a Ray Data job under a rate limit: how much of a token bucket's allowance two
actors use together, with the mapper's defaults (no ``rpm``: the clients learn the rate).
Numbers, not assertions (issue 27's target is in the README: >= 90 % of the limit, <= 5 %
of requests refused, every item ok).

Run: ``python -m benchmarks.ray_goodput`` (about a minute after Ray has started;
``--quick`` for 300 items, not written; ``--kind``, ``--items``, ``--actors`` to vary it).

The mock runs in a thread of the driver (``MockRekaServer.in_thread``), which otherwise only
waits for the job's rows: the actors reach it over the network, like a real API, and its
own records give the timeline. ``map_chat`` runs ``--actors`` actors (2) with every other
option at its default (32 requests in flight per actor, batches of 8 rows, the shared actor
``map_chat`` starts for more than one actor, made here to read its counters). Reported: ok
answers per second over the server's span (its first request to its last answer) as a share
of the limit, the share of requests refused with a 429 (overall, and after the first second:
the first wave against an unknown limit on its own), and the rows not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from reka_async.testing import MockRekaServer

RESULTS = Path(__file__).resolve().parent / "results" / "ray_goodput"
LIMIT = 50
LATENCY_S = 0.3


def _run(kind: str, items: int, actors: int) -> dict[str, Any]:
    import ray
    from ray.data import DataContext

    from reka_async.integrations.ray import create_rate_limiter, map_chat

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
        configure_logging=True,
    )
    DataContext.get_current().enable_progress_bars = False
    try:
        with MockRekaServer.in_thread(
            rate_limit=f"{LIMIT}/s", rate_limit_kind=kind, latency_s=LATENCY_S
        ) as server:
            rows_in = [{"custom_id": str(i), "prompt": f"item {i}"} for i in range(items)]
            # The shared actor map_chat starts for more than one actor by default, made
            # here to read its counters afterwards.
            shared = create_rate_limiter() if actors > 1 else None
            started = time.monotonic()
            mapped = map_chat(
                ray.data.from_items(rows_in),
                num_actors=actors,
                limiter=shared,
                api_key="bench-key",
                base_url=server.base_url,
            )
            rows: list[dict[str, Any]] = []
            for batch in mapped.iter_batches(batch_format="pyarrow", batch_size=None):
                rows.extend(batch.to_pylist())
            wall = time.monotonic() - started
            received = sorted((r.received_at, r.fault) for r in server.requests)
            admitted, refused = server.limiter.admitted, server.limiter.refused
            pacing = ray.get(shared.stats.remote()) if shared is not None else {}
    finally:
        ray.shutdown()
    first = received[0][0]
    span = received[-1][0] + LATENCY_S - first
    late = [fault for at, fault in received if at >= first + 1.0]
    late_refused = sum(1 for fault in late if fault == "rate_limit")
    ok = sum(1 for r in rows if r["ok"])
    seconds: dict[int, list[int]] = {}
    for at, fault in received:
        counts = seconds.setdefault(int(at - first), [0, 0])
        counts[fault == "rate_limit"] += 1
    return {
        "kind": kind,
        "items": items,
        "actors": actors,
        "rows": len(rows),
        "ok": ok,
        "not_ok": len(rows) - ok,
        "errors": sorted({r["error_type"] for r in rows if not r["ok"]}),
        "custom_ids_unique": len({r["custom_id"] for r in rows}) == items,
        "wall_s_with_ray_start": round(wall, 3),
        "server_span_s": round(span, 3),
        "throughput_rps": round(admitted / span, 2),
        "share_of_limit": round(admitted / span / LIMIT, 4),
        "attempts": admitted + refused,
        "admitted": admitted,
        "refused_429": refused,
        "refused_share": round(refused / (admitted + refused), 4),
        "refused_first_second": refused - late_refused,
        "refused_share_after_first_second": round(late_refused / len(late), 4) if late else 0.0,
        "shared_actor": {k: v for k, v in pacing.items() if k.startswith("pacing_")},
        "admitted_refused_per_second": [seconds.get(i, [0, 0]) for i in range(int(span) + 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 items; nothing written")
    parser.add_argument("--kind", default="bucket", help="the limiter kind (default: bucket)")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--actors", type=int, default=2)
    args = parser.parse_args()
    items = 300 if args.quick else args.items
    load_before = os.getloadavg()
    row = _run(args.kind, items, args.actors)
    load_after = os.getloadavg()
    report = {
        "command": "python -m benchmarks.ray_goodput " + " ".join(sys.argv[1:]),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "ray": __import__("ray").__version__,
        "limit_rps": LIMIT,
        "latency_ms": round(LATENCY_S * 1000),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        **row,
    }
    print(
        f"{row['kind']} {row['items']} items, {row['actors']} actors: {row['ok']} ok, "
        f"{row['not_ok']} not ok; {row['throughput_rps']} req/s = {row['share_of_limit']:.1%} "
        f"of the limit over the server's {row['server_span_s']} s; {row['refused_share']:.2%} "
        f"refused ({row['refused_429']} of {row['attempts']}; {row['refused_first_second']} "
        f"in the first second, {row['refused_share_after_first_second']:.2%} after it); "
        f"shared actor {row['shared_actor']}; "
        f"load {report['loadavg_before']} -> {report['loadavg_after']}",
        flush=True,
    )
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = (
            "ray_goodput.json"
            if (args.kind, args.items, args.actors)
            == (
                "bucket",
                2000,
                2,
            )
            else "partial.json"
        )
        path = RESULTS / name
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written: {path}")


if __name__ == "__main__":
    main()
