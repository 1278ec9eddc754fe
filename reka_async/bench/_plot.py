"""PNG plots of a `BenchReport`, with matplotlib (the optional ``[plot]`` extra).

``latency.png``: p50, p90 and p99 of TTFT, TPOT, ITL and end-to-end latency against the load;
``throughput.png``: requests and output tokens per second against the load, the saturation
point marked; ``distributions.png``: the TTFT and ITL distributions of every step (streams).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from ._report import BenchReport

__all__ = ["PlotUnavailableError", "check_plotting", "plot_report"]


class PlotUnavailableError(ImportError):
    """Plots need matplotlib: ``pip install 'reka-async[plot]'``."""


def check_plotting() -> Any:
    """Import matplotlib's non-interactive backend; returns ``matplotlib.pyplot``.

    Raises:
        PlotUnavailableError: matplotlib is not installed.
    """
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        raise PlotUnavailableError(
            "plots need matplotlib: pip install 'reka-async[plot]'"
        ) from None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def _percentiles(ax: Any, loads: list[float], summaries: list[Any], title: str) -> None:
    shown = [(x, s) for x, s in zip(loads, summaries, strict=True) if s is not None]
    if not shown:
        ax.set_visible(False)
        return
    xs = [x for x, _ in shown]
    for key, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^:")):
        ax.plot(xs, [getattr(s, key) for _, s in shown], style, label=key)
    ax.set_title(title)
    ax.set_ylabel("ms")
    ax.grid(True, alpha=0.3)
    ax.legend()


def _log_x(ax: Any, loads: list[float]) -> None:
    """A log scale for a wide sweep, ticked at the loads themselves."""
    if len(loads) > 1 and min(loads) > 0 and max(loads) / min(loads) >= 8:
        ax.set_xscale("log", base=2)
        ax.minorticks_off()
    ax.set_xticks(loads)
    ax.set_xticklabels([f"{x:g}" for x in loads])


def _bins(groups: list[list[float]], count: int) -> list[float]:
    """Bin edges shared by every step's histogram, so their shapes compare."""
    values = [v for group in groups for v in group]
    low, high = min(values), max(values)
    if high <= low:
        high = low + 1.0
    return [low + (high - low) * i / count for i in range(count + 1)]


def plot_report(report: BenchReport, directory: str | os.PathLike[str]) -> list[Path]:
    """Draw the report's plots into ``directory`` (created if needed).

    Returns:
        The paths written.

    Raises:
        PlotUnavailableError: matplotlib is not installed.
        OSError: The directory or a file cannot be written.
    """
    plt = check_plotting()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    runs = report.runs
    loads = [r.load for r in runs]
    xlabel = "requests per second (open loop)" if report.config.rate else "concurrency"
    title = f"{report.config.model}, {report.config.api}"
    written = []

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    for ax, attr, name in zip(
        axes.flat,
        ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"),
        ("time to first token", "time per output token", "inter-token latency", "end to end"),
        strict=True,
    ):
        _percentiles(ax, loads, [getattr(r, attr) for r in runs], name)
        ax.set_xlabel(xlabel)
        _log_x(ax, loads)
    fig.suptitle(f"latency against load: {title}")
    written.append(out / "latency.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, left = plt.subplots(figsize=(8, 5), constrained_layout=True)
    left.plot(loads, [r.requests_per_s for r in runs], "o-", color="tab:blue")
    left.set_xlabel(xlabel)
    left.set_ylabel("requests/s", color="tab:blue")
    right = left.twinx()
    right.plot(loads, [r.output_tokens_per_s for r in runs], "s--", color="tab:orange")
    right.set_ylabel("output tokens/s", color="tab:orange")
    saturation = report.saturation
    if saturation is not None and saturation.found and saturation.load is not None:
        left.axvline(saturation.load, color="grey", linestyle=":", label="saturation point")
        left.legend(loc="lower right")
    _log_x(left, loads)
    left.grid(True, alpha=0.3)
    fig.suptitle(f"throughput against load: {title}")
    written.append(out / "throughput.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    if report.config.stream:
        fig, (ttft, itl) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
        ttfts = [[s.ttft * 1e3 for s in r.samples if s.ok and s.ttft is not None] for r in runs]
        gaps = [[g * 1e3 for s in r.samples if s.ok for g in s.itls] for r in runs]
        for ax, groups, count in ((ttft, ttfts, 40), (itl, gaps, 60)):
            if any(groups):
                bins = _bins(groups, count)
                for r, values in zip(runs, groups, strict=True):
                    if values:
                        ax.hist(values, bins=bins, histtype="step", label=r.label)
        for ax, name in ((ttft, "time to first token (ms)"), (itl, "inter-token latency (ms)")):
            ax.set_xlabel(name)
            ax.set_ylabel("requests" if ax is ttft else "gaps")
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
        fig.suptitle(f"distributions: {title}")
        written.append(out / "distributions.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
