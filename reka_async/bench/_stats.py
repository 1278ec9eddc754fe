"""Summary statistics of a metric's samples: the mean, the percentiles and the extremes.

Percentiles interpolate linearly between the two closest ranks (the default of numpy's
``percentile`` and pandas' ``quantile``, which vLLM's ``benchmark_serving`` and LLMPerf
report with), so our figures can be set beside theirs: for sorted values ``x[0..n-1]`` the
p-th percentile is at rank ``h = (n - 1) * p / 100``, ``x[floor(h)] + (h - floor(h)) *
(x[floor(h) + 1] - x[floor(h)])``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final

import attrs

__all__ = ["PERCENTILES", "Summary", "percentile", "summarize"]

#: The percentiles every summary reports.
PERCENTILES: Final = (50, 90, 95, 99)


def percentile(ordered: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of sorted values, interpolated linearly between ranks.

    Args:
        ordered: The values, sorted ascending; not empty.
        p: The percentile, 0 to 100.

    Returns:
        The interpolated value.

    Raises:
        ValueError: ``ordered`` is empty or ``p`` is outside [0, 100].
    """
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be between 0 and 100, got {p!r}")
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@attrs.frozen(kw_only=True)
class Summary:
    """A metric's distribution over one run, in the unit it was given in (milliseconds for
    latencies).

    Attributes:
        n: How many samples.
        mean, min, max: Of the samples.
        std: Population standard deviation.
        p50, p90, p95, p99: Percentiles (see `percentile`).
    """

    n: int
    mean: float
    min: float
    max: float
    std: float
    p50: float
    p90: float
    p95: float
    p99: float

    def to_dict(self) -> dict[str, float]:
        """The JSON form: ``{"mean", "p50", "p90", "p95", "p99", "max", "min", "std", "n"}``."""
        return {
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
            "min": self.min,
            "std": self.std,
            "n": self.n,
        }


def summarize(values: Iterable[float]) -> Summary | None:
    """The `Summary` of some values, or None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    n = len(ordered)
    mean = math.fsum(ordered) / n
    variance = math.fsum((v - mean) ** 2 for v in ordered) / n
    return Summary(
        n=n,
        mean=mean,
        min=ordered[0],
        max=ordered[-1],
        std=math.sqrt(variance),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
    )
