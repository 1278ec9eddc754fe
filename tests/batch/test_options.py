"""``Client.batch``, ``Client.batch_stream`` and ``BatchRunner`` take the same options, declared
once as ``BatchOptions`` (``batch/items.py``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from conftest import API_KEY

from reka_async import (
    BatchOptions,
    BatchResult,
    BatchRunner,
    BatchStats,
    Client,
    InvalidRequestError,
)
from reka_async.testing import MockRekaServer
from reka_async.types import ChatParams

TAKERS: list[Callable[..., Any]] = [Client.batch, Client.batch_stream, BatchRunner.__init__]


@pytest.mark.parametrize("taker", TAKERS, ids=lambda f: f.__qualname__)
def test_every_taker_declares_the_one_options_type(taker: Callable[..., Any]) -> None:
    options = inspect.signature(taker).parameters["options"]
    assert options.kind is inspect.Parameter.VAR_KEYWORD
    assert options.annotation in ("Unpack[BatchOptions]", "typing_extensions.Unpack[BatchOptions]")


def test_batch_options_document_every_key() -> None:
    doc = inspect.getdoc(BatchOptions) or ""
    own = set(BatchOptions.__annotations__) - set(ChatParams.__annotations__)
    assert own
    for key in own:
        assert f"{key}:" in doc, key


def test_client_batch_passes_every_option_through() -> None:
    seen: list[tuple[str, int]] = []

    def on_result(result: BatchResult, stats: BatchStats) -> None:
        seen.append((result.custom_id, stats.done))

    with (
        MockRekaServer.in_thread(api_key=API_KEY) as server,
        Client(API_KEY, server.base_url) as client,
    ):
        results = client.batch(
            ["a", "b", "c"],
            concurrency=2,
            model="reka-core",
            max_tokens=7,
            temperature=0.1,
            adaptive=False,
            on_result=on_result,
        )
        with client.batch_stream(["d"], ordered=True, model="reka-edge", seed=3) as stream:
            streamed = list(stream)
    assert [r.ok for r in results] == [True, True, True]
    assert sorted(cid for cid, _ in seen) == ["0", "1", "2"]
    assert sorted(done for _, done in seen) == [1, 2, 3]
    bodies = [r.body for r in server.requests]
    assert [b["model"] for b in bodies] == ["reka-core"] * 3 + ["reka-edge"]
    assert all(b["max_tokens"] == 7 and b["temperature"] == 0.1 for b in bodies[:3])
    assert bodies[3]["seed"] == 3
    assert streamed[0].ok


def test_a_misspelled_option_is_named() -> None:
    with (
        MockRekaServer.in_thread(api_key=API_KEY) as server,
        Client(API_KEY, server.base_url) as client,
        pytest.raises(InvalidRequestError, match="concurency"),
    ):
        client.batch(["a"], concurency=2)  # type: ignore[call-arg]
