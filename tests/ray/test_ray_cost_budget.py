"""``max_cost`` across Ray actors, without a cluster: several mappers (as actors would) share
one cost actor (its real class, run in-process: ``_ray_fakes.LocalCostLedger``), against the
mock server billing by bytes (``Billing``). What the server billed (``server.billed``) is
what is checked, never the client's own account.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from _ray_fakes import LocalCostLedger

from reka_async.batch import PriceTable, UsageAboveBoundError
from reka_async.batch.bound import DEFAULT_MESSAGE_OVERHEAD
from reka_async.batch.cost import BudgetExceededError
from reka_async.integrations.ray import RekaChatMapper
from reka_async.testing import Billing, MockRekaServer

FLASH = PriceTable().get("reka-flash")
assert FLASH is not None
EXACT = Billing(message_overhead=DEFAULT_MESSAGE_OVERHEAD, media_tokens=500)
CJK = "東京の天気はどうですか、明日は雨が降りますか。"
EMOJI = "🙂🚀👩‍👩‍👧‍👦"
TOOL = {
    "name": "lookup",
    "description": "look it up " * 40,
    "parameters": {
        "type": "object",
        "properties": {f"f{i}": {"type": "string", "description": "x" * 60} for i in range(80)},
    },
}
IMAGE = {"type": "image_url", "image_url": "https://example.com/cat.png"}


def billed(server: MockRekaServer) -> float:
    return sum(FLASH.cost(i, o) for _, i, o in server.billed)


def requests(n: int, actor: int) -> list[str]:
    """Request rows of every shape the bound must cover: CJK, emoji, tools, many small
    messages, an image part."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            rows.append({"prompt": f"{CJK}{EMOJI * 3} {actor}-{i}"})
        elif kind == 1:
            rows.append({"prompt": f"call it {actor}-{i}", "tools": [TOOL]})
        elif kind == 2:
            rows.append({"messages": [{"role": "user", "content": f"{j}"} for j in range(30)]})
        else:
            content = [IMAGE, {"type": "text", "text": f"q {actor}-{i}"}]
            rows.append({"messages": [{"role": "user", "content": content}]})
    return [json.dumps({"custom_id": f"a{actor}-{i}", **row}) for i, row in enumerate(rows)]


async def run_actors(
    server: MockRekaServer, ledger: LocalCostLedger, *, actors: int, rows: int, **options: Any
) -> list[Any]:
    """``actors`` mappers sharing ``ledger`` (``max_cost`` is the ledger's), each running its
    own batch of ``rows`` at once."""
    mappers = [
        RekaChatMapper(
            api_key="k",
            base_url=server.base_url,
            concurrency_per_actor=8,
            adaptive=False,
            circuit_breaker=True,
            include_record=True,
            max_cost=ledger.actor._budget.max_cost,
            cost_ledger=ledger,
            max_tokens=200,
            **options,
        )
        for _ in range(actors)
    ]
    try:
        tables = await asyncio.gather(
            *(m.process({"request": requests(rows, a)}) for a, m in enumerate(mappers))
        )
    finally:
        for mapper in mappers:
            await mapper.aclose()
        await ledger.drain()
    return list(tables)


async def test_two_actors_sharing_the_budget_are_billed_at_most_max_cost() -> None:
    ledger = LocalCostLedger(0.1)
    async with MockRekaServer(billing=EXACT) as server:
        tables = await run_actors(server, ledger, actors=2, rows=150, media_tokens=500)
    # Either actor alone would stay within 0.1; only a shared budget keeps both together.
    assert billed(server) <= 0.1
    stopped = await ledger.actor.stopped()
    assert isinstance(stopped, BudgetExceededError)
    assert not isinstance(stopped, UsageAboveBoundError)
    # It stopped because the next bound no longer fitted, not before: both actors sent.
    largest = max(FLASH.cost(i, o) for _, i, o in server.billed)
    assert billed(server) > 0.1 - largest
    for table in tables:
        types = table.column("error_type").to_pylist()
        assert types.count(None) > 0  # this actor sent some
        assert set(types) <= {None, "BatchAbortedError"}  # the rest: not sent, never failed
    spent, reserved = await ledger.actor.totals()
    assert reserved == pytest.approx(0.0, abs=1e-12)  # every reservation was settled
    assert spent == pytest.approx(billed(server))


async def test_charged_usd_is_recorded_on_every_answered_row() -> None:
    ledger = LocalCostLedger(1.0)
    async with MockRekaServer(billing=EXACT) as server:
        (table,) = await run_actors(server, ledger, actors=1, rows=8, media_tokens=500)
    charged = [json.loads(r).get("charged_usd") for r in table.column("record").to_pylist()]
    assert all(isinstance(c, float) and c > 0 for c in charged)
    assert sum(charged) == pytest.approx(billed(server), rel=1e-6)


async def test_an_answer_above_the_bound_stops_every_actor_within_the_in_flight_bound() -> None:
    ledger = LocalCostLedger(1.0)  # plenty: only the breach can stop it
    extra = 100
    over = Billing(message_overhead=DEFAULT_MESSAGE_OVERHEAD, media_tokens=500, extra_output=extra)
    async with MockRekaServer(billing=over) as server:
        tables = await run_actors(server, ledger, actors=2, rows=100, media_tokens=500)
    stopped = await ledger.actor.stopped()
    assert isinstance(stopped, UsageAboveBoundError)
    assert "output tokens for max_tokens=200" in str(stopped)
    # Nothing was sent after the first answer broke the bound but the attempts then in
    # flight: at most concurrency_per_actor on each of the two actors.
    assert len(server.requests) <= 2 * 8
    not_sent = sum(t.column("error_type").to_pylist().count("BatchAbortedError") for t in tables)
    assert not_sent >= 2 * 100 - 2 * 8


async def test_a_media_part_without_media_tokens_is_refused_unsent() -> None:
    ledger = LocalCostLedger(1.0)
    async with MockRekaServer(billing=EXACT) as server:
        (table,) = await run_actors(server, ledger, actors=1, rows=8)
    types = table.column("error_type").to_pylist()
    assert types[3::4] == ["MediaTokensNeededError", "MediaTokensNeededError"]
    assert len(server.requests) == 6


async def test_a_resumed_ledger_starts_from_the_jobs_spend() -> None:
    ledger = LocalCostLedger(0.01, spent=0.0099)
    async with MockRekaServer(billing=EXACT) as server:
        (table,) = await run_actors(server, ledger, actors=1, rows=8, media_tokens=500)
    assert server.billed == []  # what was spent before left no room for any request
    assert set(table.column("error_type").to_pylist()) == {"BatchAbortedError"}
    assert isinstance(await ledger.actor.stopped(), BudgetExceededError)


def test_max_cost_needs_the_shared_ledger_and_a_price() -> None:
    with pytest.raises(ValueError, match="cost_ledger="):
        RekaChatMapper(api_key="k", max_cost=0.01)
    with pytest.raises(ValueError, match="no price is known for model 'mystery'"):
        RekaChatMapper(api_key="k", model="mystery", max_cost=0.01, cost_ledger=object())
    with pytest.raises(ValueError, match="'reka-flash' input must be a finite number"):
        RekaChatMapper(
            api_key="k",
            max_cost=0.01,
            cost_ledger=object(),
            prices={"reka-flash": {"input": float("nan"), "output": 1.0}},
        )
