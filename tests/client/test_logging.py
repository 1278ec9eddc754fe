"""``REKA_LOG=info|debug`` and the debug line per request: method, path, status, request id,
attempt and duration, never the key or the prompt."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from conftest import API_KEY, FAST_POLICY

from reka_async import AsyncClient, _logging
from reka_async.testing import MockRekaServer

KEY = "sk-log-canary-31337"
PROMPT = "my secret prompt about llamas"

SCRIPT = textwrap.dedent(
    f"""
    import asyncio
    from reka_async import AsyncClient, RetryPolicy
    from reka_async.testing import MockRekaServer

    async def main():
        async with MockRekaServer(api_key={KEY!r}, retry_after_s=0.01) as server:
            server.inject("503")
            async with AsyncClient({KEY!r}, server.base_url,
                                   retry_policy=RetryPolicy(base=0.001, cap=0.01)) as client:
                for api in ("native", "openai"):
                    r = await client.chat.create(
                        messages=[{{"role": "user", "content": {PROMPT!r}}}],
                        model="reka-flash", api=api)
                    print("ID", r.request_id)
                async for _ in client.chat.create_stream(
                        messages=[{{"role": "user", "content": {PROMPT!r}}}], model="reka-flash"):
                    pass
                await client.models.list()

    asyncio.run(main())
    """
)

LINE = re.compile(
    r"DEBUG reka_async: (POST|GET) (/chat|/chat/completions|/models)( \(stream\))? -> (\d{3}) "
    r"request_id=(req_\w+) attempt=(\d+) (\d+\.\d{3})s$"
)


def _run(level: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REKA_")}
    if level is not None:
        env["REKA_LOG"] = level
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
    )


def test_reka_log_debug_prints_one_line_per_request() -> None:
    proc = _run("debug")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "DEBUG reka_async" in line]
    parsed = [LINE.search(line) for line in lines]
    assert all(parsed), lines
    summary = [
        (m.group(1), m.group(2), bool(m.group(3)), m.group(4), m.group(6)) for m in parsed if m
    ]
    assert summary == [
        ("POST", "/chat", False, "503", "1"),
        ("POST", "/chat", False, "200", "2"),
        ("POST", "/chat/completions", False, "200", "1"),
        ("POST", "/chat", True, "200", "1"),
        ("GET", "/models", False, "200", "1"),
    ]
    ids = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ID")]
    assert ids[0] in lines[1]
    assert ids[1] in lines[2]
    assert "INFO reka_async: retrying POST /chat" in proc.stderr
    assert KEY not in proc.stderr + proc.stdout
    assert PROMPT not in proc.stderr


def test_reka_log_info_logs_retries_but_not_each_request() -> None:
    proc = _run("INFO")
    assert proc.returncode == 0, proc.stderr
    assert "retrying POST /chat" in proc.stderr
    assert "DEBUG" not in proc.stderr


def test_without_reka_log_nothing_is_printed() -> None:
    proc = _run(None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_an_unknown_reka_log_level_warns_and_logs_at_info() -> None:
    proc = _run("verbose")
    assert proc.returncode == 0, proc.stderr
    assert "REKA_LOG='verbose' is not 'info' or 'debug'" in proc.stderr
    assert "retrying POST /chat" in proc.stderr


@pytest.fixture
def debug_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("reka_async")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.setLevel(level)


async def test_a_logger_at_debug_when_the_client_is_made_gets_the_lines(
    server: MockRekaServer, debug_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reka_async")
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as client:
        response = await client.chat.create(
            messages=[{"role": "user", "content": PROMPT}], model="reka-flash"
        )
    records = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(records) == 1
    message = records[0].getMessage()
    assert message.startswith("POST /chat -> 200 request_id=")
    assert f"request_id={response.request_id} attempt=1 " in message
    assert PROMPT not in message
    assert API_KEY not in message


async def test_a_client_made_before_debug_is_switched_on_logs_no_request_lines(
    server: MockRekaServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The debug line is decided when the client is made, so a request costs nothing extra
    # when it is off (documented in docs/guides/client.md).
    client = AsyncClient(API_KEY, server.base_url)
    caplog.set_level(logging.DEBUG, logger="reka_async")
    async with client:
        await client.chat.create(messages=[{"role": "user", "content": "x"}], model="reka-flash")
    assert [r for r in caplog.records if r.levelno == logging.DEBUG] == []


def test_configure_from_env_leaves_a_configured_logger_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = logging.getLogger("reka_async")
    mine = logging.NullHandler()
    logger.addHandler(mine)
    monkeypatch.setattr(_logging, "_handler", None)
    monkeypatch.setenv("REKA_LOG", "debug")
    level = logger.level
    try:
        _logging.configure_from_env()
        assert logger.handlers == [mine]
        assert logger.level == level
    finally:
        logger.removeHandler(mine)
