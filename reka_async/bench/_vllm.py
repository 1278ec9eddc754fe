"""A step's figures under the names of ``vllm bench serve --save-result``.

Each run of the ``--json`` file carries, beside its own fields, the fields of vLLM's result
file that mean the same thing, so a dashboard that plots vLLM's (or a script that reads
them) reads ours too. `VLLM_FIELDS` is the mapping, in words; docs/guides/bench.md shows it
as a table.
Where a definition differs from vLLM's the note says how:

- Latencies run from the request's *scheduled* start (vLLM: from when it was sent); in a
  closed loop the two are the same instant, in an open loop ours include the lag.
- TPOT is (last answer event - first answer event) / (output tokens - 1); vLLM's is
  (latency - TTFT) / (output tokens - 1), which also counts the wait after the last event.
- Input tokens are estimated (about four characters a token), not counted by a tokenizer.
- Percentiles interpolate linearly between ranks, as numpy's (vLLM's) do.
"""

from __future__ import annotations

from typing import Any, Final

from ._config import BenchConfig
from ._metrics import RunResult
from ._stats import Summary

__all__ = ["VLLM_FIELDS", "VLLM_METRICS", "vllm_fields"]

#: Our latency summaries and vLLM's metric names (``mean_<name>_ms``, ``median_<name>_ms``,
#: ``std_<name>_ms``, ``p90_<name>_ms``, ``p95_<name>_ms``, ``p99_<name>_ms``).
VLLM_METRICS: Final = (
    ("ttft_ms", "ttft"),
    ("tpot_ms", "tpot"),
    ("itl_ms", "itl"),
    ("e2e_ms", "e2el"),
)

_STATS: Final = (("mean", "mean"), ("median", "p50"), ("std", "std"), ("p90", "p90"),
                 ("p95", "p95"), ("p99", "p99"))  # fmt: skip

#: vLLM's field: what it is here.
VLLM_FIELDS: Final[dict[str, str]] = {
    "duration": "duration_s: the step's start to its last answer (s)",
    "completed": "ok: requests that succeeded",
    "failed": "failed: requests that failed",
    "num_prompts": "num_requests: requests the step sent",
    "total_input_tokens": "input tokens of the successful requests (estimated)",
    "total_output_tokens": "output tokens of the successful requests (usage)",
    "request_throughput": "requests_per_s: successful requests per second",
    "request_goodput": "goodput.requests_per_s (null without --slo)",
    "output_throughput": "output_tokens_per_s",
    "total_token_throughput": "total_tokens_per_s",
    "max_concurrency": "closed loop: the concurrency; open loop: --max-concurrency (or null)",
    "request_rate": "open loop: the rate; closed loop: null (vLLM writes inf)",
    "burstiness": "open loop: --burstiness (1.0: Poisson, null for constant arrivals)",
    **{f"{stat}_{name}_ms": f"{ours}.{key}" for ours, name in VLLM_METRICS for stat, key in _STATS},
}


def vllm_fields(run: RunResult, config: BenchConfig) -> dict[str, Any]:
    """The `VLLM_FIELDS` of one step (a latency of a kind the step has none of is null)."""
    good = [s for s in run.samples if s.ok]
    closed = run.load_kind == "concurrency"
    data: dict[str, Any] = {
        "duration": run.duration_s,
        "completed": run.ok,
        "failed": run.failed,
        "num_prompts": run.num_requests,
        "total_input_tokens": sum(s.input_tokens for s in good),
        "total_output_tokens": sum(s.generated_tokens for s in good),
        "request_throughput": run.requests_per_s,
        "request_goodput": None if run.goodput is None else run.goodput.requests_per_s,
        "output_throughput": run.output_tokens_per_s,
        "total_token_throughput": run.total_tokens_per_s,
        "max_concurrency": int(run.load) if closed else config.max_concurrency,
        "request_rate": None if closed else run.load,
        "burstiness": None if closed or run.arrivals != "poisson" else config.burstiness,
    }
    for ours, name in VLLM_METRICS:
        summary: Summary | None = getattr(run, ours)
        for stat, key in _STATS:
            data[f"{stat}_{name}_ms"] = None if summary is None else getattr(summary, key)
    return data
