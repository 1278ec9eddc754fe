"""Turn raw runs into medians, ratios, targets, a Markdown report and a PNG plot."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from ._clients import LABELS
from ._report_more import markdown_more, summarise_more

REFERENCE: Final = "aiohttp_raw"
BASELINE: Final = "reka_api"
MEASUREMENT_TITLES: Final = {
    "chat": "Non-streaming throughput and client CPU (latency 0)",
    "latency": "Throughput against a slow server (share of the ideal concurrency / latency)",
    "stream": "Streaming: client CPU per chunk (latency 0)",
    "sync": "Sync facade: time per sequential call against the async client (C=1, latency 0)",
    "rss": "BatchRunner.stream(): peak RSS over lazily generated prompts (latency 0)",
}


def _median(values: Iterable[float | None]) -> float | None:
    data = [v for v in values if v is not None]
    return statistics.median(data) if data else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _value(row: dict[str, Any] | None, key: str) -> float | None:
    return None if row is None else row.get(key)


def _ok_runs(runs: Sequence[dict[str, Any]], measurement: str) -> list[dict[str, Any]]:
    return [
        r
        for r in runs
        if r["measurement"] == measurement and "error" not in r and "skipped" not in r
    ]


# --------------------------------------------------------------------------- summary


def summarise(runs: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """Medians per (measurement, client, concurrency) with ratios to the reference clients."""
    summary: dict[str, Any] = {}
    for measurement in ("chat", "latency", "stream"):
        ok = _ok_runs(runs, measurement)
        if not ok:
            continue
        groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        for r in ok:
            groups.setdefault((r["concurrency"], r["client"], r.get("api", "native")), []).append(r)
        rows: list[dict[str, Any]] = []
        for (conc, client, api), group in sorted(groups.items()):
            rates = [g["req_per_s"] for g in group]
            row: dict[str, Any] = {
                "client": client,
                "api": api,
                "label": LABELS.get(client, client),
                "concurrency": conc,
                "runs": len(group),
                "req_per_s": _median(rates),
                "req_per_s_min": min(rates),
                "req_per_s_max": max(rates),
                "cpu_us_per_req": _median(g["cpu_us_per_req"] for g in group),
            }
            if measurement == "stream":
                row["chunks_per_s"] = _median(g.get("chunks_per_s", 0.0) for g in group)
                row["cpu_us_per_chunk"] = _median(g.get("cpu_us_per_chunk") for g in group)
            if measurement == "latency":
                ideal = conc / (settings["latency_ms"] / 1000.0)
                row["ideal_req_per_s"] = ideal
                row["pct_of_ideal"] = 100.0 * row["req_per_s"] / ideal
            rows.append(row)
        by_key = {(row["concurrency"], row["client"], row["api"]): row for row in rows}
        metric = "cpu_us_per_chunk" if measurement == "stream" else "cpu_us_per_req"
        for row in rows:
            # Against raw aiohttp on the same dialect; against reka-api (native only).
            ref = by_key.get((row["concurrency"], REFERENCE, row["api"]))
            base = by_key.get((row["concurrency"], BASELINE, "native"))
            row["vs_aiohttp_raw"] = _ratio(row["req_per_s"], _value(ref, "req_per_s"))
            row["vs_reka_api"] = _ratio(row["req_per_s"], _value(base, "req_per_s"))
            row["cpu_vs_aiohttp_raw"] = _ratio(row[metric], _value(ref, metric))
            row["cpu_vs_reka_api"] = _ratio(row[metric], _value(base, metric))
        summary[measurement] = rows

    sync_runs = _ok_runs(runs, "sync")
    if sync_runs:
        rows = []
        for client in ("reka_async", "reka_async_sync"):
            group = [r for r in sync_runs if r["client"] == client]
            if group:
                rows.append(
                    {
                        "client": client,
                        "label": LABELS.get(client, client),
                        "runs": len(group),
                        "wall_us_per_call": _median(g["wall_us_per_req"] for g in group),
                        "cpu_us_per_call": _median(g["cpu_us_per_req"] for g in group),
                        "req_per_s": _median(g["req_per_s"] for g in group),
                    }
                )
        by_client = {row["client"]: row for row in rows}
        async_row = by_client.get("reka_async")
        for row in rows:
            row["ratio_to_async"] = _ratio(
                row["wall_us_per_call"], _value(async_row, "wall_us_per_call")
            )
        summary["sync"] = rows

    summary.update(summarise_more(runs, settings))

    rss_runs = _ok_runs(runs, "rss")
    if rss_runs:
        rows = []
        for items in sorted({r["items"] for r in rss_runs}):
            group = [r for r in rss_runs if r["items"] == items]
            rows.append(
                {
                    "items": items,
                    "runs": len(group),
                    "peak_rss_mb": _median(g["peak_rss_kb"] / 1024 for g in group),
                    "baseline_rss_mb": _median(g["baseline_maxrss_kb"] / 1024 for g in group),
                    "req_per_s": _median(g["req_per_s"] for g in group),
                    "wall_s": _median(g["wall_s"] for g in group),
                    "failed": sum(g["failed"] for g in group),
                }
            )
        summary["rss"] = rows
    return summary


# --------------------------------------------------------------------------- Markdown


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else format(value, spec) + suffix


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The human report: machine, settings, one table per measurement, then the targets."""
    meta = results["meta"]
    machine = meta["machine"]
    settings = results["settings"]
    summary = results["summary"]
    pkgs = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    mode = "quick (smoke run: indicative only)" if settings["quick"] else "full"
    out = [
        "# reka_async benchmarks",
        "",
        f"- Mode: {mode}; {settings['repeat']} repetition(s) of {settings['duration']:g} s "
        f"measured (+{settings['warmup']:g} s warm-up) per run; medians shown.",
        f"- Date: {machine['date']}; command: `{meta['command']}`",
        f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} CPUs "
        f"(available {machine['cpus_available']}), Python {machine['python']}, "
        f"{machine['platform']}; load average at start {machine['load_average_at_start']}, "
        f"at end {meta.get('load_average_at_end')}",
        f"- Packages: {pkgs}",
        f"- Commit: {machine['git_commit']}",
        "",
        "Ratios are medians divided by the median of the reference client at the same "
        "concurrency: `aiohttp_raw` (raw aiohttp, pre-serialised body: the physical limit) and "
        "`reka_api` (the official SDK). For throughput higher is better; for CPU lower is better.",
        "",
    ]

    chat = summary.get("chat")
    if chat:
        out += [f"## {MEASUREMENT_TITLES['chat']}", ""]
        out += _table(
            [
                "client",
                "api",
                "C",
                "req/s (median)",
                "min-max",
                "vs aiohttp_raw",
                "vs reka_api",
                "CPU µs/req",
                "CPU vs aiohttp_raw",
            ],
            (
                [
                    f"`{r['client']}`",
                    r["api"],
                    str(r["concurrency"]),
                    _fmt(r["req_per_s"], ",.0f"),
                    f"{r['req_per_s_min']:,.0f}-{r['req_per_s_max']:,.0f}",
                    _fmt(r["vs_aiohttp_raw"], ".2f", "x"),
                    _fmt(r["vs_reka_api"], ".1f", "x"),
                    _fmt(r["cpu_us_per_req"], ",.0f"),
                    _fmt(r["cpu_vs_aiohttp_raw"], ".2f", "x"),
                ]
                for r in sorted(
                    chat, key=lambda r: (r["concurrency"], r["api"], _order(r["client"]))
                )
            ),
        )
        out.append("")
        if results.get("plot"):
            out += [f"![throughput vs concurrency]({results['plot']})", ""]

    lat = summary.get("latency")
    if lat:
        out += [f"## {MEASUREMENT_TITLES['latency']}", ""]
        out.append(f"Server latency {settings['latency_ms']:g} ms; ideal = C / latency.")
        out.append("")
        out += _table(
            [
                "client",
                "C",
                "req/s (median)",
                "ideal",
                "% of ideal",
                "vs aiohttp_raw",
                "vs reka_api",
            ],
            (
                [
                    f"`{r['client']}`",
                    str(r["concurrency"]),
                    _fmt(r["req_per_s"], ",.0f"),
                    _fmt(r["ideal_req_per_s"], ",.0f"),
                    _fmt(r["pct_of_ideal"], ".1f", " %"),
                    _fmt(r["vs_aiohttp_raw"], ".2f", "x"),
                    _fmt(r["vs_reka_api"], ".1f", "x"),
                ]
                for r in sorted(lat, key=lambda r: (r["concurrency"], _order(r["client"])))
            ),
        )
        out.append("")

    stream = summary.get("stream")
    if stream:
        out += [f"## {MEASUREMENT_TITLES['stream']}", ""]
        out.append(f"{settings['stream_chunks']} events per stream.")
        out.append("")
        out += _table(
            [
                "client",
                "api",
                "C",
                "streams/s",
                "chunks/s",
                "CPU µs/chunk",
                "CPU vs aiohttp_raw",
                "CPU vs reka_api",
            ],
            (
                [
                    f"`{r['client']}`",
                    r["api"],
                    str(r["concurrency"]),
                    _fmt(r["req_per_s"], ",.0f"),
                    _fmt(r["chunks_per_s"], ",.0f"),
                    _fmt(r["cpu_us_per_chunk"], ".1f"),
                    _fmt(r["cpu_vs_aiohttp_raw"], ".2f", "x"),
                    _fmt(r["cpu_vs_reka_api"], ".2f", "x"),
                ]
                for r in sorted(
                    stream, key=lambda r: (r["concurrency"], r["api"], _order(r["client"]))
                )
            ),
        )
        out.append("")

    sync = summary.get("sync")
    if sync:
        out += [f"## {MEASUREMENT_TITLES['sync']}", ""]
        out += _table(
            ["client", "µs per call (wall)", "CPU µs per call", "vs async"],
            (
                [
                    f"`{r['client']}`",
                    _fmt(r["wall_us_per_call"], ",.0f"),
                    _fmt(r["cpu_us_per_call"], ",.0f"),
                    _fmt(r["ratio_to_async"], ".2f", "x"),
                ]
                for r in sync
            ),
        )
        out.append("")

    out += markdown_more(summary, settings)

    rss = summary.get("rss")
    if rss:
        out += [f"## {MEASUREMENT_TITLES['rss']}", ""]
        out.append(
            f"Each row is a fresh process; concurrency {settings['rss_concurrency']}; "
            "peak = `VmHWM` (the worker's own high-water mark) at the end, baseline = the "
            "same after imports and client "
            "creation."
        )
        out.append("")
        out += _table(
            ["prompts", "peak RSS (MB)", "baseline (MB)", "growth (MB)", "req/s", "wall (s)"],
            (
                [
                    f"{r['items']:,}",
                    _fmt(r["peak_rss_mb"], ".1f"),
                    _fmt(r["baseline_rss_mb"], ".1f"),
                    _fmt(r["peak_rss_mb"] - r["baseline_rss_mb"], ".1f"),
                    _fmt(r["req_per_s"], ",.0f"),
                    _fmt(r["wall_s"], ".1f"),
                ]
                for r in rss
            ),
        )
        out.append("")

    out += ["## Targets", ""]
    out += _table(
        ["target", "goal", "measured", "result"],
        (
            [
                t["target"],
                t["goal"],
                t["measured"] + (f" ({t['note']})" if t["note"] else ""),
                "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL"),
            ]
            for t in results["targets"]
        ),
    )
    out.append("")
    if results["notes"]:
        out += ["## Notes", ""]
        out += [f"- {note}" for note in results["notes"]]
        out.append("")
    problems = results["skipped"] + results["errors"]
    if problems:
        out += ["## Skipped or failed runs", ""]
        out += [
            f"- {p['measurement']} / `{p['client']}`: {p.get('skipped') or p.get('error')}"
            for p in problems
        ]
        out.append("")
    return "\n".join(out)


def _order(client: str) -> int:
    order = list(LABELS)
    return order.index(client) if client in order else len(order)


# --------------------------------------------------------------------------- plot


def plot_throughput(summary: dict[str, Any], path: Path) -> str | None:
    """Write throughput vs concurrency (log x) as a PNG; return a note when impossible."""
    rows = [r for r in summary.get("chat", []) if r.get("api", "native") == "native"]
    if not rows:
        return "no chat runs: throughput plot not drawn"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: throughput plot not drawn"
    fig, ax = plt.subplots(figsize=(8, 5))
    for client in sorted({r["client"] for r in rows}, key=_order):
        points = sorted((r["concurrency"], r["req_per_s"]) for r in rows if r["client"] == client)
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ax.plot(xs, ys, marker="o", label=LABELS.get(client, client))
    ax.set_xscale("log", base=2)
    levels = sorted({r["concurrency"] for r in rows})
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.minorticks_off()
    ax.set_xlabel("concurrency (requests in flight)")
    ax.set_ylabel("requests per second (median)")
    ax.set_title("Non-streaming throughput against the mock server (latency 0)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
