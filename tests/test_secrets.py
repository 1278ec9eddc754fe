"""The API key never leaks: not in exceptions, tracebacks, reprs, logs, CLI output or results.

The key is legitimately sent to the server (``X-Api-Key``), so the mock's recorded request
headers are never scanned here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reka_async import AsyncClient, BatchRunner, Client, RetryPolicy, Timeout
from reka_async._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    InternalServerError,
    InvalidRequestError,
    MissingAPIKeyError,
    RateLimitError,
    StreamError,
    UnprocessableEntityError,
)
from reka_async.testing import MockRekaServer, MockServerProcess

KEY = "sk-SECRET-canary-7f3a9c"
OTHER = "some-other-key"
MSGS = [{"role": "user", "content": "hello"}]


def assert_clean_exc(exc: BaseException) -> None:
    """No view of an exception (or its causes) contains the key."""
    views: list[Any] = [
        str(exc),
        repr(exc),
        repr(exc.args),
        repr(getattr(exc, "body", None)),
        repr(getattr(exc, "headers", None)),
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    ]
    for view in views:
        assert KEY not in view, view
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        assert_clean_exc(cause)


def assert_clean(*objects: Any) -> None:
    for obj in objects:
        assert KEY not in repr(obj)
        assert KEY not in str(obj)


def assert_clean_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records, "expected some log records"
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.args)


FAST_POLICY = RetryPolicy(base=0.001, cap=0.01)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="reka_async")
    return caplog


@pytest.fixture
async def srv() -> Any:
    async with MockRekaServer(api_key=KEY, retry_after_s=0.01, slow_first_byte_s=2.0) as s:
        yield s


# --------------------------------------------------------------------------- in-process


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        AsyncClient(None, "http://127.0.0.1:1/v1")
    assert "REKA_API_KEY" in str(info.value)


async def test_client_repr_hides_key() -> None:
    async with AsyncClient(KEY, "http://127.0.0.1:1/v1") as c:
        assert_clean(c, c.chat, c.models, c.retry_policy, c.timeout)
        stream = c.chat.create_stream(messages=MSGS, model="reka-flash")
        assert_clean(stream)
        await stream.aclose()


async def test_401_wrong_key(logs: pytest.LogCaptureFixture) -> None:
    async with (
        MockRekaServer(api_key=OTHER) as server,
        AsyncClient(KEY, server.base_url) as c,
    ):
        with pytest.raises(AuthenticationError) as info:
            await c.chat.create(messages=MSGS, model="reka-flash")
        assert_clean_exc(info.value)
        with pytest.raises(AuthenticationError) as info:
            async for _ in c.chat.create_stream(messages=MSGS, model="reka-flash"):
                pass
        assert_clean_exc(info.value)
        with pytest.raises(AuthenticationError) as info:
            await c.models.list()
        assert_clean_exc(info.value)
        assert_clean(c)
    assert KEY not in logs.text


@pytest.mark.parametrize(
    ("fault", "exc_type"),
    [
        ("422", UnprocessableEntityError),
        ("500", InternalServerError),
        ("502", InternalServerError),
        ("rate_limit", RateLimitError),
        ("drop", APIConnectionError),
        ("html", InternalServerError),
        ("wrong_shape", APIError),
        ("truncated_json", APIError),
    ],
)
async def test_failures_with_retries(
    srv: MockRekaServer, logs: pytest.LogCaptureFixture, fault: str, exc_type: type[Exception]
) -> None:
    async with AsyncClient(KEY, srv.base_url, max_retries=2, retry_policy=FAST_POLICY) as c:
        with pytest.raises(exc_type) as info:
            await c.chat.create(
                messages=[{"role": "user", "content": f"x [[fault:{fault}]]"}], model="reka-flash"
            )
        assert_clean_exc(info.value)
        assert_clean(c)
    assert KEY not in logs.text


async def test_retries_are_logged_without_key(
    srv: MockRekaServer, logs: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(KEY, srv.base_url, max_retries=2, retry_policy=FAST_POLICY) as c:
        with pytest.raises(InternalServerError) as info:
            await c.chat.create(
                messages=[{"role": "user", "content": "[[fault:500]]"}], model="reka-flash"
            )
        assert_clean_exc(info.value)
    # Sanity: the canary really went over the wire (the only place it belongs).
    assert srv.requests[0].headers["X-Api-Key"] == KEY
    assert any("retrying" in r.getMessage() for r in logs.records)
    assert_clean_logs(logs)


async def test_timeout(srv: MockRekaServer, logs: pytest.LogCaptureFixture) -> None:
    async with AsyncClient(
        KEY, srv.base_url, max_retries=0, timeout=Timeout(connect=5, read=0.05, total=5)
    ) as c:
        with pytest.raises(APITimeoutError) as info:
            await c.chat.create(
                messages=[{"role": "user", "content": "[[fault:slow_first_byte]]"}],
                model="reka-flash",
            )
        assert_clean_exc(info.value)
    assert KEY not in logs.text


@pytest.mark.parametrize("fault", ["cut", "error_event", "drop", "500"])
async def test_stream_failures(
    srv: MockRekaServer, logs: pytest.LogCaptureFixture, fault: str
) -> None:
    async with AsyncClient(KEY, srv.base_url, max_retries=0, retry_policy=FAST_POLICY) as c:
        stream = c.chat.create_stream(
            messages=[{"role": "user", "content": f"one two three [[fault:{fault}]]"}],
            model="reka-flash",
        )
        with pytest.raises(APIError) as info:  # noqa: PT012 - the error surfaces mid-iteration
            async with stream:
                async for _ in stream:
                    assert_clean(stream)
        assert_clean_exc(info.value)
        assert_clean(stream)
        if fault in ("cut", "error_event"):
            assert isinstance(info.value, (StreamError, APIConnectionError))
    assert KEY not in logs.text


async def test_invalid_request() -> None:
    async with AsyncClient(KEY, "http://127.0.0.1:1/v1") as c:
        for kwargs in (
            {"messages": [{"role": "robot", "content": KEY[:3]}], "model": "reka-flash"},
            {"messages": MSGS, "model": ""},
            {"messages": MSGS, "model": "reka-flash", "max_tokens": -1},
        ):
            with pytest.raises(InvalidRequestError) as info:
                await c.chat.create(**kwargs)
            assert_clean_exc(info.value)
        with pytest.raises(ValueError, match="api_key") as verr:
            await c.chat.create(
                messages=MSGS, model="reka-flash", extra_headers={"X-Api-Key": "other"}
            )
        assert_clean_exc(verr.value)


async def test_batch_runner_failures(srv: MockRekaServer, logs: pytest.LogCaptureFixture) -> None:
    items: list[Any] = [
        "fine",
        "[[fault:500]]",
        "[[fault:422]]",
        "[[fault:drop]]",
        "[[fault:rate_limit]]",
        {"messages": "not a list"},
        42,
    ]
    async with AsyncClient(KEY, srv.base_url, max_retries=1, retry_policy=FAST_POLICY) as c:
        runner = BatchRunner(c, concurrency=4)
        assert_clean(runner)
        results = await runner.run(items)
        assert_clean(runner, runner.stats)
    assert len(results) == len(items)
    assert results[0].ok
    assert sum(not r.ok for r in results) == len(items) - 1
    for result in results:
        assert_clean(result, result.request)
        assert KEY not in repr(result.request)
        if result.error is not None:
            assert_clean_exc(result.error)
    assert KEY not in logs.text


def test_sync_client(logs: pytest.LogCaptureFixture) -> None:
    with key_server("--api-key", OTHER) as server:
        with Client(KEY, server.base_url, max_retries=0) as c:
            assert_clean(c, c.chat, c.models)
            with pytest.raises(AuthenticationError) as info:
                c.chat.create(messages=MSGS, model="reka-flash")
            assert_clean_exc(info.value)
            assert_clean(c)
        assert_clean(c)
    assert KEY not in logs.text


# --------------------------------------------------------------------------- subprocesses


@contextlib.contextmanager
def key_server(*args: str) -> Iterator[MockServerProcess]:
    """The mock server in a subprocess; what it printed must not hold the key."""
    with MockServerProcess(*args) as server:
        yield server
    assert KEY not in server.output


@pytest.fixture
def wrong_key_server() -> Iterator[MockServerProcess]:
    with key_server("--api-key", OTHER) as server:
        yield server


@pytest.fixture
def right_key_server() -> Iterator[MockServerProcess]:
    with key_server("--api-key", KEY, "--retry-after", "0.01") as server:
        yield server


def run_cli(*args: str, env_key: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REKA_")}
    if env_key:
        env["REKA_API_KEY"] = KEY
    return subprocess.run(
        [sys.executable, "-m", "reka_async", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def write_input(path: Path, prompts: list[str]) -> None:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")


def check_cli(
    proc: subprocess.CompletedProcess[str], out: Path, n: int | None
) -> list[dict[str, Any]]:
    assert KEY not in proc.stdout
    assert KEY not in proc.stderr
    text = out.read_text(encoding="utf-8")
    assert KEY not in text
    records = [json.loads(line) for line in text.splitlines()]
    if n is None:
        assert records, (proc.stderr, text)
    else:
        assert len(records) == n, (proc.stderr, text)
    return records


@pytest.mark.parametrize("env_key", [False, True])
def test_cli_batch_401(wrong_key_server: MockServerProcess, tmp_path: Path, env_key: bool) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, ["a", "b", "c"])
    key_args = [] if env_key else ["--api-key", KEY]
    proc = run_cli(
        *key_args,
        "-vv",
        "--base-url",
        wrong_key_server.base_url,
        "batch",
        str(inp),
        "-o",
        str(out),
        env_key=env_key,
    )
    # The circuit breaker stops the batch at the first 401 (exit 3); the requests already in
    # flight may or may not have been recorded.
    assert proc.returncode == 3, proc.stderr
    records = check_cli(proc, out, None)
    assert all(r["error"]["type"] == "AuthenticationError" for r in records)
    assert "check the key" in proc.stderr


@pytest.mark.parametrize("env_key", [False, True])
def test_cli_batch_faults(
    right_key_server: MockServerProcess, tmp_path: Path, env_key: bool
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, ["fine", "[[fault:500]]", "[[fault:422]]", "[[fault:drop]]", "ok too"])
    key_args = [] if env_key else ["--api-key", KEY]
    proc = run_cli(
        *key_args,
        "-vv",
        "--base-url",
        right_key_server.base_url,
        "batch",
        str(inp),
        "-o",
        str(out),
        "--max-retries",
        "1",
        env_key=env_key,
    )
    assert proc.returncode == 1, proc.stderr
    records = check_cli(proc, out, 5)
    assert sum(r["ok"] for r in records) == 2


def test_cli_chat_401(wrong_key_server: MockServerProcess) -> None:
    proc = run_cli("--api-key", KEY, "-vv", "--base-url", wrong_key_server.base_url, "chat", "hi")
    assert proc.returncode == 1
    assert "AuthenticationError" in proc.stderr
    assert KEY not in proc.stdout + proc.stderr
