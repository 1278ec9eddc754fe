"""``max_error_rate``: a batch whose recent items mostly fail, whatever their error, stops
(``BatchAbortedError``, its finished results kept) instead of grinding through the input;
input errors do not count, and nothing is judged before a whole window has finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reka_async import AsyncClient, BatchAbortedError, BatchRunner, InvalidRequestError
from reka_async.batch.breaker import ERROR_RATE_WINDOW, ErrorRate
from reka_async.jobs import run_job
from reka_async.testing import MockRekaServer

KEY = "test-key"
FAIL = "[[fault:500]] please"  # the mock answers 500 to a prompt holding this directive


def test_nothing_is_judged_before_the_window_is_full() -> None:
    rate = ErrorRate(0.5, window=4)
    assert [rate.record(True) for _ in range(3)] == [None, None, None]  # all failed: not yet
    assert rate.record(True) is not None  # the window is full: 4 of 4


def test_a_full_window_over_the_rate_gives_the_reason() -> None:
    rate = ErrorRate(0.5, window=4)
    outcomes = [False, True, True, False, True, False, True, True]
    reasons = [rate.record(f) for f in outcomes]
    # windows once full: FTTF (2 of 4: not more than half), TTFT (3), TFTF (2), FTFT (2),
    # TFTT (3)
    assert [r is not None for r in reasons] == [False] * 4 + [True, False, False, True]
    assert "3 of the last 4 items failed" in str(reasons[4])


@pytest.mark.parametrize("bad", [1, 1.0, 1.5, -0.1, float("nan"), "0.5", True])
async def test_an_invalid_rate_is_refused_naming_the_option(bad: object) -> None:
    async with AsyncClient(KEY, "http://127.0.0.1:9/v1") as client:
        with pytest.raises(InvalidRequestError, match="max_error_rate"):
            BatchRunner(client, max_error_rate=bad)  # type: ignore[arg-type]


async def test_a_batch_stops_once_most_of_the_last_window_failed() -> None:
    # 50 answers, then the endpoint breaks: with one item at a time the window of 100 holds
    # 51 failures after the 101st item, which is more than half.
    items = [f"q{i}" for i in range(50)] + [FAIL] * 250
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(KEY, server.base_url, max_retries=0) as client,
    ):
        runner = BatchRunner(client, concurrency=1, max_error_rate=0.5)
        with pytest.raises(BatchAbortedError, match="51 of the last 100 items failed") as info:
            await runner.run(items)
        assert len(info.value.results) == 101
        assert [r.ok for r in info.value.results] == [True] * 50 + [False] * 51
        assert len(server.requests) == 101  # the other 199 were never sent


async def test_failures_before_the_window_fills_do_not_stop_it() -> None:
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(KEY, server.base_url, max_retries=0) as client,
    ):
        results = await BatchRunner(client, concurrency=4, max_error_rate=0.1).run(
            [FAIL] * (ERROR_RATE_WINDOW - 1)
        )
    assert not any(r.ok for r in results)


async def test_input_errors_do_not_count() -> None:
    # Every other item cannot become a request: with max_error_rate=0 any API failure among
    # the last 100 would stop the batch, and none of these is one.
    items: list[object] = []
    for i in range(150):
        items += [{"custom_id": f"bad{i}", "messages": "not a list"}, f"q{i}"]
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(KEY, server.base_url, max_retries=0) as client,
    ):
        results = await BatchRunner(client, concurrency=4, max_error_rate=0.0).run(items)
    assert sum(r.ok for r in results) == 150
    assert all(isinstance(r.error, InvalidRequestError) for r in results if not r.ok)


async def test_run_job_stops_and_its_output_resumes(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [
        {"custom_id": f"q{i}", "prompt": FAIL if i >= 10 else f"question {i}"} for i in range(300)
    ]
    inp.write_text("".join(json.dumps(line) + "\n" for line in lines))
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(KEY, server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(BatchAbortedError, match=r"max_error_rate 0\.5"):
            await run_job(client, str(inp), str(out), concurrency=1, max_error_rate=0.5)
        written = out.read_text().splitlines()
        assert len(written) == 100  # 10 ok, 90 failed: judged once 100 have finished
        report = await run_job(client, str(inp), str(out), resume=True, concurrency=8)
    assert report.total_failed == 290  # the rest sent by the resume (no max_error_rate)
    assert len(out.read_text().splitlines()) == 300
