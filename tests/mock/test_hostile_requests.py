"""The mock answers a request body nested too deep to parse with a 400 and one log line
(never a 500 with a traceback), with either JSON backend."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from reka_async.testing import MockRekaServer

DEEP = "[" * 100_000 + "]" * 100_000
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("path", ["/chat", "/chat/completions"])
@pytest.mark.parametrize("backend", ["backend", "stdlib"])
async def test_the_mock_answers_a_too_deep_request_with_a_400_and_one_line(
    path: str,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend == "stdlib":
        import json

        import reka_async.testing._validation as validation

        monkeypatch.setattr(validation, "loads", json.loads)
    caplog.set_level(logging.WARNING, logger="reka_async.testing")
    async with MockRekaServer(api_key=None) as srv, aiohttp.ClientSession() as session:
        response = await session.post(srv.base_url + path, data=DEEP, headers=JSON)
        async with response:
            assert response.status == 400
            assert "nested too deep" in (await response.json())["error"]["message"]
    lines = [r for r in caplog.records if r.name.startswith("reka_async.testing")]
    assert len(lines) == 1
    assert "nested too deep" in lines[0].getMessage()
    assert "Traceback" not in caplog.text
