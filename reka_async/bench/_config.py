"""What a benchmark runs: `BenchConfig`, the length `Distribution` of a synthetic workload and
the `SLO` that goodput counts against. Checked here, once, with messages that say what to fix.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from .._types import Api
from .._wire.dialects import check_api

__all__ = ["Arrivals", "BenchConfig", "Distribution", "LoadKind", "SLO", "parse_slo"]

Arrivals = Literal["poisson", "constant"]
LoadKind = Literal["concurrency", "rate"]
DistributionKind = Literal["fixed", "uniform", "normal", "lognormal"]

_KINDS: Final[dict[str, int]] = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2}


@attrs.frozen
class Distribution:
    """The distribution of a length in tokens (at least 1 is always drawn).

    Written as text: ``"128"`` (fixed), ``"uniform:64,256"`` (integers from 64 to 256
    inclusive), ``"normal:128,32"`` (mean, standard deviation; rounded) or
    ``"lognormal:128,64"`` (the mean and standard deviation of the lengths themselves; a
    long right tail, like real prompt and answer lengths).

    Attributes:
        kind: ``"fixed"``, ``"uniform"``, ``"normal"`` or ``"lognormal"``.
        a: The value (fixed), the low end (uniform) or the mean.
        b: The high end (uniform) or the standard deviation; 0 for fixed.
    """

    kind: DistributionKind
    a: float
    b: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown distribution {self.kind!r}: use {', '.join(_KINDS)}")
        if not (math.isfinite(self.a) and math.isfinite(self.b)) or self.a < 1 or self.b < 0:
            raise ValueError(f"{self}: lengths must be at least 1 and spreads at least 0")
        if self.kind == "uniform" and self.b < self.a:
            raise ValueError(f"{self}: the high end is below the low end")

    @classmethod
    def fixed(cls, tokens: int) -> Distribution:
        """Always ``tokens``."""
        return cls("fixed", tokens)

    @classmethod
    def parse(cls, text: str) -> Distribution:
        """Read ``"128"``, ``"uniform:64,256"``, ``"normal:128,32"`` or ``"lognormal:128,64"``.

        Raises:
            ValueError: The text is none of these (the message shows the forms).
        """
        kind, sep, rest = text.strip().partition(":")
        if not sep:
            kind, rest = "fixed", kind
        try:
            numbers = [float(x) for x in rest.split(",")]
        except ValueError:
            numbers = []
        arity = _KINDS.get(kind.strip().lower())
        if arity is None or len(numbers) != arity:
            raise ValueError(
                f"invalid length distribution {text!r}: write N, uniform:LOW,HIGH, "
                f"normal:MEAN,STD or lognormal:MEAN,STD (tokens)"
            )
        return cls(kind.strip().lower(), *numbers)  # type: ignore[arg-type]

    def sample(self, rng: random.Random) -> int:
        """Draw one length."""
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.randint(math.ceil(self.a), math.floor(self.b))
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        else:
            sigma2 = math.log(1.0 + (self.b / self.a) ** 2)
            value = rng.lognormvariate(math.log(self.a) - sigma2 / 2.0, math.sqrt(sigma2))
        return max(1, round(value))

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"{self.a:g}"
        return f"{self.kind}:{self.a:g},{self.b:g}"


_UNITS: Final = {"ms": 1e-3, "s": 1.0, "us": 1e-6, "µs": 1e-6}
_DURATION: Final = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|us|µs)\s*$")
_SLO_METRICS: Final = ("ttft", "tpot", "e2e")


@attrs.frozen(kw_only=True)
class SLO:
    """Service-level objectives: a request is *good* when it succeeded and meets every one set.

    Attributes:
        ttft_s: The longest time to first token (streams only).
        tpot_s: The longest time per output token after the first (streams only; a request
            with one output token meets it).
        e2e_s: The longest end-to-end latency.
    """

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("ttft_s", "tpot_s", "e2e_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"SLO {name[:-2]} must be a positive duration, got {value!r}")
        if self.ttft_s is None and self.tpot_s is None and self.e2e_s is None:
            raise ValueError("an SLO needs at least one of ttft, tpot, e2e")

    def to_dict(self) -> dict[str, float]:
        """The JSON form, in milliseconds: ``{"ttft_ms": 500.0, "e2e_ms": 5000.0}``."""
        limits = {"ttft_ms": self.ttft_s, "tpot_ms": self.tpot_s, "e2e_ms": self.e2e_s}
        return {k: v * 1000.0 for k, v in limits.items() if v is not None}

    def __str__(self) -> str:
        return ",".join(f"{k[:-3]}={v:g}ms" for k, v in self.to_dict().items())


def parse_slo(text: str) -> SLO:
    """Read ``"ttft=500ms,e2e=5s"`` (metrics ``ttft``, ``tpot``, ``e2e``; units ``s``,
    ``ms``, ``us``).

    Raises:
        ValueError: An unknown metric, a duration without a unit, or a repeated metric.
    """
    limits: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not part.strip():
            continue
        if not sep or name not in _SLO_METRICS:
            raise ValueError(
                f"invalid SLO {part.strip()!r}: write METRIC=DURATION with METRIC one of "
                f"{', '.join(_SLO_METRICS)}, e.g. ttft=500ms,e2e=5s"
            )
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"invalid SLO duration {value.strip()!r} for {name}: give a unit, e.g. "
                f"500ms or 0.5s"
            )
        if name in limits:
            raise ValueError(f"SLO {name} given twice")
        limits[name] = float(match.group(1)) * _UNITS[match.group(2)]
    return SLO(ttft_s=limits.get("ttft"), tpot_s=limits.get("tpot"), e2e_s=limits.get("e2e"))


def _loads(value: Sequence[float] | float | None) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, (int, float)):
        return (value,)
    return tuple(value)


def _path(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


@attrs.frozen(kw_only=True)
class BenchConfig:
    """A benchmark: the target, the workload and the load steps.

    Give ``concurrency`` (closed loop: that many requests in flight, each sent when the one
    before it in its slot ends) or ``rate`` (open loop: requests sent on a schedule of that
    many per second whatever the answers do, and timed from their scheduled start); several
    values make a sweep, run in ascending order. Neither: one step at concurrency 1.

    Attributes:
        base_url: The API root; None: ``REKA_BASE_URL``, else the public API.
        model: The model every request names (a prompts file's line may name its own).
        api: The dialect, ``"native"`` or ``"openai"``.
        stream: Stream the answers (TTFT, TPOT and ITL are measured only then).
        concurrency: Closed-loop steps: requests in flight.
        rate: Open-loop steps: requests per second.
        arrivals: Open loop: ``"poisson"`` (exponential gaps, seeded) or ``"constant"``.
        burstiness: Open loop, Poisson arrivals: the shape of the gamma distribution the
            gaps are drawn from, as vLLM's ``--burstiness`` (mean gap ``1 / rate`` always):
            1.0 is Poisson, below 1 burstier, above 1 more even.
        max_concurrency: Open loop: the most requests in flight; a request due while the
            limit is reached waits (the wait counts in its latency and in the schedule lag).
        num_requests: Requests per step (with ``duration_s``: the workload's size, cycled).
        duration_s: Each step sends for this many seconds (then waits for the requests in
            flight) instead of sending ``num_requests``; None: by count.
        input_tokens: Synthetic prompts' lengths (default 128 tokens).
        output_tokens: ``max_tokens`` of each request (default 128 for synthetic prompts;
            for a prompts file, the lines' own ``max_tokens`` or else this, if given).
        prompts: A JSONL file (``{"prompt": ...}`` or ``{"messages": [...]}``, optional
            ``max_tokens`` and other chat parameters) or a text file (one prompt a line)
            instead of synthetic prompts; used in order, cycled when shorter than a step.
        seed: Seeds the synthetic prompts, their lengths and the Poisson arrivals.
        slo: What makes a request good, for goodput.
        params: Chat parameters for every request (``temperature``...).
        timeout_s: Per-request timeout; None: the client's default.
        max_retries: Retries per request (default 0: a benchmark reports errors, it does
            not hide them in latency).
        ramp_up_s: Closed loop: spread the first requests of the slots over this time
            (otherwise they all start at once).
        warmup: Unmeasured requests sent one by one before the first step; when the first
            fails, the run stops with its error (a wrong key, model or URL fails fast).

    Raises:
        ValueError: A value is out of range or the options contradict each other.
    """

    base_url: str | None = None
    model: str = "reka-flash"
    api: Api = "native"
    stream: bool = False
    concurrency: tuple[int, ...] = attrs.field(default=(), converter=_loads)
    rate: tuple[float, ...] = attrs.field(default=(), converter=_loads)
    arrivals: Arrivals = "poisson"
    burstiness: float = 1.0
    max_concurrency: int | None = None
    num_requests: int = 100
    duration_s: float | None = None
    input_tokens: Distribution | None = None
    output_tokens: Distribution | None = None
    prompts: str | None = attrs.field(default=None, converter=_path)
    seed: int = 0
    slo: SLO | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    timeout_s: float | None = None
    max_retries: int = 0
    ramp_up_s: float = 0.0
    warmup: int = 1

    def __attrs_post_init__(self) -> None:
        check_api(self.api)
        if self.concurrency and self.rate:
            raise ValueError(
                "give concurrency (closed loop) or rate (open loop), not both; "
                "cap an open loop with max_concurrency"
            )
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.concurrency):
            raise ValueError(f"concurrency must be integers >= 1, got {list(self.concurrency)}")
        if any(not (math.isfinite(r) and r > 0) for r in self.rate):
            raise ValueError(f"rate must be positive numbers, got {list(self.rate)}")
        if len(set(self.loads)) != len(self.loads):
            raise ValueError(f"a {self.load_kind} is given twice: {list(self.loads)}")
        if self.arrivals not in ("poisson", "constant"):
            raise ValueError(f"arrivals must be 'poisson' or 'constant', got {self.arrivals!r}")
        if isinstance(self.burstiness, bool) or not (
            isinstance(self.burstiness, (int, float))
            and math.isfinite(self.burstiness)
            and self.burstiness > 0
        ):
            raise ValueError(f"burstiness must be a positive number, got {self.burstiness!r}")
        if self.burstiness != 1.0 and not (self.rate and self.arrivals == "poisson"):
            raise ValueError(
                "burstiness shapes an open loop's Poisson arrivals: give rate (and not "
                "arrivals='constant')"
            )
        if self.duration_s is not None and not (
            isinstance(self.duration_s, (int, float))
            and math.isfinite(self.duration_s)
            and self.duration_s > 0
        ):
            raise ValueError(
                f"duration_s must be a positive number of seconds, got {self.duration_s!r}"
            )
        if self.max_concurrency is not None:
            if not self.rate:
                raise ValueError("max_concurrency caps an open loop: give rate too")
            if self.max_concurrency < 1:
                raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.num_requests < 1:
            raise ValueError(f"num_requests must be >= 1, got {self.num_requests}")
        if self.prompts is not None:
            if self.input_tokens is not None:
                raise ValueError("input_tokens sets synthetic prompts: not with a prompts file")
            if not Path(self.prompts).is_file():
                raise ValueError(f"prompts file not found: {self.prompts}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not self.ramp_up_s >= 0:
            raise ValueError(f"ramp_up_s must be >= 0, got {self.ramp_up_s!r}")
        if self.ramp_up_s and self.rate:
            raise ValueError("ramp_up_s spreads a closed loop's start: not with rate")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if not self.stream and self.slo is not None and (self.slo.ttft_s or self.slo.tpot_s):
            raise ValueError("SLOs on ttft or tpot need streaming (stream=True, --stream)")
        reserved = {"messages", "model", "stream", "api", "timeout", "max_retries"}
        if reserved & set(self.params):
            raise ValueError(f"params may not set {sorted(reserved & set(self.params))}")

    @property
    def load_kind(self) -> LoadKind:
        """``"rate"`` for an open loop, else ``"concurrency"``."""
        return "rate" if self.rate else "concurrency"

    @property
    def loads(self) -> tuple[float, ...]:
        """The load steps in the order they run (ascending)."""
        return tuple(sorted(self.rate or self.concurrency or (1,)))

    @property
    def synthetic_input(self) -> Distribution:
        """The synthetic prompts' lengths."""
        return self.input_tokens or Distribution.fixed(128)

    @property
    def synthetic_output(self) -> Distribution | None:
        """The ``max_tokens`` distribution (None: a prompts file's lines decide)."""
        if self.output_tokens is not None or self.prompts is not None:
            return self.output_tokens
        return Distribution.fixed(128)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (no secrets: the key is not part of a config)."""
        output = self.synthetic_output
        return {
            "base_url": self.base_url,
            "model": self.model,
            "api": self.api,
            "stream": self.stream,
            "load": self.load_kind,
            "loads": list(self.loads),
            "arrivals": self.arrivals if self.rate else None,
            "burstiness": self.burstiness if self.rate and self.arrivals == "poisson" else None,
            "max_concurrency": self.max_concurrency,
            "num_requests": self.num_requests,
            "duration_s": self.duration_s,
            "prompts": self.prompts,
            "input_tokens": None if self.prompts is not None else str(self.synthetic_input),
            "output_tokens": None if output is None else str(output),
            "seed": self.seed,
            "slo": self.slo.to_dict() if self.slo is not None else None,
            "params": dict(self.params),
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "ramp_up_s": self.ramp_up_s,
            "warmup": self.warmup,
        }
