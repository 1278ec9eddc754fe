"""The one timing comparison of the benchmark: measured against the mock's generation model.

The mock runs in its own process with a known model (TTFT 100 ms, 10 ms per token after the
first, 4 generations at once); the benchmark must find those figures, and the saturation
point at the capacity. The tolerance is 20 %, which holds on a busy 2-core machine; the
tight checks (2 % and 5 % at 1, 16 and 128 streams) are ``benchmarks/accuracy.py``'s.
"""

from __future__ import annotations

import pytest

from reka_async.bench import BenchConfig, Distribution, run
from reka_async.testing import MockServerProcess

TTFT_MS = 100.0
TPOT_MS = 10.0
CAPACITY = 4


async def test_the_benchmark_measures_what_the_mock_was_told() -> None:
    with MockServerProcess(
        "--ttft-ms", str(TTFT_MS), "--tpot-ms", str(TPOT_MS), "--capacity", str(CAPACITY)
    ) as server:  # fmt: skip
        config = BenchConfig(
            base_url=server.base_url,
            stream=True,
            concurrency=[1, CAPACITY, 2 * CAPACITY],
            num_requests=2 * CAPACITY,
            input_tokens=Distribution.fixed(32),
            output_tokens=Distribution.fixed(20),
        )
        report = await run(config, api_key="any-key")
    assert report.ok
    for result in report.runs[:2]:  # up to the capacity, nothing waits for a slot
        assert result.ttft_ms is not None
        assert result.tpot_ms is not None
        assert result.ttft_ms.p50 == pytest.approx(TTFT_MS, rel=0.2), result.label
        assert result.tpot_ms.p50 == pytest.approx(TPOT_MS, rel=0.2), result.label
    saturation = report.saturation
    assert saturation is not None
    assert saturation.found, report.table()
    assert saturation.load == CAPACITY, report.table()
