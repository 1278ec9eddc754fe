"""``reka_async.bench``'s arithmetic on recorded timestamps: percentiles, per-request metrics,
step figures, goodput, the saturation rule, the client-bound rule, the workload and the
configuration. Deterministic: no request is sent and no clock is read."""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
from pathlib import Path

import pytest

from reka_async.bench import (
    SLO,
    BenchConfig,
    BenchReport,
    ClientLoad,
    Distribution,
    Sample,
    arrival_offsets,
    build_requests,
    estimate_input_tokens,
    find_saturation,
    parse_slo,
    percentile,
    summarize,
    summarize_run,
)
from reka_async.bench._client_load import client_reasons
from reka_async.bench._report import report_warnings

# --- percentiles ----------------------------------------------------------------------------


def test_percentiles_interpolate_linearly_between_ranks() -> None:
    # numpy.percentile([1, 2, 3, 4], [0, 50, 90, 100]) == [1, 2.5, 3.7, 4]
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile(values, 100) == 4.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_or_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_summary_has_mean_percentiles_and_extremes() -> None:
    summary = summarize([4.0, 1.0, 3.0, 2.0, 10.0])
    assert summary is not None
    assert (summary.n, summary.mean, summary.min, summary.max) == (5, 4.0, 1.0, 10.0)
    assert summary.p50 == 3.0
    assert summary.p99 == pytest.approx(9.76)  # 4 + 0.96 * (10 - 4)
    assert summary.std == pytest.approx(statistics.pstdev([4, 1, 3, 2, 10]))
    assert set(summary.to_dict()) >= {"mean", "p50", "p90", "p95", "p99", "max"}
    assert summarize([]) is None


# --- one request ----------------------------------------------------------------------------


def stream_sample(
    index: int = 0,
    *,
    scheduled: float = 100.0,
    sent: float | None = None,
    ttft: float = 0.25,
    tpot: float = 0.01,
    tokens: int = 64,
    usage: bool = True,
    trailer: float = 0.002,
) -> Sample:
    """A stream recorded as the mock's generation model sends it: one token an event."""
    first = scheduled + ttft
    times = [first + k * tpot for k in range(tokens)]
    return Sample(
        index=index,
        scheduled=scheduled,
        sent=scheduled if sent is None else sent,
        end=times[-1] + trailer,
        first_token=first,
        last_token=times[-1],
        token_times=times,
        answer_events=tokens,
        input_tokens=128,
        output_tokens=tokens if usage else None,
        finish_reason="length",
    )


def test_a_stream_sample_gives_ttft_tpot_itl_and_e2e() -> None:
    sample = stream_sample()
    assert sample.ok
    assert sample.ttft == pytest.approx(0.25)
    assert sample.tpot == pytest.approx(0.01)
    assert sample.itls == pytest.approx([0.01] * 63)
    assert sample.e2e == pytest.approx(0.25 + 63 * 0.01 + 0.002)
    assert sample.lag == 0.0


def test_tpot_counts_usage_tokens_not_events() -> None:
    # Four tokens an event: 16 events, 64 tokens. TPOT is per token, ITL per event.
    times = [1.0 + k * 0.04 for k in range(16)]
    sample = Sample(
        index=0,
        scheduled=0.5,
        end=times[-1],
        first_token=times[0],
        last_token=times[-1],
        token_times=times,
        answer_events=16,
        output_tokens=64,
    )
    assert sample.tpot == pytest.approx(0.6 / 63)
    assert sample.itls == pytest.approx([0.04] * 15)


def test_without_usage_the_answer_events_are_the_tokens() -> None:
    sample = stream_sample(tokens=11, usage=False)
    assert sample.generated_tokens == 11
    assert sample.tpot == pytest.approx(0.01)


def test_one_token_answers_have_no_tpot() -> None:
    assert stream_sample(tokens=1).tpot is None


def test_open_loop_latency_runs_from_the_scheduled_start() -> None:
    # Sent 200 ms late: TTFT and e2e include the delay (no coordinated omission).
    sample = stream_sample(scheduled=10.0, sent=10.2, ttft=0.45)
    assert sample.lag == pytest.approx(0.2)
    assert sample.ttft == pytest.approx(0.45)
    assert sample.to_dict(10.0)["lag_ms"] == pytest.approx(200.0)


def test_research_samples_keep_both_ttfts() -> None:
    sample = stream_sample(ttft=0.5)
    sample.first_reasoning = sample.scheduled + 0.1
    assert sample.ttft_reasoning == pytest.approx(0.1)
    assert sample.ttft == pytest.approx(0.5)


def test_a_sample_in_json_has_every_timestamp_in_ms() -> None:
    data = stream_sample(tokens=3, scheduled=5.0).to_dict(4.0)
    assert data["scheduled_ms"] == pytest.approx(1000.0)
    assert data["ttft_ms"] == pytest.approx(250.0)
    assert data["itl_ms"] == pytest.approx([10.0, 10.0])
    assert data["output_tokens"] == 3
    assert data["error"] is None
    json.dumps(data)


# --- one step -------------------------------------------------------------------------------


def failed(index: int, kind: str, *, at: float = 100.5) -> Sample:
    return Sample(index=index, scheduled=100.0, sent=100.0, end=at, error_type=kind, error="boom")


def test_step_figures_count_successes_over_the_step_duration() -> None:
    samples = [
        stream_sample(0, scheduled=100.0),  # ends at 100.882
        stream_sample(1, scheduled=100.5, ttft=0.35),  # ends at 101.482
        failed(2, "RateLimitError"),
        failed(3, "RateLimitError"),
        failed(4, "APITimeoutError", at=101.0),
    ]
    run = summarize_run(samples, load_kind="concurrency", load=4, origin=100.0)
    duration = 0.5 + 0.35 + 0.63 + 0.002
    assert run.duration_s == pytest.approx(duration)
    assert (run.num_requests, run.ok, run.failed) == (5, 2, 3)
    assert run.errors == {"APITimeoutError": 1, "RateLimitError": 2}
    assert run.requests_per_s == pytest.approx(2 / duration)
    assert run.output_tokens_per_s == pytest.approx(128 / duration)
    assert run.input_tokens_per_s == pytest.approx(256 / duration)
    assert run.total_tokens_per_s == pytest.approx(384 / duration)
    assert run.ttft_ms is not None
    assert run.ttft_ms.n == 2
    assert run.ttft_ms.mean == pytest.approx(300.0)
    assert run.tpot_ms is not None
    assert run.tpot_ms.p50 == pytest.approx(10.0)
    assert run.itl_ms is not None
    assert run.itl_ms.n == 126
    assert run.schedule_lag_ms is None  # closed loop: no schedule
    assert run.goodput is None


def test_goodput_counts_successes_that_meet_every_slo() -> None:
    samples = [
        stream_sample(0, ttft=0.2),
        stream_sample(1, ttft=0.6),  # misses ttft
        stream_sample(2, ttft=0.2, tpot=0.03),  # misses tpot
        stream_sample(3, ttft=0.2, tokens=1),  # no TPOT: meets it
        failed(4, "InternalServerError"),
    ]
    slo = parse_slo("ttft=500ms,tpot=20ms,e2e=5s")
    run = summarize_run(samples, load_kind="rate", load=2.0, origin=100.0, slo=slo)
    assert run.goodput is not None
    assert run.goodput.good == 2
    assert run.goodput.fraction == pytest.approx(0.4)
    assert run.goodput.requests_per_s == pytest.approx(2 / run.duration_s)
    assert run.schedule_lag_ms is not None  # open loop: the lag is reported


def test_a_step_in_json_has_the_stable_keys() -> None:
    run = summarize_run([stream_sample()], load_kind="concurrency", load=16, origin=100.0)
    data = run.to_dict()
    for key in ("concurrency", "requests_per_s", "output_tokens_per_s", "errors", "samples"):
        assert key in data
    for metric in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert set(data[metric]) >= {"mean", "p50", "p90", "p95", "p99", "max"}
    assert data["concurrency"] == 16
    assert isinstance(data["concurrency"], int)
    assert "rate" not in data
    assert "samples" not in run.to_dict(samples=False)


# --- the saturation rule ----------------------------------------------------------------------


def step(load: float, *, per_s: float, e2e: float, ok: bool = True) -> object:
    """A step of 10 requests that finish at ``per_s`` a second with latency ``e2e``."""
    samples = []
    for i in range(10):
        end = 100.0 + (i + 1) / per_s
        if ok:
            samples.append(Sample(index=i, scheduled=end - e2e, sent=end - e2e, end=end))
        else:
            samples.append(failed(i, "InternalServerError", at=end))
    return summarize_run(samples, load_kind="concurrency", load=load, origin=100.0)


def test_saturation_is_the_load_before_throughput_stops_rising_and_latency_rises() -> None:
    runs = [
        step(1, per_s=4, e2e=0.25),
        step(2, per_s=8, e2e=0.25),
        step(4, per_s=16, e2e=0.26),
        step(8, per_s=16.2, e2e=0.5),  # +1 % throughput, +92 % latency
        step(16, per_s=16.3, e2e=1.0),
    ]
    saturation = find_saturation(runs)  # type: ignore[arg-type]
    assert saturation.found
    assert (saturation.load, saturation.first_saturated) == (4, 8)
    assert saturation.throughput_gain == pytest.approx(0.0125, abs=1e-3)
    assert saturation.latency_gain == pytest.approx(0.923, abs=1e-3)


def test_flat_throughput_without_more_latency_is_not_saturation() -> None:
    runs = [step(1, per_s=4, e2e=0.25), step(2, per_s=4.1, e2e=0.27), step(4, per_s=8, e2e=0.3)]
    assert not find_saturation(runs).found  # type: ignore[arg-type]


def test_a_step_where_nothing_succeeded_is_saturated() -> None:
    runs = [
        step(1, per_s=4, e2e=0.25),
        step(2, per_s=8, e2e=0.25),
        step(4, per_s=8, e2e=1, ok=False),
    ]
    saturation = find_saturation(runs)  # type: ignore[arg-type]
    assert (saturation.found, saturation.load, saturation.first_saturated) == (True, 2, 4)


def test_a_sweep_of_short_steps_is_flagged() -> None:
    runs = [step(1, per_s=4, e2e=0.25), step(2, per_s=8, e2e=0.25), step(4, per_s=8, e2e=0.5)]
    (note,) = report_warnings(runs)  # type: ignore[arg-type]
    assert note.startswith("concurrency 2, concurrency 4: fewer than 10 requests per slot")
    assert note.endswith("at least 40")
    assert report_warnings(runs[:1]) == ()  # type: ignore[arg-type]


# --- the honest client ------------------------------------------------------------------------


def test_the_client_is_flagged_when_busy_late_or_behind_schedule() -> None:
    quiet = summarize([0.5, 0.6, 1.0])
    late = summarize([0.5] * 98 + [40.0, 50.0])
    assert client_reasons(40.0, quiet, None) == ()
    assert "CPU core" in client_reasons(95.0, quiet, None)[0]
    assert "event loop" in client_reasons(40.0, late, None)[0]
    assert "behind the schedule" in client_reasons(40.0, quiet, late)[0]
    assert ClientLoad(cpu_percent=95.0, loop_lag_ms=None, reasons=("x",)).bottleneck


# --- workloads ------------------------------------------------------------------------------


def test_synthetic_prompts_have_the_target_length_by_the_batch_estimate() -> None:
    config = BenchConfig(num_requests=20, input_tokens=Distribution.parse("uniform:1,300"))
    requests = build_requests(config)
    for request in requests:
        words = request.args["messages"][0]["content"].split()
        assert request.input_tokens == len(words)  # the mock counts words
        assert request.input_tokens == estimate_input_tokens(request.args["messages"])
        assert request.args["max_tokens"] == 128
    assert len({r.args["messages"][0]["content"] for r in requests}) == 20  # all different


def test_a_seed_reproduces_the_workload_and_another_changes_it() -> None:
    def prompts(seed: int) -> list[str]:
        config = BenchConfig(
            num_requests=5, seed=seed, output_tokens=Distribution.parse("normal:64,16")
        )
        return [json.dumps(r.args) for r in build_requests(config)]

    assert prompts(1) == prompts(1)
    assert prompts(1) != prompts(2)


@pytest.mark.parametrize(
    ("spec", "mean"),
    [("uniform:10,30", 20.0), ("normal:100,20", 100.0), ("lognormal:200,100", 200.0), ("64", 64.0)],
)
def test_length_distributions_have_their_mean(spec: str, mean: float) -> None:
    dist = Distribution.parse(spec)
    rng = random.Random(7)
    draws = [dist.sample(rng) for _ in range(20_000)]
    assert statistics.fmean(draws) == pytest.approx(mean, rel=0.03)
    assert min(draws) >= 1
    assert str(Distribution.parse(str(dist))) == str(dist)


@pytest.mark.parametrize("spec", ["", "abc", "normal:5", "uniform:9,3", "beta:1,2", "0", "-5"])
def test_bad_length_distributions_say_how_to_write_one(spec: str) -> None:
    with pytest.raises(ValueError, match=r"distribution|at least 1|high end"):
        Distribution.parse(spec)


def test_a_prompts_file_gives_requests_in_order_and_cycles(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    lines = [
        {"prompt": "one two three four", "max_tokens": 7},
        {"messages": [{"role": "user", "content": "hello there"}], "temperature": 0},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    config = BenchConfig(num_requests=5, prompts=path, output_tokens=Distribution.fixed(9))
    requests = build_requests(config)
    assert [r.args["max_tokens"] for r in requests] == [7, 9, 7, 9, 7]
    assert requests[0].args["messages"] == [{"role": "user", "content": "one two three four"}]
    assert requests[1].args["temperature"] == 0
    assert requests[0].input_tokens == len("one two three four") // 4 + 1


def test_a_plain_text_prompts_file_is_a_prompt_a_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("first prompt\nsecond prompt\n")
    requests = build_requests(BenchConfig(num_requests=2, prompts=str(path)))
    assert [r.args["messages"][0]["content"] for r in requests] == ["first prompt", "second prompt"]
    assert "max_tokens" not in requests[0].args  # a file's lines decide, unless told


def test_a_bad_prompts_line_is_named_by_its_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "fine"}\n{"prompt": "x", "temperature": "hot"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: .*temperature"):
        build_requests(BenchConfig(prompts=path))
    path.write_text('{"prompt": "fine"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not JSON"):
        build_requests(BenchConfig(prompts=path))
    path.write_text("\n\n")
    with pytest.raises(ValueError, match="no prompts"):
        build_requests(BenchConfig(prompts=path))


def test_constant_arrivals_are_evenly_spaced_from_the_start() -> None:
    offsets = arrival_offsets(1001, 4.0, "constant", 0)
    assert offsets[0] == 0.0
    assert offsets[1000] == 250.0  # computed from the start, not summed: no drift


def test_poisson_arrivals_are_seeded_with_exponential_gaps() -> None:
    offsets = arrival_offsets(20_000, 10.0, "poisson", 3)
    assert offsets == arrival_offsets(20_000, 10.0, "poisson", 3)
    assert offsets != arrival_offsets(20_000, 10.0, "poisson", 4)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert min(gaps) >= 0
    assert statistics.fmean(gaps) == pytest.approx(0.1, rel=0.03)
    assert statistics.pstdev(gaps) == pytest.approx(0.1, rel=0.05)  # exponential: std = mean


# --- configuration --------------------------------------------------------------------------


def test_slo_text_needs_units_and_known_metrics() -> None:
    slo = parse_slo("ttft=500ms, e2e=5s,tpot=40000us")
    assert slo == SLO(ttft_s=0.5, e2e_s=5.0, tpot_s=0.04)
    assert slo.to_dict() == {"ttft_ms": 500.0, "tpot_ms": 40.0, "e2e_ms": 5000.0}
    with pytest.raises(ValueError, match="give a unit"):
        parse_slo("ttft=500")
    with pytest.raises(ValueError, match="METRIC one of ttft, tpot, e2e"):
        parse_slo("latency=5s")
    with pytest.raises(ValueError, match="given twice"):
        parse_slo("ttft=1s,ttft=2s")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": [1], "rate": [2.0]}, "not both"),
        ({"concurrency": [0]}, "integers >= 1"),
        ({"rate": [-1.0]}, "positive numbers"),
        ({"concurrency": [4, 4]}, "given twice"),
        ({"concurrency": [4], "max_concurrency": 2}, "give rate too"),
        ({"slo": SLO(ttft_s=0.5)}, "need streaming"),
        ({"rate": [1.0], "ramp_up_s": 1.0}, "not with rate"),
        ({"prompts": "/nonexistent/prompts.jsonl"}, "not found"),
        ({"api": "grpc"}, "native"),
        ({"params": {"stream": True}}, "may not set"),
        ({"num_requests": 0}, ">= 1"),
    ],
)
def test_bad_configurations_say_what_to_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BenchConfig(**kwargs)  # type: ignore[arg-type]


def test_loads_run_in_ascending_order_and_default_to_one_stream() -> None:
    assert BenchConfig(concurrency=[64, 1, 16]).loads == (1, 16, 64)
    assert BenchConfig().loads == (1,)
    assert BenchConfig(rate=[5.0]).load_kind == "rate"


def test_the_report_table_shows_every_step_and_the_saturation() -> None:
    config = BenchConfig(concurrency=[1, 2, 4, 8], stream=True, slo=parse_slo("e2e=1s"))
    runs = (
        step(1, per_s=4, e2e=0.25),
        step(2, per_s=8, e2e=0.25),
        step(4, per_s=16, e2e=0.26),
        step(8, per_s=16.2, e2e=0.5),
    )
    report = BenchReport(
        config=config,
        runs=runs,  # type: ignore[arg-type]
        saturation=find_saturation(runs),  # type: ignore[arg-type]
        environment={},
    )
    table = report.table()
    assert "concurrency" in table
    assert "TTFT p50" in table
    assert len([line for line in table.splitlines() if line.strip().startswith(("1 ", "8 "))]) == 2
    assert "saturation: at concurrency 4" in table
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) >= {"config", "runs", "saturation"}
    assert data["config"]["loads"] == [1, 2, 4, 8]
    assert not math.isnan(data["runs"][0]["requests_per_s"])
