"""The Ray Data integration on a local 2-CPU Ray cluster, against the mock server.

Run with ``nox -s ray`` (the default ``pytest`` run ignores tests/ray). The mock runs as a
subprocess because Ray's workers are separate processes: they reach it over the network,
like a real API.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")

from reka_async import BatchAbortedError  # noqa: E402
from reka_async.integrations.ray import (  # noqa: E402
    OUTPUT_COLUMNS,
    RekaChatMapper,
    Secret,
    create_rate_limiter,
    map_chat,
    run_ray_job,
)
from reka_async.testing import MockRekaServer, MockServerProcess  # noqa: E402

pytestmark = [
    # Ray Data's DataContext() assigns its own deprecated fields (use_push_based_shuffle,
    # use_polars, ...) while constructing itself, so the first use of ray.data warns from
    # inside ray.data.context. Only that module's DeprecationWarnings are ignored.
    pytest.mark.filterwarnings(r"ignore::DeprecationWarning:ray\.data\.context"),
    # Ray Data's own advisory when a dataset has fewer blocks than the actor pool has
    # actors (raised in the driver, from ray/data); not about our code.
    pytest.mark.filterwarnings(
        r"ignore:The minimum number of concurrent actors:UserWarning:ray\.data"
    ),
]

API_KEY = "sk-ray-test-0123456789"
LATENCY_MS = 200
# REKA_RAY_N scales the throughput test up (e.g. 20000) to amortise the actors' start.
N_PROMPTS = int(os.environ.get("REKA_RAY_N", "5000"))
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """The mock server in a subprocess; it accepts API_KEY only (so the key must get through)."""
    with MockServerProcess("--latency-ms", str(LATENCY_MS), "--api-key", API_KEY) as server:
        yield server.base_url


@contextlib.contextmanager
def ray_s_own_resource_warnings_ignored() -> Iterator[None]:
    """Ignore the ResourceWarnings of Ray's own start and stop (only Ray's code runs here).

    Ray 2.40 (the oldest supported, ``nox -s ray_oldest``) drops its processes' log files
    unclosed in ``ray.init`` and the handles of processes still exiting in ``ray.shutdown``;
    under ``filterwarnings = error`` they fail the next test's setup or teardown. The newest
    Ray raises none here, and every warning elsewhere stays an error.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield
        gc.collect()  # the dropped handles are finalized here, not in a later test


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster with 2 CPUs for the whole module."""
    with ray_s_own_resource_warnings_ignored():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="WARNING",
            configure_logging=True,
        )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    try:
        yield
    finally:
        with ray_s_own_resource_warnings_ignored():
            ray.shutdown()


def rows_of(ds: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        rows.extend(batch.to_pylist())
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --------------------------------------------------------------------------- on Ray


@pytest.mark.usefixtures("ray_cluster")
def test_5000_prompts_give_one_row_each_and_failures_are_rows(mock_url: str) -> None:
    """5,000 prompts (or REKA_RAY_N) on 2 actors: exactly one row per input; [[fault:422]]
    rows are error rows, not block failures. Prints the throughput (docs/performance.md
    quotes it)."""
    faulty = {f"q{i}" for i in range(0, N_PROMPTS, 97)}
    items = [
        {
            "custom_id": f"q{i}",
            "prompt": f"prompt {i}" + (" [[fault:422]]" if f"q{i}" in faulty else ""),
        }
        for i in range(N_PROMPTS)
    ]
    ds = ray.data.from_items(items, override_num_blocks=max(4, N_PROMPTS // 250))
    started = time.monotonic()
    mapped = map_chat(
        ds,
        model="reka-flash",
        num_actors=2,
        concurrency_per_actor=128,
        api_key=API_KEY,
        base_url=mock_url,
        max_tokens=32,
    )
    rows = rows_of(mapped)
    elapsed = time.monotonic() - started

    assert len(rows) == N_PROMPTS
    ids = [r["custom_id"] for r in rows]
    assert len(set(ids)) == N_PROMPTS
    assert set(ids) == {item["custom_id"] for item in items}
    assert set(rows[0]) == set(OUTPUT_COLUMNS)
    failed = {r["custom_id"]: r for r in rows if not r["ok"]}
    assert set(failed) == faulty
    for row in failed.values():
        assert row["error_type"] == "UnprocessableEntityError"
        assert "422" in row["error_message"]
        assert row["text"] is None
        assert row["input_tokens"] is None
        assert row["attempts"] == 1  # a 422 is not retried
    by_id = {r["custom_id"]: r for r in rows}
    good = by_id["q1"]
    assert good["ok"] is True
    assert good["text"] == "Mock reply to: prompt 1"
    assert good["error_type"] is None
    assert good["error_message"] is None
    assert good["input_tokens"] > 0
    assert good["output_tokens"] > 0
    assert good["latency_s"] >= LATENCY_MS / 1000 * 0.9
    print(
        f"\n[ray throughput] {N_PROMPTS} prompts, 2 actors x 128 concurrency, mock latency "
        f"{LATENCY_MS} ms, local 2-CPU cluster: {elapsed:.1f} s end to end (actor start "
        f"included), {N_PROMPTS / elapsed:.0f} rows/s"
    )


@pytest.mark.usefixtures("ray_cluster")
def test_bad_rows_and_api_errors_are_rows_in_every_input_shape(mock_url: str) -> None:
    """prompt / messages (list or JSON) / request columns; invalid rows and API errors all
    come back as rows, in order, with the CLI record when asked for."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "custom_id": ["p", "m-json", "m-bad-json", "r", "none", "f400", "f503", "empty"],
            "prompt": ["plain", None, None, None, None, "x [[fault:400]]", "y", ""],
            "messages": [
                None,
                json.dumps([{"role": "user", "content": "from json"}]),
                "[{not json",
                None,
                None,
                None,
                None,
                None,
            ],
            "request": [
                None,
                None,
                None,
                json.dumps({"prompt": "from request", "max_tokens": 5, "temperature": 0}),
                None,
                None,
                None,
                None,
            ],
        }
    )
    # A 503 once, then success: retried inside the actor, still one row.
    frame.loc[6, "prompt"] = "y [[fault:503*1]]"
    ds = ray.data.from_pandas(frame).repartition(2)
    rows = rows_of(
        map_chat(
            ds,
            num_actors=2,
            concurrency_per_actor=4,
            api_key=API_KEY,
            base_url=mock_url,
            include_record=True,
            keep_input_columns=True,
        )
    )
    by_id = {r["custom_id"]: r for r in rows}
    assert len(rows) == len(frame)
    assert set(by_id) == set(frame["custom_id"])
    assert by_id["p"]["text"] == "Mock reply to: plain"
    assert by_id["m-json"]["text"] == "Mock reply to: from json"
    assert by_id["r"]["text"] == "Mock reply to: from request"
    assert by_id["m-bad-json"]["error_type"] == "InvalidRequestError"
    assert "invalid JSON" in by_id["m-bad-json"]["error_message"]
    assert by_id["none"]["error_type"] == "InvalidRequestError"
    assert by_id["none"]["attempts"] == 0
    assert by_id["f400"]["error_type"] == "BadRequestError"
    assert by_id["f503"]["ok"] is True
    assert by_id["f503"]["attempts"] == 2
    assert by_id["empty"]["ok"] is True  # an empty prompt is the API's business
    # keep_input_columns carried the inputs along
    assert by_id["p"]["prompt"] == "plain"
    # include_record: the CLI's output record for the row
    record = json.loads(by_id["f400"]["record"])
    assert record["custom_id"] == "f400"
    assert record["ok"] is False
    assert record["error"]["type"] == "BadRequestError"
    assert record["error"]["status"] == 400
    assert API_KEY not in json.dumps(rows, default=str)


@pytest.mark.usefixtures("ray_cluster")
def test_run_ray_job_writes_the_cli_format(mock_url: str, tmp_path: Path) -> None:
    """JSONL in, JSONL out: one line per input, record for record what `reka-async batch`
    writes for the same input."""
    lines = [
        json.dumps({"custom_id": "a", "prompt": "hello", "max_tokens": 8}),
        json.dumps({"prompt": "no id"}),  # gets line-2
        "{not json",
        "",  # blank lines are skipped
        json.dumps({"custom_id": "a", "prompt": "duplicate"}),
        json.dumps({"custom_id": "f", "prompt": "bad [[fault:422]]"}),
        json.dumps({"custom_id": "m", "messages": [{"role": "user", "content": "msg"}]}),
        json.dumps({"custom_id": "p", "prompt": "x", "max_tokens": -1}),
        json.dumps({"custom_id": "q"}),
        *(json.dumps({"custom_id": f"n{i}", "prompt": f"n {i}"}) for i in range(200)),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out_ray, out_cli = tmp_path / "ray.jsonl", tmp_path / "cli.jsonl"

    summary = run_ray_job(
        source,
        out_ray,
        concurrency_per_actor=16,
        num_actors=2,
        model="reka-flash",
        api_key=API_KEY,
        base_url=mock_url,
    )
    env = dict(os.environ, REKA_API_KEY=API_KEY)
    cli = subprocess.run(
        [
            *(sys.executable, "-m", "reka_async", "batch", str(source), "-o", str(out_cli)),
            *("--base-url", mock_url, "--no-progress"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 1, cli.stderr  # some lines failed

    ray_records = {(r["custom_id"], r["line"]): r for r in read_jsonl(out_ray)}
    cli_records = {(r["custom_id"], r["line"]): r for r in read_jsonl(out_cli)}
    inputs = sum(1 for line in lines if line.strip())
    assert len(read_jsonl(out_ray)) == inputs == len(ray_records)
    assert set(ray_records) == set(cli_records)
    assert summary.written == inputs
    assert summary.not_sent == 0
    assert summary.ok == sum(r["ok"] for r in ray_records.values())

    def comparable(record: dict[str, Any]) -> dict[str, Any]:
        record = dict(record)
        record.pop("latency_s")
        record.pop("request_hash", None)  # the CLI's records hold it (resume checks), Ray's not
        record.pop("input_hash", None)  # likewise
        if "response" in record:
            record["response"] = dict(record["response"], id=None)
        if "error" in record:
            record["error"] = dict(record["error"], request_id=None)
            record["error"]["message"] = record["error"]["message"].split(" (request id")[0]
        return record

    for key, record in ray_records.items():
        assert comparable(record) == comparable(cli_records[key]), key
    errors = {r["custom_id"]: r["error"]["type"] for r in ray_records.values() if not r["ok"]}
    assert errors == {
        "line-3": "InvalidInputLine",
        "a": "DuplicateCustomId",
        "f": "UnprocessableEntityError",
        "p": "InvalidInputLine",
        "q": "InvalidInputLine",
    }
    assert API_KEY not in out_ray.read_text(encoding="utf-8")

    # An existing output is never clobbered; resume finds nothing left to do.
    options: dict[str, Any] = {
        "concurrency_per_actor": 4,
        "num_actors": 1,
        "model": "reka-flash",
        "api_key": API_KEY,
        "base_url": mock_url,
    }
    with pytest.raises(FileExistsError):
        run_ray_job(source, out_ray, **options)
    again = run_ray_job(source, out_ray, resume=True, **options)
    assert again.written == 0
    assert again.skipped == inputs
    assert len(read_jsonl(out_ray)) == inputs


@pytest.mark.usefixtures("ray_cluster")
def test_run_ray_job_reads_parquet(mock_url: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    n = 300
    table = pa.table(
        {
            "custom_id": [f"r{i}" if i % 10 else None for i in range(n)],
            "prompt": [f"row {i}" for i in range(n)],
        }
    )
    source = tmp_path / "in.parquet"
    pq.write_table(table, source)
    out = tmp_path / "out.jsonl"
    summary = run_ray_job(
        source,
        out,
        concurrency_per_actor=32,
        num_actors=2,
        model="reka-flash",
        api_key=API_KEY,
        base_url=mock_url,
        max_tokens=16,
    )
    records = read_jsonl(out)
    assert len(records) == n == summary.ok
    ids = {r["custom_id"] for r in records}
    assert ids == {f"r{i}" if i % 10 else f"line-{i + 1}" for i in range(n)}
    assert all(r["response"]["text"] == f"Mock reply to: row {r['line'] - 1}" for r in records)


@pytest.mark.usefixtures("ray_cluster")
def test_out_of_credits_stops_sending_and_resume_finishes(mock_url: str, tmp_path: Path) -> None:
    """As in the CLI: an out-of-credits 429 stops the job (BatchAbortedError), the rows not
    sent are left out of the output, and a resumed run completes it exactly once."""
    n = 1500
    source = tmp_path / "in.jsonl"
    with source.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"custom_id": "c0", "prompt": "broke [[fault:credits*1]]"}) + "\n")
        for i in range(1, n):
            f.write(json.dumps({"custom_id": f"c{i}", "prompt": f"p {i}"}) + "\n")
    out = tmp_path / "out.jsonl"
    options: dict[str, Any] = {
        "concurrency_per_actor": 32,
        "num_actors": 2,
        "model": "reka-flash",
        "api_key": API_KEY,
        "base_url": mock_url,
    }
    with pytest.raises(BatchAbortedError, match="out of credits"):
        run_ray_job(source, out, **options)
    first = read_jsonl(out)
    assert 0 < len(first) < n
    assert {r["custom_id"]: r["error"]["type"] for r in first if not r["ok"]} == {
        "c0": "InsufficientCreditsError"
    }
    summary = run_ray_job(source, out, resume=True, **options)
    final = read_jsonl(out)
    assert summary.skipped == len(first)
    assert summary.written == n - len(first)
    assert sorted(r["custom_id"] for r in final) == sorted(f"c{i}" for i in range(n))
    # retry_failed sends the out-of-credits failure again (the account was topped up) and
    # compacts the output to one record per input.
    retried = run_ray_job(source, out, resume=True, retry_failed=True, **options)
    assert retried.written == 1
    final = read_jsonl(out)
    assert sorted(r["custom_id"] for r in final) == sorted(f"c{i}" for i in range(n))
    assert all(r["ok"] for r in final)
    with pytest.raises(ValueError, match="resume"):
        run_ray_job(source, out, retry_failed=True, **options)


@pytest.mark.usefixtures("ray_cluster")
def test_max_cost_holds_across_actors_and_resumed_runs(tmp_path: Path) -> None:
    """``max_cost`` is the job's, across two actors and three runs, against a server billing
    exactly the bound (``Billing``: a token per UTF-8 byte plus the per-message overhead,
    and ``max_tokens`` of output): what the server billed never exceeds the budget."""
    from reka_async.batch import BudgetExceededError, PriceTable
    from reka_async.batch.bound import DEFAULT_MESSAGE_OVERHEAD
    from reka_async.testing import Billing, MockRekaServer

    flash = PriceTable().get("reka-flash")
    assert flash is not None
    source = tmp_path / "in.jsonl"
    with source.open("w", encoding="utf-8") as f:
        for i in range(200):
            f.write(json.dumps({"custom_id": f"c{i}", "prompt": f"東京の天気 🙂 {i}"}) + "\n")
    out = tmp_path / "out.jsonl"
    billing = Billing(message_overhead=DEFAULT_MESSAGE_OVERHEAD)
    with MockRekaServer.in_thread(api_key=API_KEY, billing=billing) as server:

        def billed() -> float:
            return sum(flash.cost(i, o) for _, i, o in list(server.billed))

        options: dict[str, Any] = {
            "concurrency_per_actor": 4,
            "num_actors": 2,
            "model": "reka-flash",
            "api_key": API_KEY,
            "base_url": server.base_url,
            "max_tokens": 200,
        }
        with pytest.raises(BudgetExceededError, match=r"max_cost=\$0.01 would be exceeded"):
            run_ray_job(source, out, max_cost=0.01, **options)
        first = billed()
        records = read_jsonl(out)
        assert 0 < len(records) < 200
        assert all(r["ok"] for r in records)
        assert 0.01 - 0.001 < first <= 0.01
        # Each record's charge is its answer's cost, rounded up to 1e-8 USD.
        assert first <= sum(r["charged_usd"] for r in records) <= first + 1e-8 * len(records)
        # The same budget again: the job's spend (its records) leaves no room.
        with pytest.raises(BudgetExceededError):
            run_ray_job(source, out, resume=True, max_cost=0.01, **options)
        assert billed() == first
        # A higher budget continues the count from what the job spent.
        with pytest.raises(BudgetExceededError):
            run_ray_job(source, out, resume=True, max_cost=0.02, **options)
        assert first < billed() <= 0.02
    records = read_jsonl(out)
    assert len({r["custom_id"] for r in records}) == len(records)
    assert billed() <= sum(r["charged_usd"] for r in records) <= billed() + 1e-8 * len(records)


@pytest.mark.usefixtures("ray_cluster")
def test_shared_limiter_holds_the_global_rpm(mock_url: str) -> None:
    """Two actors draw from one limiter actor: 600 rpm (a burst of 10, then 10 a second) for
    66 rows takes about 5.6 s whichever actor sends them."""
    limiter = create_rate_limiter(rpm=600)
    items = [{"custom_id": f"l{i}", "prompt": f"limited {i}"} for i in range(66)]
    started = time.monotonic()
    rows = rows_of(
        map_chat(
            ray.data.from_items(items, override_num_blocks=4),
            num_actors=2,
            concurrency_per_actor=16,
            limiter=limiter,
            api_key=API_KEY,
            base_url=mock_url,
        )
    )
    elapsed = time.monotonic() - started
    assert len(rows) == 66
    assert all(r["ok"] for r in rows)
    assert elapsed >= 5.0
    stats = ray.get(limiter.stats.remote())
    assert stats["granted_requests"] >= 66
    assert stats["acquire_calls"] >= 33  # chunks of two requests at this budget


@pytest.mark.usefixtures("ray_cluster")
def test_two_actors_pace_one_token_bucket_through_the_shared_actor() -> None:
    """No budget: the shared actor carries the pacing alone. Two actors of 32 connections
    each (200 ms) would send about 320 a second unpaced against a bucket of 20 a second;
    paced together, every row ends ok and the refusals stay a small part of the admissions
    (the mock's own counters: it runs in this process, the actors reach it over TCP)."""
    limiter = create_rate_limiter()
    items = [{"custom_id": f"b{i}", "prompt": f"bucket {i}"} for i in range(300)]
    with MockRekaServer.in_thread(
        api_key=API_KEY, rate_limit="20/s", rate_limit_kind="bucket", latency_s=0.2
    ) as server:
        rows = rows_of(
            map_chat(
                ray.data.from_items(items, override_num_blocks=4),
                num_actors=2,
                limiter=limiter,
                api_key=API_KEY,
                base_url=server.base_url,
            )
        )
        admitted, refused = server.limiter.admitted, server.limiter.refused
    assert sorted(r["custom_id"] for r in rows) == sorted(i["custom_id"] for i in items)
    assert all(r["ok"] for r in rows)
    assert admitted == 300  # none lost, none sent twice after an answer
    assert refused <= admitted // 2, refused
    stats = ray.get(limiter.stats.remote())
    assert stats["pacing_reports"] >= 1  # an actor's learned rate went through the actor
    assert 0.0 < stats["pacing_rate"] <= 20 * 1.5


@pytest.mark.usefixtures("ray_cluster")
def test_the_key_is_not_in_plans_or_reprs(mock_url: str) -> None:
    ds = ray.data.from_items([{"prompt": "hi"}])
    mapped = map_chat(ds, num_actors=1, api_key=API_KEY, base_url=mock_url)
    rows = rows_of(mapped)
    for text in (repr(mapped), str(mapped), mapped.stats()):
        assert API_KEY not in text
    assert rows[0]["ok"] is True  # no custom_id column
    assert rows[0]["custom_id"] is None


# --------------------------------------------------------------------------- no cluster


async def test_one_concurrency_limit_shared_by_concurrent_batches(mock_url: str) -> None:
    """Four batches at once on one mapper share its limit of 2: 32 requests of 200 ms take
    >= 3.2 s (with a limit per batch they would take 0.8 s)."""
    mapper = RekaChatMapper(concurrency_per_actor=2, api_key=API_KEY, base_url=mock_url)
    batches = [
        {"custom_id": [f"b{b}-{i}" for i in range(8)], "prompt": [f"q {i}" for i in range(8)]}
        for b in range(4)
    ]
    try:
        started = time.monotonic()
        tables = await asyncio.gather(*(mapper.process(b) for b in batches))
        elapsed = time.monotonic() - started
    finally:
        await mapper.aclose()
    assert [t.num_rows for t in tables] == [8, 8, 8, 8]
    assert tables[2].column("custom_id").to_pylist() == [f"b2-{i}" for i in range(8)]  # order
    assert all(all(t.column("ok").to_pylist()) for t in tables)
    assert elapsed >= 32 / 2 * LATENCY_MS / 1000 * 0.95


async def test_numpy_batches_via_the_ray_entry_point_and_wrong_key(mock_url: str) -> None:
    import numpy as np

    batch = {
        "custom_id": np.array(["x", "y"], dtype=object),
        "messages": np.array(
            [[{"role": "user", "content": "one"}], [{"role": "user", "content": "two"}]],
            dtype=object,
        ),
    }
    mapper = RekaChatMapper(api_key=Secret(API_KEY), base_url=mock_url, concurrency_per_actor=2)
    try:
        outputs = [table async for table in mapper(batch)]  # what Ray Data calls
    finally:
        await mapper.aclose()
    assert len(outputs) == 1
    assert outputs[0].column("text").to_pylist() == ["Mock reply to: one", "Mock reply to: two"]

    wrong = RekaChatMapper(api_key="sk-wrong", base_url=mock_url)
    try:
        table = await wrong.process({"prompt": ["a", "b"]})
    finally:
        await wrong.aclose()
    assert table.column("ok").to_pylist() == [False, False]
    assert set(table.column("error_type").to_pylist()) == {"AuthenticationError"}


def test_reprs_and_validation_do_not_need_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    mapper = RekaChatMapper(api_key=API_KEY, rpm=600, num_actors=3)
    assert API_KEY not in repr(mapper)
    assert "rpm=200.0" in repr(mapper)
    assert API_KEY not in repr(Secret(API_KEY))
    assert API_KEY not in str(Secret(API_KEY))
    with pytest.raises(ValueError, match="not both"):
        RekaChatMapper(api_key=API_KEY, rpm=60, limiter=object())
    with pytest.raises(Exception, match="REKA_API_KEY"):
        RekaChatMapper()
    monkeypatch.setenv("REKA_API_KEY", API_KEY)
    assert API_KEY not in repr(RekaChatMapper())
    with pytest.raises(ValueError, match="needs a 'prompt'"):
        asyncio.run(RekaChatMapper().process({"text": ["no prompt column"]}))


def test_the_module_imports_without_ray() -> None:
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\n"
        "sys.modules['pyarrow'] = None\n"
        "import reka_async.integrations.ray as m\n"
        "try:\n"
        "    m.run_ray_job('in.jsonl', 'out.jsonl', concurrency_per_actor=1, num_actors=1,\n"
        "                  model='reka-flash', api_key='k')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'reka-async[ray]'" in proc.stdout
