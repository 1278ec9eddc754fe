"""A default ``BatchRunner`` (no ``rpm``) against each kind of limiter, over real sockets:
every item ends ok and refusals stay under a generous bound, read from the mock's own
counters (the goodput benchmark measures the shares; this checks the invariants)."""

from __future__ import annotations

import pytest

from reka_async import AsyncClient, BatchRunner
from reka_async.testing import Billing, MockRekaServer
from reka_async.testing._limiters import LIMITER_KINDS


@pytest.mark.parametrize("kind", LIMITER_KINDS)
async def test_rate_limiting_alone_never_fails_an_item(kind: str) -> None:
    # 50 a second (25 per half second), 20 ms latency: unpaced, C=16 would send ~800 a second.
    async with (
        MockRekaServer(rate_limit="25/0.5s", rate_limit_kind=kind, latency_s=0.02) as server,
        AsyncClient("k", server.base_url) as client,
    ):
        runner = BatchRunner(client, concurrency=16)
        results = await runner.run([f"item {i}" for i in range(150)])
    assert [r.error for r in results if not r.ok] == []
    limiter = server.limiter
    assert limiter.admitted == 150
    # Unpaced, the refusals would be many times the admissions; paced, a first wave and
    # the odd edge.
    assert limiter.refused <= 60, (kind, limiter.refused)
    assert runner.stats.rate_limited == limiter.refused


@pytest.mark.parametrize("kind", LIMITER_KINDS)
async def test_a_token_limit_alone_never_fails_an_item(kind: str) -> None:
    # Each "item N" is billed 7 tokens: 175 tokens a half second admit about 50 requests a
    # second, the request limit being far away. Unpaced, C=16 would send ~800 a second.
    async with (
        MockRekaServer(token_limit="175/0.5s", rate_limit_kind=kind, latency_s=0.02) as server,
        AsyncClient("k", server.base_url) as client,
    ):
        runner = BatchRunner(client, concurrency=16)
        results = await runner.run([f"item {i}" for i in range(150)])
    assert [r.error for r in results if not r.ok] == []
    tokens = server.token_limiter
    assert tokens is not None
    assert len(server.billed) == 150  # every item billed once: none lost, none twice
    assert tokens.charged == 150 * 7
    assert tokens.refused <= 60, (kind, tokens.refused)
    assert server.limiter.refused == 0
    assert runner.stats.rate_limited == tokens.refused


async def test_one_percent_of_overload_429s_never_paces_the_client() -> None:
    async with (
        MockRekaServer(fault_rate=0.01, fault_kinds=["overloaded"], retry_after_s=0.01) as server,
        AsyncClient("k", server.base_url) as client,
    ):
        runner = BatchRunner(client, concurrency=16)
        results = await runner.run([f"item {i}" for i in range(400)])
    assert all(r.ok for r in results)
    assert client.pacer.rate is None
    assert runner.stats.rate_cuts == 0


@pytest.mark.parametrize("kind", LIMITER_KINDS)
async def test_a_token_limit_counting_above_the_clients_estimate_never_fails_an_item(
    kind: str,
) -> None:
    # The batch is given the server's token limit as its tpm, but the server bills each
    # request 200 input tokens more than its text: the client's budget, by its estimate,
    # admits more than ten times what the server's window holds. The server's 429s (and,
    # where it sends them, its token headers) pace the rest; no item fails, none is billed
    # twice.
    async with (
        MockRekaServer(
            token_limit="6000/0.5s",
            rate_limit_kind=kind,
            latency_s=0.02,
            billing=Billing(extra_input=200),
        ) as server,
        AsyncClient("k", server.base_url) as client,
    ):
        runner = BatchRunner(client, concurrency=16, tpm=6000 * 120, max_tokens=8)
        results = await runner.run([f"item {i}" for i in range(60)])
    assert [r.error for r in results if not r.ok] == []
    tokens = server.token_limiter
    assert tokens is not None
    assert len(server.billed) == 60  # every item billed once: none lost, none twice
    assert server.limiter.refused == 0
    assert runner.stats.rate_limited == tokens.refused
    assert tokens.refused <= 60, (kind, tokens.refused)
