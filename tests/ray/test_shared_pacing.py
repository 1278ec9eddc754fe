"""The pacing Ray's actors share through their shared actor (``_limiter.py``'s docstring):
the learned rate split over the actors syncing, the shared pause, a client started afresh at
its share. The real actor class runs in-process (``tests/_ray_fakes.py``); the last test
runs two mappers against a token bucket over real sockets."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from _ray_fakes import LocalSharedActor

from reka_async._http.pacing import _OVER, Pacer
from reka_async._http.quota import Quota
from reka_async.integrations.ray import RekaChatMapper
from reka_async.integrations.ray._limiter import MEMBER_TTL_S, SharedPacing
from reka_async.testing import MockRekaServer

API_KEY = "test-key"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pacer() -> Pacer:
    return Pacer(Quota(slack=32, max_wait=120.0))


async def test_a_rate_one_actor_learns_is_shared_by_every_actor() -> None:
    shared = LocalSharedActor()
    a, b = pacer(), pacer()
    link_a, link_b = SharedPacing(shared, "a"), SharedPacing(shared, "b")
    await link_a.sync(a)
    await link_b.sync(b)
    assert (a.rate, b.rate) == (None, None)  # nothing learned yet: each paces alone
    a._set(30.0, time.monotonic())  # actor a's pacer cut its rate to 30 a second
    await link_a.sync(a)
    await link_b.sync(b)
    assert b.rate == pytest.approx(30.0)  # its share of the job's 60
    assert b._wave == _OVER  # the first wave is over: the limit is known
    stats = await shared.stats.remote()
    assert stats["pacing_rate"] == pytest.approx(60.0)
    assert stats["pacing_members"] == 2


async def test_a_client_started_afresh_starts_at_its_share_with_no_first_wave() -> None:
    shared = LocalSharedActor()
    old, other = pacer(), pacer()
    await SharedPacing(shared, "b").sync(other)
    old._set(20.0, time.monotonic())
    await SharedPacing(shared, "a").sync(old)  # the job's rate: 40 over two actors
    fresh = pacer()  # actor a's next client, after Ray's entry point closed the first
    await SharedPacing(shared, "a").sync(fresh)
    assert fresh.rate == pytest.approx(20.0)
    assert fresh._wave == _OVER  # no unpaced first wave into a spent limiter


async def test_a_pause_one_actor_takes_holds_every_actor() -> None:
    shared = LocalSharedActor()
    a, b = pacer(), pacer()
    link_a, link_b = SharedPacing(shared, "a"), SharedPacing(shared, "b")
    await link_b.sync(b)
    a.cooldown.trip(0.5)  # a quota 429 at actor a
    await link_a.sync(a)
    await link_b.sync(b)
    assert b.cooldown.remaining() > 0.4
    assert b.rate is None  # a pause shares no rate


async def test_an_actor_that_stopped_syncing_leaves_its_share_to_the_others() -> None:
    clock = Clock()
    shared = LocalSharedActor(clock=clock)
    a, b = pacer(), pacer()
    link_a, link_b = SharedPacing(shared, "a"), SharedPacing(shared, "b")
    await link_b.sync(b)
    a._set(25.0, time.monotonic())
    await link_a.sync(a)  # the job's rate: 50
    clock.now += MEMBER_TTL_S + 0.5  # actor b's client closed, and it is idle
    await link_a.sync(a)
    assert a.rate == pytest.approx(50.0)  # the whole job's rate is actor a's now
    await link_b.sync(b)  # b back: the two share it again
    await link_a.sync(a)
    assert (a.rate, b.rate) == (pytest.approx(25.0), pytest.approx(25.0))


async def test_two_actors_cutting_at_once_do_not_compound() -> None:
    shared = LocalSharedActor()
    a, b = pacer(), pacer()
    link_a, link_b = SharedPacing(shared, "a"), SharedPacing(shared, "b")
    for p in (a, b):
        p._set(30.0, time.monotonic())
    await link_a.sync(a)
    await link_b.sync(b)
    await link_a.sync(a)
    for p in (a, b):
        p._set(20.0, time.monotonic())  # both saw the same share of 429s, each cut
    await link_a.sync(a)
    await link_b.sync(b)
    await link_a.sync(a)
    assert (a.rate, b.rate) == (pytest.approx(20.0), pytest.approx(20.0))
    assert (await shared.stats.remote())["pacing_rate"] == pytest.approx(40.0)


async def test_a_rate_changed_while_its_sync_was_out_is_reported_next_time() -> None:
    shared = LocalSharedActor()
    a, b = pacer(), pacer()
    link_a, link_b = SharedPacing(shared, "a"), SharedPacing(shared, "b")
    await link_a.sync(a)
    b._set(30.0, time.monotonic())
    await link_b.sync(b)  # the job's rate: 60, a's share 30
    sync = asyncio.ensure_future(link_a.sync(a))
    a._set(10.0, time.monotonic())  # a cut of a's own before the answer is in
    await sync
    assert a.rate == pytest.approx(10.0)  # not overwritten by the stale share
    await link_a.sync(a)
    await link_b.sync(b)
    assert b.rate == pytest.approx(10.0)


async def test_two_mappers_pace_one_bucket_together_and_a_fresh_client_starts_paced() -> None:
    shared = LocalSharedActor()
    async with MockRekaServer(
        api_key=API_KEY, rate_limit="20/0.5s", rate_limit_kind="bucket", latency_s=0.02
    ) as server:
        mappers = [
            RekaChatMapper(
                api_key=API_KEY,
                base_url=server.base_url,
                limiter=shared,
                concurrency_per_actor=16,
            )
            for _ in range(2)
        ]
        try:
            tables = await asyncio.gather(
                *(
                    m.process({"prompt": [f"m{k} p{i}" for i in range(150)]})
                    for k, m in enumerate(mappers)
                )
            )
            engines = [m._engine for m in mappers]
            assert all(e is not None for e in engines)
            share = (await shared.stats.remote())["pacing_rate"] / 2
            assert share > 0
            await mappers[0].aclose()
            fresh = await mappers[0]._get_engine()  # a new client for the next batch
            assert fresh.pacing is not None
            await fresh.pacing.ready()
            assert fresh.client.pacer.rate is not None
            assert fresh.client.pacer._wave == _OVER
        finally:
            for m in mappers:
                await m.aclose()
    assert [t.column("ok").to_pylist() for t in tables] == [[True] * 150] * 2
    assert server.limiter.admitted == 300
    assert server.limiter.refused <= 100, server.limiter.refused
