"""Native streams read as cumulative or delta from the evidence of all their events, and pinned
by ``stream_mode`` where the wire cannot tell (``"ha"``, ``"ha"``, ``"ha!"``): over real
sockets to the mock server, whose ``[[pieces:[...]]]`` directive sends such streams, and
through the CLI as a subprocess."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reka_async import AsyncClient, Client, InvalidRequestError, RetryPolicy
from reka_async.testing import MockRekaServer

KEY = "test-key"
FAST = RetryPolicy(base=0.001, cap=0.01)
ROOT = Path(__file__).resolve().parents[2]


def pieces(*texts: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"[[pieces:{json.dumps(list(texts))}]]"}]


@pytest.fixture(params=["delta", "cumulative"])
async def mock(request: pytest.FixtureRequest) -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key=KEY, native_stream=request.param) as server:
        yield server


async def read(client: AsyncClient, messages: Any, **kw: Any) -> tuple[str, list[bool], str]:
    """The stream's text, each chunk's rewrite flag, and the assembled response's text."""
    async with client.chat.create_stream(messages=messages, model="reka-flash", **kw) as s:
        flags = [chunk.rewrite async for chunk in s]
        final = await s.final_response()
        return s.text, flags, final.text


@pytest.mark.parametrize(
    "texts",
    [["1", "1", ":00 is the time"], ["--", "--", "-|"], ["Hel", "lo", " wor", "ld!"]],
    ids=["time", "dashes", "plain"],
)
async def test_a_stream_that_proves_its_reading_gives_the_answer_in_either_mode_of_the_server(
    mock: MockRekaServer, texts: list[str]
) -> None:
    async with AsyncClient(KEY, mock.base_url, retry_policy=FAST) as client:
        answer = (await client.chat.create(messages=pieces(*texts), model="reka-flash")).text
        text, _, final = await read(client, pieces(*texts))
    assert answer == "".join(texts)
    assert (text, final) == (answer, answer)


async def test_a_rebuilt_text_that_does_not_extend_what_was_shown_is_a_rewrite_chunk() -> None:
    async with (
        MockRekaServer(api_key=KEY, native_stream="delta") as server,
        AsyncClient(KEY, server.base_url, retry_policy=FAST) as client,
    ):
        text, flags, _ = await read(client, pieces("ab", "abc", "x"))
    assert text == "ababcx"
    assert flags == [False, False, True]


async def test_a_delta_stream_consistent_with_cumulative_needs_the_mode_pinned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ha = pieces("ha", "ha", "ha!")
    async with (
        MockRekaServer(api_key=KEY, native_stream="delta") as server,
        AsyncClient(KEY, server.base_url, retry_policy=FAST) as client,
        AsyncClient(KEY, server.base_url, retry_policy=FAST, stream_mode="delta") as pinned,
    ):
        with caplog.at_level(logging.DEBUG, logger="reka_async"):
            auto = await read(client, ha)  # the default reading stands, without a warning
        per_call = await read(client, ha, stream_mode="delta")
        by_client = await read(pinned, ha)
        by_copy = await read(pinned.with_options(max_retries=0), ha)
        overridden = await read(pinned, ha, stream_mode="auto")
    assert auto == ("ha!", [False, False, False], "ha!")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert per_call == by_client == by_copy == ("hahaha!", [False, False, False], "hahaha!")
    assert overridden[0] == "ha!"


async def test_the_same_pieces_sent_cumulatively_read_right_by_auto_and_cumulative() -> None:
    ha = pieces("ha", "ha", "ha!")
    async with (
        MockRekaServer(api_key=KEY, native_stream="cumulative") as server,
        AsyncClient(KEY, server.base_url, retry_policy=FAST) as client,
    ):
        auto = await read(client, ha)
        pinned = await read(client, ha, stream_mode="cumulative")
    assert auto[0] == pinned[0] == "hahaha!"


async def test_the_openai_dialect_streams_the_pieces_as_deltas() -> None:
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(KEY, server.base_url, retry_policy=FAST, api="openai") as client,
    ):
        text, _, _ = await read(client, pieces("ha", "ha", "ha!"))
    assert text == "hahaha!"


async def test_an_unknown_stream_mode_is_refused_before_anything_is_sent() -> None:
    async with MockRekaServer(api_key=KEY) as server:
        with pytest.raises(ValueError, match="stream_mode: must be 'auto', 'cumulative' or"):
            AsyncClient(KEY, server.base_url, stream_mode="deltas")  # type: ignore[arg-type]
        async with AsyncClient(KEY, server.base_url) as client:
            with pytest.raises(InvalidRequestError, match="got 'deltas'"):
                client.chat.create_stream(
                    messages=pieces("a"),
                    model="reka-flash",
                    stream_mode="deltas",  # type: ignore[typeddict-item]
                )
        assert server.requests == []


def test_the_cli_pins_the_mode_with_stream_mode() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REKA_API_KEY", "REKA_BASE_URL")}
    env["REKA_API_KEY"] = KEY
    prompt = f"[[pieces:{json.dumps(['ha', 'ha', 'ha!'])}]]"
    with MockRekaServer.in_thread(api_key=KEY, native_stream="delta") as server:
        cli = [sys.executable, "-m", "reka_async", "--base-url", server.base_url, "chat"]
        outputs = [
            subprocess.run(
                [*cli, "--stream", prompt, *mode],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
            )
            for mode in ([], ["--stream-mode", "delta"])
        ]
    assert [p.returncode for p in outputs] == [0, 0], [p.stderr for p in outputs]
    assert [p.stdout for p in outputs] == ["ha!\n", "hahaha!\n"]


def test_the_sync_client_takes_the_mode_too() -> None:
    ha = pieces("ha", "ha", "ha!")
    with MockRekaServer.in_thread(api_key=KEY, native_stream="delta") as server:
        with (
            Client(KEY, server.base_url, stream_mode="delta") as client,
            client.chat.create_stream(messages=ha, model="reka-flash") as stream,
        ):
            by_client = "".join(chunk.delta for chunk in stream)
        with (
            Client(KEY, server.base_url) as client,
            client.chat.create_stream(
                messages=ha, model="reka-flash", stream_mode="delta"
            ) as stream,
        ):
            per_call = "".join(chunk.delta for chunk in stream)
    assert by_client == per_call == "hahaha!"
