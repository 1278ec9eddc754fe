"""Benchmarks of the API for users: throughput and latency of a workload against any server.

``reka-async bench`` on the command line; here the same from Python::

    import asyncio

    from reka_async.bench import BenchConfig, run

    config = BenchConfig(
        base_url="http://127.0.0.1:8000/v1", stream=True, concurrency=[1, 16, 64],
        num_requests=200,
    )
    report = asyncio.run(run(config, api_key="..."))
    print(report.table())
    report.write_json("bench.json")

Per load step it reports requests ok and failed by error type, request and token
throughput, and the mean, p50, p90, p95, p99 and max of TTFT, TPOT, ITL and end-to-end
latency (definitions: ``_sample``), goodput under an `SLO`, the saturation point of a sweep
(the rule: ``_metrics``), and the client's own load (``_client_load``).

The modules, one idea each: ``_config`` (`BenchConfig`, `Distribution`, `SLO`),
``_workload`` (synthetic prompts, a prompts file, the arrival schedule), ``_vllm`` (the
figures under vLLM's result names), ``_sample`` (one
request's timestamps and what they mean), ``_stats`` (percentiles), ``_metrics`` (a step's
figures, the saturation rule), ``_client_load`` (event-loop lag and CPU), ``_runner`` (the
closed and open loops, `run`), ``_report`` (`BenchReport`: table and JSON) and ``_plot``
(PNG plots, with the ``[plot]`` extra).
"""

from ._client_load import ClientLoad
from ._config import SLO, Arrivals, BenchConfig, Distribution, LoadKind, parse_slo
from ._metrics import (
    SATURATION_RULE,
    Goodput,
    RunResult,
    Saturation,
    find_saturation,
    summarize_run,
)
from ._plot import PlotUnavailableError, check_plotting, plot_report
from ._report import BenchReport
from ._runner import Progress, ProgressHook, run
from ._sample import Sample
from ._stats import Summary, percentile, summarize
from ._workload import (
    BenchRequest,
    arrival_gaps,
    arrival_offsets,
    build_requests,
    estimate_input_tokens,
)

__all__ = [
    "SATURATION_RULE",
    "SLO",
    "Arrivals",
    "BenchConfig",
    "BenchReport",
    "BenchRequest",
    "ClientLoad",
    "Distribution",
    "Goodput",
    "LoadKind",
    "PlotUnavailableError",
    "Progress",
    "ProgressHook",
    "RunResult",
    "Sample",
    "Saturation",
    "Summary",
    "arrival_gaps",
    "arrival_offsets",
    "build_requests",
    "check_plotting",
    "estimate_input_tokens",
    "find_saturation",
    "parse_slo",
    "percentile",
    "plot_report",
    "run",
    "summarize",
    "summarize_run",
]
