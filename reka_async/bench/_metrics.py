"""From a step's samples to its figures (`RunResult`), and the saturation point of a sweep.

Throughput counts successful requests only, over the step's duration: from its start (the
first scheduled request) to the last answer or error. Input tokens are the estimates of the
prompts (about four characters a token, as the batch runner estimates them), output tokens
are ``usage``'s. Goodput is the rate of requests that succeeded and met every SLO.

**The saturation rule.** Steps run in ascending load. Step *i* is *saturated* when, against
step *i - 1*, its throughput (successful requests per second) rose by less than
``THROUGHPUT_GAIN`` (5 %) while its p50 end-to-end latency rose by more than
``LATENCY_GAIN`` (20 %), or when none of its requests succeeded. The *saturation point* is
the load of the step before the first saturated one: the most load the server took while
more load still bought throughput. A server with N generation slots saturates at
concurrency N in a closed loop: past it, requests queue, so latency grows with the load and
throughput does not. When no step is saturated the point is not reached within the sweep.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import attrs

from ._client_load import ClientLoad
from ._config import SLO, LoadKind
from ._sample import Sample
from ._stats import Summary, summarize

__all__ = [
    "LATENCY_GAIN",
    "SATURATION_RULE",
    "THROUGHPUT_GAIN",
    "Goodput",
    "RunResult",
    "Saturation",
    "find_saturation",
    "load_label",
    "summarize_run",
]

THROUGHPUT_GAIN: Final = 0.05
LATENCY_GAIN: Final = 0.20
SATURATION_RULE: Final = (
    "the saturation point is the load before the first step whose throughput rose less than "
    "5 % while its p50 end-to-end latency rose more than 20 % (or where no request succeeded)"
)


def load_label(kind: LoadKind, load: float) -> str:
    """A step's load in words: ``"concurrency 16"`` or ``"rate 5/s"``."""
    return f"rate {load:g}/s" if kind == "rate" else f"concurrency {load:g}"


@attrs.frozen(kw_only=True)
class Goodput:
    """Requests that succeeded and met every SLO.

    Attributes:
        requests_per_s: Good requests per second of the step.
        good: How many.
        fraction: Of all the step's requests.
    """

    requests_per_s: float
    good: int
    fraction: float

    def to_dict(self) -> dict[str, float]:
        """The JSON form."""
        return {
            "requests_per_s": self.requests_per_s,
            "good": self.good,
            "fraction": self.fraction,
        }


def _ms(values: Sequence[float | None]) -> Summary | None:
    return summarize(v * 1000.0 for v in values if v is not None)


def _meets(sample: Sample, slo: SLO) -> bool:
    if not sample.ok:
        return False
    ttft, tpot = sample.ttft, sample.tpot
    if slo.ttft_s is not None and (ttft is None or ttft > slo.ttft_s):
        return False
    if slo.tpot_s is not None and tpot is not None and tpot > slo.tpot_s:
        return False
    return slo.e2e_s is None or sample.e2e <= slo.e2e_s


@attrs.frozen(kw_only=True)
class RunResult:
    """The figures of one load step. Latency summaries are in milliseconds (None when the
    step has no such samples: TTFT, TPOT and ITL exist for streams only).

    Attributes:
        load_kind: ``"concurrency"`` or ``"rate"``.
        load: The step's concurrency or rate (requests per second).
        arrivals: ``"poisson"`` or ``"constant"`` (open loop), else None.
        num_requests, ok, failed: Requests sent, succeeded, failed.
        errors: Failed requests by error type (``"RateLimitError"``, ``"APITimeoutError"``...).
        duration_s: From the step's start to its last answer.
        requests_per_s: Successful requests per second.
        input_tokens_per_s, output_tokens_per_s, total_tokens_per_s: Token throughput.
        ttft_ms, ttft_reasoning_ms, tpot_ms, itl_ms, e2e_ms: The latency summaries
            (``ttft_reasoning_ms`` for Research answers only).
        schedule_lag_ms: How late requests were sent after their scheduled start.
        goodput: Under the SLO, when one was given.
        client: The client's own load (`ClientLoad`).
        origin: The step's start (``perf_counter`` seconds); sample times are after it.
        samples: Every request's `Sample`.
    """

    load_kind: LoadKind
    load: float
    arrivals: str | None
    num_requests: int
    ok: int
    failed: int
    errors: dict[str, int]
    duration_s: float
    requests_per_s: float
    input_tokens_per_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    ttft_ms: Summary | None
    ttft_reasoning_ms: Summary | None
    tpot_ms: Summary | None
    itl_ms: Summary | None
    e2e_ms: Summary | None
    schedule_lag_ms: Summary | None
    goodput: Goodput | None
    client: ClientLoad
    origin: float
    samples: tuple[Sample, ...] = attrs.field(repr=False)

    @property
    def label(self) -> str:
        """``"concurrency 16"`` or ``"rate 5/s"``."""
        return load_label(self.load_kind, self.load)

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        """The JSON form: ``{"concurrency" or "rate": ..., "requests_per_s", ...,
        "ttft_ms": {"mean", "p50", "p90", "p95", "p99", "max", ...}, ..., "samples": [...]}``.
        """

        def summary(value: Summary | None) -> dict[str, float] | None:
            return None if value is None else value.to_dict()

        load: float = int(self.load) if self.load_kind == "concurrency" else self.load
        data: dict[str, Any] = {
            self.load_kind: load,
            "arrivals": self.arrivals,
            "num_requests": self.num_requests,
            "ok": self.ok,
            "failed": self.failed,
            "errors": dict(self.errors),
            "duration_s": self.duration_s,
            "requests_per_s": self.requests_per_s,
            "input_tokens_per_s": self.input_tokens_per_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "total_tokens_per_s": self.total_tokens_per_s,
            "ttft_ms": summary(self.ttft_ms),
            "ttft_reasoning_ms": summary(self.ttft_reasoning_ms),
            "tpot_ms": summary(self.tpot_ms),
            "itl_ms": summary(self.itl_ms),
            "e2e_ms": summary(self.e2e_ms),
            "schedule_lag_ms": summary(self.schedule_lag_ms),
            "goodput": None if self.goodput is None else self.goodput.to_dict(),
            "client": {
                "cpu_percent": self.client.cpu_percent,
                "loop_lag_ms": summary(self.client.loop_lag_ms),
                "bottleneck": self.client.bottleneck,
                "reasons": list(self.client.reasons),
            },
        }
        if samples:
            data["samples"] = [s.to_dict(self.origin) for s in self.samples]
        return data


def summarize_run(
    samples: Sequence[Sample],
    *,
    load_kind: LoadKind,
    load: float,
    origin: float,
    arrivals: str | None = None,
    slo: SLO | None = None,
    client: ClientLoad | None = None,
) -> RunResult:
    """The figures of a step from its samples (deterministic: the tests feed it recorded
    timestamps).

    Args:
        samples: Every request of the step, finished.
        load_kind: What the step ran: a closed or an open loop.
        load: The step's concurrency or rate.
        arrivals: The open loop's arrival process.
        origin: The step's start, in the samples' clock.
        slo: Counts goodput when given.
        client: The client's load during the step (default: none measured).
    """
    good = [s for s in samples if s.ok]
    end = max((s.end for s in samples), default=origin)
    duration = max(end - origin, 1e-9)
    inputs = sum(s.input_tokens for s in good)
    outputs = sum(s.generated_tokens for s in good)
    goodput = None
    if slo is not None:
        count = sum(_meets(s, slo) for s in samples)
        goodput = Goodput(
            requests_per_s=count / duration,
            good=count,
            fraction=count / len(samples) if samples else 0.0,
        )
    errors = Counter(s.error_type for s in samples if s.error_type is not None)
    return RunResult(
        load_kind=load_kind,
        load=load,
        arrivals=arrivals,
        num_requests=len(samples),
        ok=len(good),
        failed=len(samples) - len(good),
        errors=dict(sorted(errors.items())),
        duration_s=duration,
        requests_per_s=len(good) / duration,
        input_tokens_per_s=inputs / duration,
        output_tokens_per_s=outputs / duration,
        total_tokens_per_s=(inputs + outputs) / duration,
        ttft_ms=_ms([s.ttft for s in good]),
        ttft_reasoning_ms=_ms([s.ttft_reasoning for s in good]),
        tpot_ms=_ms([s.tpot for s in good]),
        itl_ms=summarize(gap * 1000.0 for s in good for gap in s.itls),
        e2e_ms=_ms([s.e2e for s in good]),
        schedule_lag_ms=_ms([s.lag for s in samples]) if load_kind == "rate" else None,
        goodput=goodput,
        client=client if client is not None else ClientLoad(cpu_percent=0.0, loop_lag_ms=None),
        origin=origin,
        samples=tuple(samples),
    )


@attrs.frozen(kw_only=True)
class Saturation:
    """Where a sweep saturated (see the module docstring for the rule).

    Attributes:
        found: Whether a saturated step was found.
        load: The saturation point: the load before the first saturated step.
        first_saturated: The first saturated step's load.
        throughput_gain: Its throughput over the step before, minus 1.
        latency_gain: Its p50 end-to-end latency over the step before, minus 1.
        rule: The rule, in words.
    """

    found: bool
    load: float | None = None
    first_saturated: float | None = None
    throughput_gain: float | None = None
    latency_gain: float | None = None
    rule: str = SATURATION_RULE

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return attrs.asdict(self)


def find_saturation(runs: Sequence[RunResult]) -> Saturation:
    """Apply the saturation rule to steps in ascending load."""
    for before, step in itertools.pairwise(runs):
        if step.ok == 0:
            return Saturation(found=True, load=before.load, first_saturated=step.load)
        if before.ok == 0 or before.e2e_ms is None or step.e2e_ms is None:
            continue
        throughput = step.requests_per_s / before.requests_per_s - 1.0
        latency = step.e2e_ms.p50 / before.e2e_ms.p50 - 1.0 if before.e2e_ms.p50 > 0 else 0.0
        if throughput < THROUGHPUT_GAIN and latency > LATENCY_GAIN:
            return Saturation(
                found=True,
                load=before.load,
                first_saturated=step.load,
                throughput_gain=throughput,
                latency_gain=latency,
            )
    return Saturation(found=False)
