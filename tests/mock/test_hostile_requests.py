"""The mock answers hostile requests with a 400 and one log line, never a traceback: a body
nested too deep to parse (with either JSON backend), a 100 KB header, bad chunking."""

from __future__ import annotations

import asyncio
import contextlib
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


BIG_HEADER = b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
BAD_CHUNKING = (
    b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
)


async def _send_raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read()  # the server closes after its 400
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    ("data", "problem"),
    [(BIG_HEADER, "Got more than 8190 bytes"), (BAD_CHUNKING, "chunk size")],
    ids=["100KB-header", "bad-chunking"],
)
async def test_a_malformed_request_is_answered_400_with_one_log_line_and_no_traceback(
    data: bytes, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with MockRekaServer(api_key=None) as srv:
        answer = await _send_raw(srv.port, data)
        assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    (line,) = lines
    assert line.exc_info is None
    message = line.getMessage()
    assert "\n" not in message
    assert "malformed request from 127.0.0.1" in message
    assert problem in message
    assert len(message) < 300  # the 100 KB header is not echoed into the log
    assert "Traceback" not in caplog.text
