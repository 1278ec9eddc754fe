"""Summaries and tables of the paired, long-stream and scale measurements."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any, Final

__all__ = ["FLATNESS_LIMIT", "markdown_more", "summarise_more"]

#: Long-stream flatness: (ratio at the longest stream) / (ratio at the shortest) <= this.
FLATNESS_LIMIT: Final = 1.10


def _median(values: Iterable[float | None]) -> float | None:
    data = [v for v in values if v is not None]
    return statistics.median(data) if data else None


def _ok(runs: Sequence[dict[str, Any]], measurement: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["measurement"] == measurement and "error" not in r]


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else format(value, spec) + suffix


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --------------------------------------------------------------------------- summaries


def _paired_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(r.get("pair_id", r["client"]), []).append(r)
    rows: list[dict[str, Any]] = []
    for pid, group in groups.items():
        first = group[0]
        side, against = first["sides"]
        if first["mode"] == "sync_pair":
            compared, metric, key = "µs per call (wall)", "wall_us_per_req", "ratio_wall_per_req"
        elif first.get("stream"):
            compared, metric, key = "CPU µs per chunk", "cpu_us_per_chunk", "ratio_cpu_per_chunk"
        else:
            compared, metric, key = "req/s", "req_per_s", "ratio_req_per_s"
        ratios = [g[key] for g in group if g.get(key) is not None]
        rows.append(
            {
                "pair_id": pid,
                "client": side,
                "baseline": against,
                "concurrency": first["concurrency"],
                "stream": bool(first.get("stream")),
                "runs": len(group),
                "compared": compared,
                "metric": metric,
                "client_value": _median(g["pair"][side].get(metric) for g in group),
                "baseline_value": _median(g["pair"][against].get(metric) for g in group),
                "ratio": _median(ratios),
                "ratio_min": min(ratios) if ratios else None,
                "ratio_max": max(ratios) if ratios else None,
                "ratios": ratios,
                "chunk_basis": first.get("chunk_basis"),
            }
        )
    return rows


def _longstream_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["variant"], r["length"]), []).append(r)
    rows: list[dict[str, Any]] = []
    for (variant, length), group in groups.items():
        side, against = group[0]["sides"]
        ratios = [g["ratio_cpu_per_chunk"] for g in group if g.get("ratio_cpu_per_chunk")]
        rows.append(
            {
                "variant": variant,
                "length": length,
                "runs": len(group),
                "chunks_per_stream": _median(
                    g["pair"][against].get("chunks_per_req") for g in group
                ),
                "reka_async_cpu_us_per_chunk": _median(
                    g["pair"][side].get("cpu_us_per_chunk") for g in group
                ),
                "aiohttp_raw_cpu_us_per_chunk": _median(
                    g["pair"][against].get("cpu_us_per_chunk") for g in group
                ),
                "ratio": _median(ratios),
                "ratios": ratios,
            }
        )
    rows.sort(key=lambda r: (str(r["variant"]), int(r["length"])))
    for name in {str(r["variant"]) for r in rows}:
        mine = [r for r in rows if r["variant"] == name]
        short, long = mine[0], mine[-1]
        flat = (
            long["ratio"] / short["ratio"]
            if long["ratio"] and short["ratio"] and len(mine) > 1
            else None
        )
        for r in mine:
            r["flatness"] = flat
    return rows


def _scale_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["concurrency"], r["client"]), []).append(r)
    rows: list[dict[str, Any]] = []
    for (conc, client), group in sorted(groups.items()):
        run_s = _median(g["run_s"] for g in group)
        rows.append(
            {
                "client": client,
                "concurrency": conc,
                "runs": len(group),
                "latency_ms": group[0]["latency_ms"],
                "cycles": group[0]["cycles"],
                "req_per_s": _median(g["req_per_s"] for g in group),
                "pct_of_little": _median(g["pct_of_little"] for g in group),
                "peak_rss_mb": _median(g["peak_rss_kb"] / 1024 for g in group),
                "peak_rss_mb_max": max(g["peak_rss_kb"] / 1024 for g in group),
                "cpu_us_per_req": _median(g["cpu_us_per_req"] for g in group),
                "ramp_up_s": _median(g["ramp_up_s"] for g in group),
                "ramp_up_share": _median(g["ramp_up_share"] for g in group),
                "ramp_up_flags": sum(1 for g in group if g["ramp_up_flag"]),
                "run_s": run_s,
            }
        )
    by_key = {(r["concurrency"], r["client"]): r for r in rows}
    for r in rows:
        ref = by_key.get((r["concurrency"], "aiohttp_raw"))
        r["vs_aiohttp_raw"] = (
            r["req_per_s"] / ref["req_per_s"]
            if ref and ref["req_per_s"] and r["req_per_s"] is not None
            else None
        )
    return rows


def summarise_more(runs: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """The ``paired``, ``longstream`` and ``batchscale`` summaries (those that ran)."""
    out: dict[str, Any] = {}
    for name, build in (
        ("paired", _paired_rows),
        ("longstream", _longstream_rows),
        ("batchscale", _scale_rows),
    ):
        ok = _ok(runs, name)
        if ok:
            out[name] = build(ok)
    return out


# --------------------------------------------------------------------------- Markdown


def markdown_more(summary: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The report's sections for the paired, long-stream and scale measurements."""
    out: list[str] = []
    paired = summary.get("paired")
    if paired:
        out += [
            "## Paired runs: clients alternating in one process (the targets' basis)",
            "",
            f"Each run is one process holding both sides (client and dialect), alternating "
            f"{settings['slice']:g} s slices (the order flipping each round) until each has "
            f"had {settings['pair_duration']:g} s; the ratio is taken within the run, then the "
            "median over runs. Streaming pairs count chunks and CPU per slice; when both "
            "sides parse the same stream the CPU ratio is per stream (= per wire event).",
            "",
        ]
        out += _table(
            ["pair", "side", "against", "C", "compared", "side value", "against value",
             "ratio (median)", "ratio per run"],
            (
                [
                    r["pair_id"],
                    f"`{r['client']}`",
                    f"`{r['baseline']}`",
                    str(r["concurrency"]),
                    r["compared"],
                    _fmt(r["client_value"], ",.1f"),
                    _fmt(r["baseline_value"], ",.1f"),
                    _fmt(r["ratio"], ".3f", "x"),
                    ", ".join(f"{x:.3f}" for x in r["ratios"]),
                ]
                for r in paired
            ),
        )  # fmt: skip
        out.append("")
    long = summary.get("longstream")
    if long:
        out += [
            "## Long streams: CPU per chunk against stream length (paired, "
            f"C={settings['longstream_concurrency']})",
            "",
            "reka_async and raw aiohttp parse the same stream (an N-word prompt, so that each "
            "of the N chunks carries text); ratio = reka_async / raw aiohttp CPU per stream. "
            f"Flatness = ratio at the longest / ratio at the shortest; flat when <= "
            f"{FLATNESS_LIMIT:.2f}.",
            "",
        ]
        out += _table(
            ["variant", "chunks", "chunks seen", "reka_async µs/chunk", "aiohttp_raw µs/chunk",
             "ratio (median)", "ratio per run", "flatness"],
            (
                [
                    r["variant"],
                    str(r["length"]),
                    _fmt(r["chunks_per_stream"], ".0f"),
                    _fmt(r["reka_async_cpu_us_per_chunk"], ".1f"),
                    _fmt(r["aiohttp_raw_cpu_us_per_chunk"], ".1f"),
                    _fmt(r["ratio"], ".3f", "x"),
                    ", ".join(f"{x:.3f}" for x in r["ratios"]),
                    _fmt(r["flatness"], ".3f"),
                ]
                for r in long
            ),
        )  # fmt: skip
        out.append("")
    scale = summary.get("batchscale")
    if scale:
        out += [
            f"## BatchRunner at scale ({settings['scale_latency_ms']:g} ms latency, a fresh "
            "process per run, interleaved)",
            "",
            "Window: from half a latency after the C-th completion, `cycles` latencies long. "
            "Little's law % = window req/s / (C / latency). Ramp-up = time from the start to "
            "the C-th completion minus the latency; its share is of the whole run (start to "
            "last completion); runs at >= 5 % are flagged. Peak RSS = `VmHWM` (the "
            "high-water mark) of the worker.",
            "",
        ]
        out += _table(
            ["client", "C", "cycles", "req/s", "% of Little", "vs aiohttp_raw", "peak RSS MB",
             "CPU µs/req", "ramp-up s", "ramp-up share", "flagged"],
            (
                [
                    f"`{r['client']}`",
                    str(r["concurrency"]),
                    str(r["cycles"]),
                    _fmt(r["req_per_s"], ",.0f"),
                    _fmt(r["pct_of_little"], ".1f", " %"),
                    _fmt(r["vs_aiohttp_raw"], ".3f", "x"),
                    _fmt(r["peak_rss_mb"], ".1f"),
                    _fmt(r["cpu_us_per_req"], ",.0f"),
                    _fmt(r["ramp_up_s"], ".2f"),
                    _fmt(None if r["ramp_up_share"] is None else 100 * r["ramp_up_share"],
                         ".1f", " %"),
                    f"{r['ramp_up_flags']}/{r['runs']}",
                ]
                for r in scale
            ),
        )  # fmt: skip
        out.append("")
    return out
