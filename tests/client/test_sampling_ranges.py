"""Sampling parameters out of range are refused before anything is sent (the client, batch
items and the CLI, which share ``check_range``); values at the edges of the ranges pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _seam import answers, client_over

from reka_async import AsyncClient, BatchRunner, InvalidRequestError
from reka_async.testing import MockRekaServer

ASK = [{"role": "user", "content": "hi"}]
ROOT = Path(__file__).resolve().parents[2]

BAD = [
    ("temperature", -1, r"^temperature: must be finite and >= 0, got -1$"),
    ("temperature", float("nan"), r"^temperature: must be finite and >= 0, got nan$"),
    ("temperature", float("inf"), r"^temperature: must be finite"),
    ("top_p", 3, r"^top_p: must be finite and in \(0, 1\], got 3$"),
    ("top_p", 0, r"^top_p: must be finite and in \(0, 1\], got 0$"),
    ("top_p", -0.5, r"^top_p: "),
    ("top_k", -1, r"^top_k: must be >= 0, got -1$"),
    ("max_tokens", 0, r"^max_tokens: must be >= 1, got 0$"),
    ("presence_penalty", float("inf"), r"^presence_penalty: must be a finite number, got inf$"),
    ("frequency_penalty", float("-inf"), r"^frequency_penalty: must be a finite number"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD)
async def test_an_out_of_range_value_is_refused_before_sending(
    name: str, value: float, message: str
) -> None:
    transport = answers()  # any attempt would fail the test: none is answered
    async with client_over(transport) as client:
        with pytest.raises(InvalidRequestError, match=message):
            await client.chat.create(messages=ASK, model="reka-flash", **{name: value})
        with pytest.raises(InvalidRequestError, match=message):
            client.chat.create_stream(messages=ASK, model="reka-flash", **{name: value})
    assert transport.requests == []


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": 0, "top_p": 1, "top_k": 0, "max_tokens": 1},
        {"temperature": 2.5, "top_p": 1e-9, "presence_penalty": -5, "frequency_penalty": 7},
    ],
)
async def test_values_at_the_edges_pass_the_client_and_the_mock(params: dict[str, Any]) -> None:
    async with MockRekaServer(api_key="k") as server, AsyncClient("k", server.base_url) as client:
        response = await client.chat.create(messages=ASK, model="reka-flash", **params)
    assert response.text
    assert {k: server.requests[0].body[k] for k in params} == params


async def test_a_batch_item_out_of_range_fails_alone() -> None:
    async with MockRekaServer(api_key="k") as server, AsyncClient("k", server.base_url) as client:
        results = await BatchRunner(client, concurrency=2).run(
            [{"prompt": "a", "top_p": 3}, {"prompt": "b", "top_p": 0.5}]
        )
    assert not results[0].ok
    assert "top_p: must be finite and in (0, 1]" in str(results[0].error)
    assert results[1].ok
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--top-p", "0", "argument --top-p: must be finite and in (0, 1], got 0.0"),
        ("--top-p", "3", "argument --top-p: must be finite and in (0, 1], got 3.0"),
        ("--temperature", "inf", "argument --temperature: must be finite and >= 0, got inf"),
    ],
)
def test_the_cli_refuses_the_same_values(flag: str, value: str, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reka_async", "chat", "--mock", flag, value, "hi"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
