"""``max_cost`` caps a job, not a run: every record counts (superseded ones included, carried
through compaction in the ``OUTPUT.spend.json`` sidecar), and a resume continues counting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reka_async import AsyncClient, BudgetExceededError, RetryPolicy
from reka_async.batch import PriceTable
from reka_async.batch.bound import DEFAULT_MESSAGE_OVERHEAD
from reka_async.jobs import JobIOError, run_job, scan_output
from reka_async.jobs._spend import Carried, read_carried, spend_path, write_carried
from reka_async.testing import Billing, MockRekaServer

FLASH = PriceTable().get("reka-flash")
assert FLASH is not None
EXACT = Billing(message_overhead=DEFAULT_MESSAGE_OVERHEAD)
FAST = RetryPolicy(base=0.001, cap=0.01)


def billed(server: MockRekaServer) -> float:
    return sum(FLASH.cost(i, o) for _, i, o in server.billed)


def write_jsonl(path: Path, rows: list[Any]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def run(client: AsyncClient, inp: Path, out: Path, **options: Any) -> Any:
    try:
        return await run_job(client, str(inp), str(out), **options)
    except BudgetExceededError as exc:
        return exc


async def test_three_resumed_runs_with_the_same_budget_bill_at_most_the_budget(
    tmp_path: Path,
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [{"custom_id": f"c{i}", "prompt": f"東京 question {i}"} for i in range(300)])
    options: dict[str, Any] = {"params": {"max_tokens": 200}, "concurrency": 8}
    async with MockRekaServer(billing=EXACT) as server, AsyncClient("k", server.base_url) as c:
        first = await run(c, inp, out, max_cost=0.01, **options)
        assert isinstance(first, BudgetExceededError)
        after_first = billed(server)
        assert after_first <= 0.01
        for _ in range(2):  # the printed command again, with the same budget: nothing more
            again = await run(c, inp, out, resume=True, max_cost=0.01, **options)
            assert isinstance(again, BudgetExceededError)
        assert billed(server) == after_first
        # A higher budget continues the same job, counting what was spent before.
        more = await run(c, inp, out, resume=True, max_cost=0.02, **options)
        assert isinstance(more, BudgetExceededError)
        assert after_first < billed(server) <= 0.02


async def test_a_retried_item_counts_twice_and_compaction_carries_the_first_charge(
    tmp_path: Path,
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    # The first attempt of c0 drops the connection after the request was sent: its fate is
    # unknown, so the budget keeps its bound, and the record says so.
    rows = [{"custom_id": "c0", "prompt": "[[fault:drop*1]] first"}]
    rows += [{"custom_id": f"c{i}", "prompt": f"q {i}"} for i in range(1, 5)]
    write_jsonl(inp, rows)
    options: dict[str, Any] = {"max_cost": 1.0, "params": {"max_tokens": 50}, "max_retries": 0}
    async with (
        MockRekaServer(billing=EXACT) as server,
        AsyncClient("k", server.base_url, retry_policy=FAST) as c,
    ):
        first = await run_job(c, str(inp), str(out), **options)
        assert first.total_failed == 1
        failed = next(r for r in records(out) if not r["ok"])
        assert failed["charged_usd"] > 0  # its bound, kept
        again = await run_job(c, str(inp), str(out), resume=True, retry_failed=True, **options)
    assert again.total_failed == 0
    assert again.compacted == 1  # the failed record is gone from the output...
    assert all(r["ok"] for r in records(out))
    # ... and its charge lives on in the sidecar: the job's spend is every record ever written.
    carried = read_carried(str(out))
    assert carried.carried_usd == pytest.approx(failed["charged_usd"], abs=1e-8)
    assert again.spent_usd == pytest.approx(scan_output(str(out)).spent_usd + carried.carried_usd)
    assert again.spent_usd >= billed(server)


async def test_a_resume_starts_its_budget_at_the_jobs_spend(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [{"custom_id": f"c{i}", "prompt": f"q {i}"} for i in range(20)])
    out.write_text("")  # an output already charged $0.0099 through compactions
    write_carried(str(out), Carried(0.0099))
    async with MockRekaServer(billing=EXACT) as server, AsyncClient("k", server.base_url) as c:
        outcome = await run(c, inp, out, resume=True, max_cost=0.01, params={"max_tokens": 100})
        # the sidecar of an empty output belongs to no job: started afresh, it is removed
        assert not isinstance(outcome, BudgetExceededError)
        assert not Path(spend_path(str(out))).exists()
        write_jsonl(inp, [{"custom_id": f"d{i}", "prompt": f"q {i}"} for i in range(20)])
        write_carried(str(out), Carried(0.0099))
        server.billed.clear()
        stopped = await run(c, inp, out, resume=True, max_cost=0.01, params={"max_tokens": 100})
    assert isinstance(stopped, BudgetExceededError)
    assert "spent $0.01" in str(stopped)
    assert server.billed == []  # the job's budget was used up: nothing more was sent


def test_a_compaction_cut_short_still_counts_its_total(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    write_jsonl(out, [{"custom_id": "a", "ok": True, "cost_usd": 0.25}])
    write_carried(str(out), Carried(0.0, pending_usd=0.75))  # the superseded 0.5 was dropped
    from reka_async.jobs._spend import job_spend

    assert job_spend(scan_output(str(out)).spent_usd, read_carried(str(out))) == 0.75
    # a crash before compaction: the records still hold it all, and nothing is counted twice
    write_jsonl(out, [{"custom_id": "a", "ok": False, "charged_usd": 0.5}] * 1 + [
        {"custom_id": "a", "ok": True, "cost_usd": 0.25}
    ])  # fmt: skip
    assert job_spend(scan_output(str(out)).spent_usd, read_carried(str(out))) == 0.75


def test_an_unreadable_sidecar_is_refused_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    Path(spend_path(str(out))).write_text("[1, 2]")
    with pytest.raises(JobIOError, match=r"out\.jsonl\.spend\.json is not a spend record"):
        read_carried(str(out))


def test_the_sidecar_is_written_atomically_with_a_plain_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("")
    write_carried(str(out), Carried(0.123456789))
    path = Path(spend_path(str(out)))
    assert json.loads(path.read_text()) == {"carried_usd": 0.12345679}  # rounded up
    assert path.stat().st_mode & 0o777 == out.stat().st_mode & 0o777
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.jsonl.spend.json"]
