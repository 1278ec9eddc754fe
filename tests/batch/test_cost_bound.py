"""The ``max_cost`` guarantee against servers that bill by bytes: the reservation is an upper
bound while the server bills no more than it, and a server that bills more stops the batch.

The mock's ``Billing`` is the oracle: it bills one input token per UTF-8 byte of the request's
JSON, its own per-message overhead and media tokens, and ``max_tokens`` of output, written
apart from the client's ``batch/bound.py``. What the server billed (``server.billed``) is
what is checked, never the client's own account.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reka_async import AsyncClient, BatchRunner, BudgetExceededError
from reka_async.batch import PriceTable
from reka_async.batch.bound import DEFAULT_MESSAGE_OVERHEAD
from reka_async.batch.cost import (
    MediaTokensNeededError,
    UnpricedModelError,
    UsageAboveBoundError,
)
from reka_async.testing import Billing, MockRekaServer

PRICES = PriceTable()
FLASH = PRICES.get("reka-flash")
assert FLASH is not None
IMAGE = {"type": "image_url", "image_url": "https://example.com/cat.png"}
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
assert len(str(TOOL)) > 8000  # the 8 KB tool schemas


def billed_usd(server: MockRekaServer) -> float:
    total = 0.0
    for model, inp, out in server.billed:
        price = PRICES.get(model)
        assert price is not None
        total += price.cost(inp, out)
    return total


async def run_batch(
    billing: Billing, items: list[Any], *, max_cost: float, concurrency: int, **options: Any
) -> tuple[MockRekaServer, BaseException | None, list[Any]]:
    async with (
        MockRekaServer(billing=billing) as server,
        AsyncClient("k", server.base_url, max_connections=max(concurrency, 2)) as c,
    ):
        runner = BatchRunner(
            c, max_cost=max_cost, concurrency=concurrency, adaptive=False, **options
        )
        try:
            results = await runner.run(items)
        except BudgetExceededError as exc:
            return server, exc, exc.results
        return server, None, results


EXACT = Billing(message_overhead=DEFAULT_MESSAGE_OVERHEAD, media_tokens=500)


def _cjk(i: int) -> str:
    return f"{CJK} {i}"


def _emoji_cjk(i: int) -> str:
    return f"{CJK}{EMOJI * 3} {i}"


# The rows of the table, against a server billing exactly the stated bound.
ROWS = {
    "cjk-c16": ([_cjk(i) for i in range(400)], 16, {}),
    "image-part-c8": (
        [{"messages": [{"role": "user", "content": [IMAGE, {"type": "text", "text": f"q{i}"}]}]}
         for i in range(400)],
        8,
        {"media_tokens": 500},
    ),
    "tool-schemas-8kb-c8": (
        [{"prompt": f"call it {i}", "tools": [TOOL]} for i in range(400)], 8, {}
    ),
    "bytes-cjk-emoji-c16": ([_emoji_cjk(i) for i in range(400)], 16, {}),
    "c1": ([_cjk(i) for i in range(400)], 1, {}),
}  # fmt: skip


@pytest.mark.parametrize("row", list(ROWS))
async def test_a_server_billing_the_bound_never_takes_the_job_over_max_cost(row: str) -> None:
    items, concurrency, options = ROWS[row]
    server, stopped, results = await run_batch(
        EXACT, items, max_cost=0.01, concurrency=concurrency, max_tokens=200, **options
    )
    assert isinstance(stopped, BudgetExceededError)  # the budget, not the input, ended it
    assert not isinstance(stopped, UsageAboveBoundError)
    assert billed_usd(server) <= 0.01
    # ... and it stopped only when the next request's bound no longer fitted.
    largest = max(FLASH.cost(inp, out) for _, inp, out in server.billed)
    assert billed_usd(server) > 0.01 - largest
    assert all(r.error is None for r in results)


async def test_output_billed_above_max_tokens_stops_at_once_within_the_in_flight_bound() -> None:
    # The "billed reasoning" row: 100 output tokens more than max_tokens, every answer.
    concurrency, extra = 8, 100
    server, stopped, results = await run_batch(
        Billing(message_overhead=DEFAULT_MESSAGE_OVERHEAD, extra_output=extra),
        [_cjk(i) for i in range(400)],
        max_cost=0.01,
        concurrency=concurrency,
        max_tokens=200,
    )
    assert isinstance(stopped, UsageAboveBoundError)
    assert "output tokens for max_tokens=200" in str(stopped)
    # Nothing was sent after the first answer broke the bound: at most the ones beside it.
    assert len(server.requests) <= concurrency
    assert billed_usd(server) <= 0.01 + concurrency * FLASH.cost(0, extra)
    assert results  # the answers that came back are kept


async def test_input_billed_above_the_bound_names_the_overhead_to_raise() -> None:
    concurrency = 4
    server, stopped, _ = await run_batch(
        Billing(message_overhead=DEFAULT_MESSAGE_OVERHEAD + 50),
        [_cjk(i) for i in range(100)],
        max_cost=0.01,
        concurrency=concurrency,
        max_tokens=50,
    )
    assert isinstance(stopped, UsageAboveBoundError)
    assert "--message-overhead" in str(stopped)
    assert len(server.requests) <= concurrency
    assert billed_usd(server) <= 0.01 + concurrency * FLASH.cost(50, 0)


async def test_media_tokens_too_low_names_media_tokens() -> None:
    items = [{"messages": [{"role": "user", "content": [IMAGE, {"type": "text", "text": "q"}]}]}]
    _, stopped, _ = await run_batch(
        Billing(message_overhead=DEFAULT_MESSAGE_OVERHEAD, media_tokens=900),
        items * 10,
        max_cost=0.01,
        concurrency=2,
        max_tokens=50,
        media_tokens=100,
    )
    assert isinstance(stopped, UsageAboveBoundError)
    assert "--media-tokens" in str(stopped)


async def test_a_media_part_without_media_tokens_is_refused_unsent() -> None:
    items = [{"messages": [{"role": "user", "content": [IMAGE, {"type": "text", "text": "q"}]}]}]
    server, stopped, results = await run_batch(
        EXACT, [*items, "plain"], max_cost=0.01, concurrency=2, max_tokens=50
    )
    assert stopped is None
    assert isinstance(results[0].error, MediaTokensNeededError)
    assert "--media-tokens" in str(results[0].error)
    assert results[1].error is None
    assert len(server.requests) == 1  # only the plain one


async def test_an_item_for_a_model_without_a_price_gets_its_own_error() -> None:
    server, stopped, results = await run_batch(
        EXACT,
        [{"prompt": "a", "model": "reka-core"}, "b"],
        max_cost=0.01,
        concurrency=1,
        max_tokens=50,
    )
    assert stopped is None
    assert isinstance(results[0].error, UnpricedModelError)
    assert "--prices" in str(results[0].error)
    assert results[1].error is None
    assert len(server.requests) == 1


# ----------------------------------------------------------------------- the property

_text = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(list(CJK + EMOJI)),
    ),
    min_size=0,
    max_size=60,
)
_part = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, _text),
    st.just(IMAGE),
)
_message = st.one_of(
    st.builds(lambda r, t: {"role": r, "content": t}, st.sampled_from(["user", "system"]), _text),
    st.builds(lambda ps: {"role": "user", "content": ps}, st.lists(_part, min_size=1, max_size=3)),
)
_item = st.builds(
    lambda ms, tools, mt: {
        "messages": [*ms, {"role": "user", "content": "go"}],
        **({"tools": [TOOL]} if tools else {}),
        **({"max_tokens": mt} if mt is not None else {}),
    },
    st.lists(_message, max_size=12),  # many small messages
    st.booleans(),
    st.one_of(st.none(), st.integers(min_value=1, max_value=300)),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(
    items=st.lists(_item, min_size=1, max_size=40),
    concurrency=st.integers(min_value=1, max_value=16),
    max_cost=st.floats(min_value=0.001, max_value=0.05),
)
def test_billed_never_exceeds_max_cost_when_the_server_bills_the_bound(
    items: list[dict[str, Any]], concurrency: int, max_cost: float
) -> None:
    server, stopped, _ = asyncio.run(
        run_batch(EXACT, items, max_cost=max_cost, concurrency=concurrency, media_tokens=500)
    )
    assert not isinstance(stopped, UsageAboveBoundError), stopped
    assert billed_usd(server) <= max_cost + 1e-12


# ----------------------------------------------------------------------- the rule itself


def test_the_bound_counts_every_text_the_request_carries() -> None:
    from reka_async.batch import token_bound

    base: dict[str, Any] = {"model": "reka-flash", "messages": [{"role": "user", "content": "hi"}]}
    plain = token_bound(base, message_overhead=0)
    assert plain.output == 1024  # the API's default max_tokens
    assert token_bound({**base, "max_tokens": 7}).output == 7
    assert token_bound(base, message_overhead=5).input == plain.input + 5
    cjk = token_bound(
        {**base, "messages": [{"role": "user", "content": "東京"}]}, message_overhead=0
    )
    assert cjk.input == plain.input - 2 + 6  # three bytes a character, not one
    research = {"web_search": {"enabled": True, "allowed_domains": ["example.com"]}}
    call = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "name": "lookup", "parameters": {"query": "a long query " * 10}}
    ]}  # fmt: skip
    output = {"role": "tool_output", "content": [{"tool_call_id": "c1", "output": "x" * 200}]}
    for extra in (
        {"tools": [TOOL]},
        {"research": research},
        {"messages": [*base["messages"], call]},
        {"messages": [*base["messages"], output]},
    ):
        grown = token_bound({**base, **extra}, message_overhead=0).input - plain.input
        text = json.dumps(extra, ensure_ascii=False, separators=(",", ":"))
        assert grown >= len(text.encode()) - 60, extra  # (less the one message it replaces)
    media = {"role": "user", "content": [IMAGE, IMAGE, {"type": "text", "text": "hi"}]}
    bound = token_bound({**base, "messages": [media]}, message_overhead=0, media_tokens=700)
    assert bound.media_parts == 2
    without = token_bound({**base, "messages": [media]}, message_overhead=0, media_tokens=0)
    assert bound.input == without.input + 1400
    assert without.input < plain.input + 40  # a media part's URL or data is not counted as text
