"""``burstiness`` (gamma-distributed gaps, as vLLM's: 1.0 is Poisson) and ``duration_s``
(a step sends for a time instead of a count), against the mock over real sockets; and the
per-request records of ``--requests-out``."""

from __future__ import annotations

import itertools
import json
import random
import statistics
from pathlib import Path

import pytest

from reka_async.bench import BenchConfig, Distribution, arrival_offsets, run
from reka_async.testing import GenerationModel, MockRekaServer

KEY = "test-key"


def _gaps(offsets: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(offsets)]


def test_burstiness_1_is_the_poisson_schedule_of_before() -> None:
    rng = random.Random("7:arrivals:4.0")  # the exponential draws, computed independently
    expected = [0.0]
    for _ in range(99):
        expected.append(expected[-1] + rng.expovariate(4.0))
    assert arrival_offsets(100, 4.0, "poisson", 7, burstiness=1.0) == expected


@pytest.mark.parametrize("burstiness", [0.25, 4.0])
def test_burstiness_keeps_the_rate_and_shapes_the_gaps(burstiness: float) -> None:
    gaps = _gaps(arrival_offsets(20_000, 10.0, "poisson", 0, burstiness=burstiness))
    assert statistics.fmean(gaps) == pytest.approx(0.1, rel=0.05)  # the mean gap is 1 / rate
    # A gamma distribution of shape k has a coefficient of variation of 1 / sqrt(k).
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    assert cv == pytest.approx(burstiness**-0.5, rel=0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"burstiness": 0.0, "rate": [1.0]}, "burstiness must be a positive number"),
        ({"burstiness": 2.0, "concurrency": [2]}, "burstiness shapes an open loop"),
        ({"burstiness": 2.0, "rate": [1.0], "arrivals": "constant"}, "burstiness shapes"),
        ({"duration_s": 0.0}, "duration_s must be a positive number"),
    ],
)
def test_arrival_and_duration_options_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BenchConfig(**kwargs)  # type: ignore[arg-type]


async def test_a_closed_loop_under_a_duration_cycles_its_prompts_until_the_time_is_up() -> None:
    generation = GenerationModel(ttft_s=0.01, tpot_s=0.001)
    async with MockRekaServer(api_key=KEY, generation=generation) as server:
        cfg = BenchConfig(
            base_url=server.base_url, concurrency=[2], num_requests=3, duration_s=0.5,
            input_tokens=Distribution.fixed(8), output_tokens=Distribution.fixed(4), warmup=0,
        )  # fmt: skip
        seen = []
        report = await run(cfg, api_key=KEY, on_progress=seen.append)
    step = report.runs[0]
    assert step.num_requests > 3  # more than the workload: its prompts were sent again
    assert step.ok == step.num_requests
    assert all(s.sent - step.origin < 0.5 for s in step.samples)  # none started after the end
    assert {s.index for s in step.samples} == set(range(step.num_requests))
    assert all(p.total is None for p in seen)  # the count is not known before the end
    assert report.to_dict()["config"]["duration_s"] == 0.5


async def test_an_open_loop_under_a_duration_sends_every_arrival_due_before_its_end() -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel()) as server:
        cfg = BenchConfig(
            base_url=server.base_url, rate=[50.0], arrivals="constant", duration_s=0.2,
            num_requests=4, output_tokens=Distribution.fixed(2), warmup=0,
        )  # fmt: skip
        report = await run(cfg, api_key=KEY)
    step = report.runs[0]
    offsets = sorted(s.scheduled - step.origin for s in step.samples)
    assert offsets == pytest.approx([i / 50.0 for i in range(10)], abs=1e-9)


async def test_the_request_records_hold_one_line_per_request(tmp_path: Path) -> None:
    async with MockRekaServer(api_key=KEY, generation=GenerationModel()) as server:
        cfg = BenchConfig(
            base_url=server.base_url, concurrency=[1, 2], num_requests=3, stream=True,
            output_tokens=Distribution.fixed(5), warmup=0,
        )  # fmt: skip
        report = await run(cfg, api_key=KEY)
    out = tmp_path / "requests.jsonl"
    report.write_requests(out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["step"], r["concurrency"], r["index"]) for r in lines] == [
        (1, 1, 0), (1, 1, 1), (1, 1, 2), (2, 2, 0), (2, 2, 1), (2, 2, 2),
    ]  # fmt: skip
    for record in lines:
        assert record["ok"] is True
        assert record["error"] is None
        assert (record["output_tokens"], record["chunks"], len(record["itl_ms"])) == (5, 5, 4)
        assert record["ttft_ms"] <= record["e2e_ms"]
        assert record["sent_ms"] >= record["scheduled_ms"]
    # The files' rules (reka_async/_files.py): written through a link, which stays a link.
    target, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    target.write_text("old\n")
    link.symlink_to(target)
    report.write_requests(link)
    assert link.is_symlink()
    assert target.read_text() == out.read_text()
