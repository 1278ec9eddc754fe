"""RekaChatMapper's engine without a cluster: each row prepared once, a finalizer that never
waits. Against the in-process mock server (the ``server`` fixture of tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from _ray_fakes import LocalLimiter

from reka_async.integrations.ray import RekaChatMapper
from reka_async.testing import MockRekaServer

API_KEY = "test-key"  # the key the "server" fixture of tests/conftest.py accepts


async def test_each_row_is_prepared_once_with_a_shared_budget(
    server: MockRekaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reka_async.batch.runner as batch_module
    import reka_async.jobs._input as input_module

    prepared: list[int] = []
    real = batch_module.prepare_item

    def counting(item: Any, index: int, **kwargs: Any) -> Any:
        prepared.append(index)
        return real(item, index, **kwargs)

    monkeypatch.setattr(batch_module, "prepare_item", counting)
    monkeypatch.setattr(input_module, "prepare_item", counting)
    mapper = RekaChatMapper(api_key=API_KEY, base_url=server.base_url, limiter=LocalLimiter())
    try:
        table = await mapper.process({"prompt": ["a", "b", "c"], "line": [1, 2, 3]})
    finally:
        await mapper.aclose()
    assert table.column("ok").to_pylist() == [True, True, True]
    assert sorted(prepared) == [0, 1, 2]


async def test_an_unclosed_mapper_warns_and_cancels_its_stream_without_waiting(
    server: MockRekaServer,
) -> None:
    mapper = RekaChatMapper(api_key=API_KEY, base_url=server.base_url)
    try:
        await mapper.process({"prompt": ["a"]})
        engine = mapper._engine
        assert engine is not None
        with pytest.warns(ResourceWarning, match="unclosed"):
            await asyncio.to_thread(mapper.__del__)  # as Ray Data drops it: another thread
        with contextlib.suppress(asyncio.CancelledError):
            await engine.task
        assert engine.task.cancelled()
        assert not engine.client.is_closed  # the finalizer closed nothing itself
    finally:
        await mapper.aclose()


async def test_the_circuit_breaker_stops_an_actor_on_a_refused_key(server: MockRekaServer) -> None:
    # The runner's rule, asked for (off by default in Ray): after the 401, nothing more is sent.
    prompts = [f"p{i}" for i in range(6)]
    mapper = RekaChatMapper(
        api_key="sk-wrong", base_url=server.base_url, concurrency_per_actor=1, circuit_breaker=True
    )
    try:
        table = await mapper.process({"prompt": prompts})
    finally:
        await mapper.aclose()
    kinds = table.column("error_type").to_pylist()
    assert kinds[0] == "AuthenticationError"
    assert kinds[-1] == "BatchAbortedError"
    assert set(kinds) == {"AuthenticationError", "BatchAbortedError"}
    assert "the API key was refused" in table.column("error_message").to_pylist()[-1]


async def test_without_the_circuit_breaker_every_row_is_sent(server: MockRekaServer) -> None:
    mapper = RekaChatMapper(api_key="sk-wrong", base_url=server.base_url, concurrency_per_actor=1)
    try:
        table = await mapper.process({"prompt": ["a", "b", "c"]})
    finally:
        await mapper.aclose()
    assert table.column("error_type").to_pylist() == ["AuthenticationError"] * 3


def test_the_old_keyword_is_gone() -> None:
    with pytest.raises(Exception, match="stop_on_insufficient_credits"):
        RekaChatMapper(api_key=API_KEY, stop_on_insufficient_credits=True)


async def test_ray_s_entry_point_closes_the_client_when_its_last_batch_ends(
    server: MockRekaServer,
) -> None:
    # Ray Data has no dependable hook at an actor's end: the client must be closed by the
    # batches themselves, or every actor leaves an "Unclosed client session" in its log.
    mapper = RekaChatMapper(api_key=API_KEY, base_url=server.base_url)
    gate = asyncio.Event()
    seen: list[Any] = []

    async def one(prompt: str, wait: bool) -> list[Any]:
        async def rows() -> list[Any]:
            return [t async for t in mapper({"prompt": [prompt]})]

        if wait:
            await gate.wait()
        return await rows()

    try:
        first = asyncio.ensure_future(one("a", wait=False))
        # While a batch is in flight the engine is shared; take it as soon as it exists.
        while mapper._engine is None:
            await asyncio.sleep(0)
        engine = mapper._engine
        second = asyncio.ensure_future(one("b", wait=True))
        gate.set()
        seen = [*(await first), *(await second)]
        assert engine.client.is_closed  # the last batch out closed it
        assert mapper._engine is None
        again = [t async for t in mapper({"prompt": ["c"]})]  # a new client for the next
        assert again[0].column("ok").to_pylist() == [True]
        assert mapper._engine is None
    finally:
        await mapper.aclose()
    assert [t.column("ok").to_pylist() for t in seen] == [[True], [True]]


async def test_the_next_client_carries_on_with_the_pacing_of_the_one_before(
    server: MockRekaServer,
) -> None:
    mapper = RekaChatMapper(api_key=API_KEY, base_url=server.base_url)
    try:
        first = [t async for t in mapper({"prompt": ["a"]})]
        assert mapper._engine is None  # Ray's entry point closed the client
        paced = mapper._pacer
        assert paced is not None
        paced.cooldown.trip(30.0)  # say a spent window paused it
        engine = await mapper._get_engine()  # the client of the next batch
        assert engine.client.pacer is paced
        assert engine.client.cooldown_remaining > 29
    finally:
        await mapper.aclose()
    assert first[0].column("ok").to_pylist() == [True]
