"""The mock refuses out-of-range sampling parameters with a FastAPI-style 422 on both
endpoints, and its range table is the client's (the mock imports nothing of the package, so
the two tables are kept in step by this test)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from reka_async._wire.request import PARAM_RANGES as CLIENT_RANGES
from reka_async.testing import MockRekaServer
from reka_async.testing._validation import PARAM_RANGES as MOCK_RANGES
from reka_async.testing._validation import check_number

KEY = "range-key"


def test_the_mock_and_the_client_check_the_same_ranges() -> None:
    assert MOCK_RANGES == CLIENT_RANGES


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_penalty_is_refused(value: float) -> None:
    # orjson refuses Infinity and NaN in JSON outright; the standard library parses them, and
    # then this check answers.
    assert check_number("presence_penalty", value) == [
        {
            "loc": ["body", "presence_penalty"],
            "msg": "Input should be a finite number",
            "type": "finite_number",
        }
    ]


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key=KEY) as srv:
        yield srv


@pytest.mark.parametrize("path", ["/chat", "/chat/completions"])
@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("temperature", -1, "greater_than_equal"),
        ("top_p", 3, "less_than_equal"),
        ("top_p", 0, "greater_than"),
        ("top_k", -1, "greater_than_equal"),
        ("max_tokens", 0, "greater_than_equal"),
    ],
)
async def test_an_out_of_range_value_gets_a_422_naming_the_field(
    server: MockRekaServer, path: str, field: str, value: Any, kind: str
) -> None:
    body = {"model": "reka-flash", "messages": [{"role": "user", "content": "hi"}], field: value}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.base_url + path,
            data=json.dumps(body),
            headers={
                "X-Api-Key": KEY,
                "Authorization": f"Bearer {KEY}",
                "Content-Type": "application/json",
            },
        ) as resp,
    ):
        assert resp.status == 422
        detail = (await resp.json())["detail"]
    assert [(d["loc"], d["type"]) for d in detail] == [(["body", field], kind)]
