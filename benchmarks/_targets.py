"""The acceptance targets (issue 18), each judged PASS/FAIL with its value and its basis.

Ratio targets are judged on the paired runs (the median over repetitions of the ratio within
each run); the ratio of medians of the separate-process runs is shown beside. Where the
paired run is missing the separate-process figure is used and the basis says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks._report_more import FLATNESS_LIMIT

__all__ = ["targets"]


def _find(rows: Sequence[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _target(
    name: str, goal: str, value: float | None, passed: bool | None, shown: str, note: str = ""
) -> dict[str, Any]:
    return {
        "target": name,
        "goal": goal,
        "value": value,
        "measured": shown if value is not None else "not measured",
        "pass": passed if value is not None else None,
        "note": note,
    }


def _paired_or_separate(
    paired: dict[str, Any] | None, separate: float | None
) -> tuple[float | None, str]:
    """The paired median ratio when it ran (else the separate runs' ratio), and its text."""
    if paired is None or paired["ratio"] is None:
        return separate, f"{separate:.3f}x (separate runs)" if separate is not None else ""
    shown = (
        f"{paired['ratio']:.3f}x paired, median of {len(paired['ratios'])} "
        f"(runs {paired['ratio_min']:.3f}-{paired['ratio_max']:.3f})"
    )
    if separate is not None:
        shown += f"; {separate:.3f}x from separate runs"
    return paired["ratio"], shown


def _v(row: dict[str, Any] | None, key: str) -> float | None:
    return None if row is None else row.get(key)


def _ge(v: float | None, goal: float) -> bool:
    return v is not None and v >= goal


def _le(v: float | None, goal: float) -> bool:
    return v is not None and v <= goal


def targets(summary: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured value and PASS/FAIL (None: not measured)."""
    out: list[dict[str, Any]] = []
    chat = summary.get("chat", [])
    stream = summary.get("stream", [])
    paired = summary.get("paired", [])
    c = settings["pair_concurrency"]

    for api in ("native", "openai"):
        sep = _find(chat, client="reka_async", api=api, concurrency=c)
        v, shown = _paired_or_separate(
            _find(paired, pair_id=f"chat/{api}/C={c}"), _v(sep, "vs_aiohttp_raw")
        )
        out.append(
            _target(f"C={c} {api}, req/s vs raw aiohttp", ">= 0.92x", v, _ge(v, 0.92), shown)
        )
    for api in ("native", "openai"):
        sep = _find(stream, client="reka_async", api=api)
        v, shown = _paired_or_separate(
            _find(paired, pair_id=f"stream/{api}"), _v(sep, "cpu_vs_aiohttp_raw")
        )
        out.append(
            _target(
                f"streaming {api}, CPU per chunk vs raw aiohttp", "<= 1.2x", v, _le(v, 1.2), shown
            )
        )
    v, shown = _paired_or_separate(_find(paired, pair_id=f"dialect/chat/C={c}"), None)
    out.append(
        _target(f"OpenAI dialect vs native, C={c} req/s", ">= 0.95x", v, _ge(v, 0.95), shown)
    )
    v, shown = _paired_or_separate(_find(paired, pair_id="dialect/stream"), None)
    out.append(
        _target(
            "OpenAI dialect vs native, streaming CPU per chunk", "<= 1.05x", v, _le(v, 1.05), shown
        )
    )

    scale = summary.get("batchscale", [])
    top = max((r["concurrency"] for r in scale), default=None)
    batch = _find(scale, client="reka_async_batch", concurrency=top) if top else None
    note = "" if top is None or top >= 4096 else f"quick mode: C={top}, not 4,096"
    if batch is not None and batch["ramp_up_flags"]:
        note = (note + "; " if note else "") + "ramp-up >= 5 % in some runs"
    v = _v(batch, "vs_aiohttp_raw")
    shown = (
        f"{v:.3f}x ({batch['pct_of_little']:.1f} % of Little's law; separate processes, "
        f"median of {batch['runs']})"
        if v is not None and batch is not None and batch["pct_of_little"] is not None
        else ""
    )
    out.append(
        _target(
            f"BatchRunner C={top or 4096}, req/s vs raw aiohttp", ">= 0.95x", v, _ge(v, 0.95),
            shown, note,
        )
    )  # fmt: skip
    v = _v(batch, "peak_rss_mb")
    shown = f"{v:.1f} MB (max {batch['peak_rss_mb_max']:.1f})" if v and batch else ""
    out.append(
        _target(
            f"BatchRunner C={top or 4096}, peak RSS", "< 250 MB", v, v is not None and v < 250,
            shown, note,
        )
    )  # fmt: skip

    sync_row = _find(summary.get("sync", []), client="reka_async_sync")
    v, shown = _paired_or_separate(_find(paired, pair_id="sync"), _v(sync_row, "ratio_to_async"))
    out.append(
        _target("sync facade time per call vs async (C=1)", "<= 1.3x", v, _le(v, 1.3), shown)
    )

    long = summary.get("longstream", [])
    for variant in sorted({r["variant"] for r in long}):
        mine = [r for r in long if r["variant"] == variant]
        v = mine[0]["flatness"]
        shown = (
            f"{v:.3f} (ratio {mine[0]['ratio']:.3f}x at {mine[0]['length']} chunks, "
            f"{mine[-1]['ratio']:.3f}x at {mine[-1]['length']}; paired)"
            if v is not None
            else ""
        )
        out.append(
            _target(
                f"long streams flat, {variant}: ratio longest / shortest",
                f"<= {FLATNESS_LIMIT:.2f}",
                v,
                _le(v, FLATNESS_LIMIT),
                shown,
            )
        )

    native64 = _find(chat, client="reka_async", api="native", concurrency=64)
    v = _v(native64, "vs_reka_api")
    out.append(
        _target(
            "C=64, req/s vs reka-api (separate runs)", ">= 15x", v, _ge(v, 15.0),
            f"{v:.1f}x" if v is not None else "",
        )
    )  # fmt: skip
    lat = _find(summary.get("latency", []), client="reka_async_batch", concurrency=256)
    v = _v(lat, "pct_of_ideal")
    out.append(
        _target(
            f"BatchRunner, {settings['latency_ms']:g} ms latency, C=256, share of ideal",
            ">= 93 %", v, _ge(v, 93.0), f"{v:.1f} % (separate runs)" if v is not None else "",
        )
    )  # fmt: skip
    rss = summary.get("rss", [])
    big = rss[-1] if rss else None
    v = _v(big, "peak_rss_mb")
    out.append(
        _target(
            f"BatchRunner.stream() peak RSS, {big['items']:,} prompts" if big
            else "BatchRunner.stream() peak RSS, largest run",
            "<= 80 MB", v, _le(v, 80.0), f"{v:.1f} MB" if v is not None else "",
        )
    )  # fmt: skip
    small = rss[0] if len(rss) > 1 else None
    growth = (big["peak_rss_mb"] / small["peak_rss_mb"] - 1.0) * 100.0 if big and small else None
    out.append(
        _target(
            f"peak RSS growth, {big['items']:,} vs {small['items']:,} prompts"
            if big and small
            else "peak RSS growth, largest vs smallest run",
            "<= 20 %",
            growth,
            _le(growth, 20.0),
            f"{growth:+.1f} % ({small['peak_rss_mb']:.1f} -> {big['peak_rss_mb']:.1f} MB)"
            if growth is not None and big and small
            else "",
        )
    )
    return out
