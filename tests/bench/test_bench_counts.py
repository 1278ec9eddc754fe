"""``reka_async.bench.run`` against the mock's generation model over real sockets: the
benchmark counts what the mock was told to do (tokens in and out, requests, errors by type,
the schedule), on both dialects, streamed and not. Latency figures are not compared here
(that needs quiet CPUs: see ``test_bench_accuracy.py`` and ``benchmarks/accuracy.py``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from reka_async import AsyncClient, AuthenticationError
from reka_async.bench import (
    BenchConfig,
    Distribution,
    PlotUnavailableError,
    Progress,
    arrival_offsets,
    parse_slo,
    plot_report,
    run,
)
from reka_async.testing import GenerationModel, MockRekaServer

KEY = "test-key"


def config(server: MockRekaServer, **kwargs: object) -> BenchConfig:
    options: dict[str, object] = {
        "base_url": server.base_url,
        "num_requests": 6,
        "input_tokens": Distribution.fixed(30),
        "output_tokens": Distribution.fixed(12),
        **kwargs,
    }
    return BenchConfig(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_streamed_sweep_counts_what_the_mock_generated(api: str) -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel(capacity=4)) as server:
        seen: list[Progress] = []
        cfg = config(server, api=api, stream=True, concurrency=[1, 3])
        report = await run(cfg, api_key=KEY, on_progress=seen.append)
        assert server.generation is not None
        assert server.generation.started == 1 + 12
    assert report.ok
    assert [r.load for r in report.runs] == [1, 3]
    for result in report.runs:
        assert (result.ok, result.failed, result.errors) == (6, 0, {})
        for sample in result.samples:
            assert sample.output_tokens == 12 == sample.answer_events  # one event a token
            assert sample.input_tokens == 30 == sample.usage_input_tokens
            assert sample.finish_reason == "length"
            assert len(sample.token_times) == 12
            assert len(sample.itls) == 11
            assert sample.first_token is not None
            assert sample.scheduled <= sample.first_token
        assert result.ttft_ms is not None
        assert result.ttft_ms.n == 6
        assert result.itl_ms is not None
        assert result.itl_ms.n == 66
        assert result.output_tokens_per_s == pytest.approx(12 * result.requests_per_s)
        assert result.input_tokens_per_s == pytest.approx(30 * result.requests_per_s)
    assert report.saturation is not None  # a sweep: the rule was applied
    finished = [p for p in seen if p.finished]
    assert [(p.step, p.done, p.ok) for p in finished] == [(1, 6, 6), (2, 6, 6)]


async def test_plain_answers_have_end_to_end_latency_only() -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel()) as server:
        report = await run(config(server, api="openai"), api_key=KEY)
    result = report.runs[0]
    assert result.ok == 6
    assert result.e2e_ms is not None
    assert result.e2e_ms.n == 6
    assert (result.ttft_ms, result.tpot_ms, result.itl_ms) == (None, None, None)
    assert {s.output_tokens for s in result.samples} == {12}
    assert report.saturation is None  # one step: nothing to compare


async def test_failed_requests_are_counted_by_error_type() -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel(), retry_after_s=0) as server:
        server.inject("500", "rate_limit", "500")
        report = await run(config(server, stream=True, warmup=0), api_key=KEY)
    result = report.runs[0]
    assert (result.ok, result.failed) == (3, 3)
    assert result.errors == {"InternalServerError": 2, "RateLimitError": 1}
    assert {s.status for s in result.samples if not s.ok} == {500, 429}
    assert not report.ok
    assert any("3 of 6 requests failed" in w for w in report.warnings)


async def test_an_open_loop_sends_on_its_schedule_and_reports_the_lag() -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel()) as server:
        cfg = config(server, stream=True, rate=[500.0], arrivals="constant", num_requests=10)
        report = await run(cfg, api_key=KEY)
    result = report.runs[0]
    offsets = arrival_offsets(10, 500.0, "constant", 0)
    for sample, offset in zip(result.samples, offsets, strict=False):
        # Timed from the schedule, whenever it was actually sent.
        assert sample.scheduled - result.origin == pytest.approx(offset, abs=1e-9)
        assert sample.sent >= sample.scheduled
    assert result.schedule_lag_ms is not None
    assert result.schedule_lag_ms.n == 10
    assert result.to_dict()["rate"] == 500.0


async def test_an_open_loop_cap_bounds_the_requests_in_flight() -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel(tpot_s=0.001)) as server:
        cfg = config(server, stream=True, rate=[1000.0], max_concurrency=2, warmup=0)
        report = await run(cfg, api_key=KEY)
        assert server.max_in_flight <= 2
    assert report.runs[0].ok == 6


async def test_research_streams_report_both_first_token_times() -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel()) as server:
        # The default dialect is native: the research model goes to /chat/completions anyway.
        cfg = config(server, stream=True, model="reka-flash-research")
        report = await run(cfg, api_key=KEY)
    result = report.runs[0]
    assert result.ok == 6
    assert result.ttft_reasoning_ms is not None
    assert result.ttft_ms is not None
    for sample in result.samples:
        assert sample.first_reasoning is not None
        assert sample.first_token is not None
        assert sample.first_reasoning <= sample.first_token  # reasoning comes first
        assert len(sample.token_times) > sample.answer_events  # reasoning events counted in ITL
    assert "reasoning TTFT p50" in report.table()


async def test_a_stream_without_answer_text_is_a_failure() -> None:
    tools = [{"name": "lookup", "description": "d", "parameters": {"type": "object"}}]
    async with MockRekaServer(api_key=KEY, generation=GenerationModel()) as server:
        cfg = config(server, stream=True, warmup=0, params={"tools": tools, "tool_choice": "tool"})
        report = await run(cfg, api_key=KEY)
    assert report.runs[0].errors == {"NoTokens": 6}


async def test_a_failed_warm_up_stops_the_run_with_its_error() -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel()) as server:
        with pytest.raises(AuthenticationError):
            await run(config(server), api_key="wrong-key")
        assert len(server.requests) == 1  # nothing was sent after it


async def test_goodput_and_the_json_file(tmp_path: Path) -> None:
    async with (
        MockRekaServer(api_key=KEY, generation=GenerationModel()) as server,
        AsyncClient(KEY, server.base_url, max_connections=1) as client,
    ):
        slo = parse_slo("ttft=60s,e2e=60s")
        cfg = config(server, stream=True, concurrency=[2], slo=slo, api="openai")
        report = await run(cfg, client=client)  # a native client: the config's dialect wins
        assert {r.path for r in server.requests} == {"/v1/chat/completions"}
    assert "pool holds 1 connections, fewer than the 2" in report.warnings[0]
    result = report.runs[0]
    assert result.goodput is not None
    assert result.goodput.good == 6
    path = tmp_path / "bench.json"
    report.write_json(path)
    data = json.loads(path.read_text())
    assert data["config"]["slo"] == {"ttft_ms": 60000.0, "e2e_ms": 60000.0}
    assert data["config"]["base_url"] == server.base_url
    assert KEY not in path.read_text()
    (run_data,) = data["runs"]
    assert run_data["concurrency"] == 2
    assert len(run_data["samples"]) == 6
    assert run_data["goodput"]["good"] == 6
    for metric in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert set(run_data[metric]) >= {"mean", "p50", "p90", "p95", "p99", "max"}


async def test_plots_are_drawn_or_refused_with_the_extra_to_install(tmp_path: Path) -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel()) as server:
        report = await run(config(server, stream=True, concurrency=[1, 2]), api_key=KEY)
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(PlotUnavailableError, match=r"reka-async\[plot\]"):
            plot_report(report, tmp_path)
    else:  # pragma: no cover - depends on the environment
        written = plot_report(report, tmp_path)
        assert {p.name for p in written} == {"latency.png", "throughput.png", "distributions.png"}
        assert all(p.stat().st_size > 0 for p in written)
