"""Progress on a clock, cost and the max_cost budget, the request cache, metadata passthrough."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reka_async import (
    AsyncClient,
    BatchRunner,
    BatchStats,
    BudgetExceededError,
    CacheError,
    InvalidRequestError,
)
from reka_async._models import Model, ModelPricing
from reka_async.batch import BatchProgress, PriceTable, RequestCache
from reka_async.testing import MockRekaServer


@pytest.fixture
async def mock() -> AsyncIterator[AsyncClient]:
    async with MockRekaServer(api_key=None) as srv, AsyncClient("any-key", srv.base_url) as c:
        yield c


# ------------------------------------------------------------------------------- progress


def test_the_bar_redraws_on_a_tick_even_when_no_item_finished() -> None:
    out = io.StringIO()
    progress = BatchProgress(total=700, file=out, mode="bar")
    stats = BatchStats()
    stats.ok = 602
    stats.concurrency_limit = 32
    progress.stats = stats  # as start() would, without its ticker: tick() is what draws
    from tqdm.auto import tqdm

    progress._bar = tqdm(total=700, file=out, mininterval=0, miniters=0)
    progress.tick()
    assert "602/700" in out.getvalue()
    stats.ok = 650  # no update() call: only the clock redraws it
    progress.tick()
    assert "650/700" in out.getvalue().rsplit("\r", 1)[-1]
    assert "limit 32" in out.getvalue()
    progress.close()


def test_the_progress_line_says_everything() -> None:
    out = io.StringIO()
    progress = BatchProgress(total=10, file=out, mode="line", done_before=lambda: 4)
    stats = BatchStats(ok=3, failed=1, retries=2, rate_limited=1, input_tokens=50)
    stats.concurrency_limit = 8
    stats.cost_usd_known = 0.0125
    progress.stats = stats
    progress.tick()
    line = out.getvalue()
    assert line.startswith("progress 8/10 80%")
    for part in ("ok 3 failed 1", "retries 2 429s 1", "limit 8", "cost $0.0125", "ETA"):
        assert part in line


async def test_progress_true_draws_lines_without_a_tty(mock: AsyncClient) -> None:
    out = io.StringIO()
    progress = BatchProgress(file=out, mode="line")
    runner = BatchRunner(mock, progress=progress, concurrency=4)
    await runner.run([f"q{i}" for i in range(10)])
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("progress 0/10")  # drawn at the start
    assert lines[-1].startswith("progress 10/10 100%")  # and at the end


# ------------------------------------------------------------------------------- cost


def test_prices_default_override_and_models() -> None:
    table = PriceTable()
    price = table.get("reka-flash-20240226")
    assert price is not None
    assert (price.input, price.output) == (0.8, 2.0)
    assert table.get("reka-core") is None
    listed = table.with_models(
        [Model(id="reka-core", pricing=ModelPricing(prompt="0.000002", completion="0.000008"))]
    )
    core = listed.get("reka-core")
    assert core is not None
    assert core.output == pytest.approx(8.0)
    mine = listed.with_prices({"reka-core": {"input": 1, "output": 1}})
    assert mine.get("reka-core") == type(core)(1.0, 1.0)
    with pytest.raises(InvalidRequestError, match="per million tokens"):
        PriceTable({"x": "cheap"})


async def test_cost_is_in_results_and_stats(mock: AsyncClient) -> None:
    runner = BatchRunner(mock, max_tokens=16)
    results = await runner.run(["a", "b"])
    usage = results[0].response.usage  # type: ignore[union-attr]
    expected = (usage.input_tokens * 0.8 + usage.output_tokens * 2.0) / 1e6
    assert results[0].cost_usd == pytest.approx(expected)
    assert runner.stats.cost_usd == pytest.approx(sum(r.cost_usd or 0 for r in results))


async def test_an_unpriced_model_has_an_unknown_cost(mock: AsyncClient) -> None:
    runner = BatchRunner(mock, model="reka-core")
    await runner.run(["a"])
    assert runner.stats.cost_usd is None
    assert runner.stats.unpriced == 1
    assert "cost unknown" in runner.stats.summary()


async def test_max_cost_refuses_an_unpriced_model(mock: AsyncClient) -> None:
    with pytest.raises(InvalidRequestError, match="no price is known for model 'reka-core'"):
        BatchRunner(mock, model="reka-core", max_cost=1.0)


async def test_max_cost_stops_before_the_budget_is_exceeded(mock: AsyncClient) -> None:
    budget = 0.001
    runner = BatchRunner(mock, max_cost=budget, max_tokens=100, concurrency=8)
    with pytest.raises(BudgetExceededError, match="max_cost") as caught:
        await runner.run([f"question {i}" for i in range(100)])
    spent = sum(r.cost_usd or 0 for r in caught.value.results)
    assert 0 < spent <= budget
    assert len(caught.value.results) < 100
    assert runner.cost_budget is not None
    assert runner.cost_budget.spent <= budget


# ------------------------------------------------------------------------------- cache


async def test_the_cache_answers_identical_requests_across_runners(
    mock: AsyncClient, tmp_path: Path
) -> None:
    path = str(tmp_path / "cache.db")
    first = BatchRunner(mock, cache=path, max_tokens=8)
    await first.run(["a", "b"])
    second = BatchRunner(mock, cache=RequestCache(path), max_tokens=8)
    results = await second.run(["a", "b", "c"])
    assert [r.cached for r in results] == [True, True, False]
    assert results[0].text == "Mock reply to: a"
    assert second.stats.cache_hits == 2
    assert second.stats.cost_usd_known == pytest.approx(results[2].cost_usd)
    other = BatchRunner(mock, cache=path, max_tokens=9)  # another request: another key
    assert not any(r.cached for r in await other.run(["a"]))
    with contextlib.closing(sqlite3.connect(path)) as db:  # (its own `with` does not close)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_metadata_is_echoed_and_not_part_of_the_key(
    mock: AsyncClient, tmp_path: Path
) -> None:
    runner = BatchRunner(mock, cache=str(tmp_path / "c.db"))
    await runner.run([{"prompt": "a", "metadata": {"n": 1}}])
    (result,) = await runner.run([{"prompt": "a", "metadata": {"n": 2}}])
    assert result.cached
    assert result.metadata == {"n": 2}
    assert "metadata" not in (result.request or {})


def test_concurrent_writers_are_safe(tmp_path: Path) -> None:
    from reka_async import ChatResponse

    path = str(tmp_path / "c.db")
    response = ChatResponse(id="x", model="m", responses=[])
    errors: list[BaseException] = []

    def write(n: int) -> None:
        cache = RequestCache(path)
        try:
            for i in range(50):
                cache.put_sync(f"sha256:{n}-{i}", response)
        except BaseException as exc:
            errors.append(exc)
        finally:
            cache.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(RequestCache(path)) == 200


def test_a_corrupt_cache_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match="not a valid cache database: delete it"):
        RequestCache(str(path))


def test_a_locked_cache_is_a_clear_error(tmp_path: Path) -> None:
    from reka_async import ChatResponse

    path = str(tmp_path / "c.db")
    RequestCache(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with (
            RequestCache(path, busy_timeout_s=0.05) as cache,
            pytest.raises(CacheError, match="locked"),
        ):
            cache.put_sync("sha256:x", ChatResponse(id="x", model="m", responses=[]))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_cache_opened_while_another_connection_holds_the_new_file_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several processes opening one new cache at once: SQLite may refuse the WAL switch or
    the table at once ("database is locked") instead of waiting; the cache tries again until
    its busy timeout, and opens once the other connection lets go."""
    import sqlite3
    import types

    import reka_async.batch.cache as cache_module

    path = tmp_path / "c.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the first wait: the other connection lets go
        waits.append(seconds)
        if holder.in_transaction:
            holder.execute("COMMIT")

    fake_time = types.SimpleNamespace(monotonic=cache_module.time.monotonic, sleep=sleep)
    monkeypatch.setattr(cache_module, "time", fake_time)
    cache = RequestCache(path, busy_timeout_s=0.05)
    try:
        assert waits  # it was refused at least once, and tried again
        assert len(cache) == 0
    finally:
        cache.close()
        holder.close()


def test_a_cache_locked_past_its_busy_timeout_is_a_clear_error(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "c.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CacheError, match="locked; another process holds it"):
            RequestCache(path, busy_timeout_s=0.05)
    finally:
        holder.close()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_price_that_is_not_a_finite_number_is_refused_naming_the_model(value: float) -> None:
    with pytest.raises(InvalidRequestError, match=r"'reka-core' output must be a finite number"):
        PriceTable({"reka-core": {"input": 1.0, "output": value}})
    with pytest.raises(ValueError, match="reka-core"):  # InvalidRequestError is a ValueError
        PriceTable({"reka-core": (value, 1.0)})
