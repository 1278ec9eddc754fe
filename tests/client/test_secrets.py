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
import threading
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
    RekaError,
    StreamError,
    UnprocessableEntityError,
)
from reka_async.testing import MockRekaServer, MockServerProcess

KEY = "sk-SECRET-canary-7f3a9c"
OTHER = "some-other-key"
MSGS = [{"role": "user", "content": "hello"}]


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception reachable through ``__cause__`` and ``__context__``."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__]
    return found


def views_of(exc: BaseException) -> list[str]:
    """What an error reporter may serialise of one exception: its text, its args, every
    attribute, aiohttp's ``request_info`` (headers included) and the redirect history."""
    views = [str(exc), repr(exc), repr(exc.args)]
    views += [f"{name}={value!r}" for name, value in vars(exc).items()]
    info = getattr(exc, "request_info", None)
    if info is not None:
        views += [repr(info), repr(dict(info.headers))]
    for response in getattr(exc, "history", None) or ():
        views += [repr(response), repr(dict(response.request_info.headers))]
    return views


def assert_clean_exc(exc: BaseException) -> None:
    """No view of an exception, nor of any exception chained to it, contains the key."""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert KEY not in trace, trace
    for link in chain(exc):
        for view in views_of(link):
            assert KEY not in view, (type(link), view)


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


#: A rate-limit 429 spends no retry: its waits are bounded by ``max_rate_limit_wait`` instead,
#: kept short so an item refused on every attempt fails quickly.
FAST_POLICY = RetryPolicy(base=0.001, cap=0.01, max_rate_limit_wait=0.5)


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
        ("bad_status_line", APIConnectionError),
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


async def test_a_malformed_status_line_leaves_no_key_in_the_chain(
    srv: MockRekaServer, logs: pytest.LogCaptureFixture
) -> None:
    # aiohttp's error for it carries the request's headers (request_info), X-Api-Key included.
    async with AsyncClient(KEY, srv.base_url, max_retries=0) as c:
        for openai in (False, True):  # the OpenAI dialect sends the key as a Bearer token too
            with pytest.raises(APIConnectionError) as info:
                await c.chat.create(
                    messages=[{"role": "user", "content": "[[fault:bad_status_line]]"}],
                    model="reka-flash",
                    api="openai" if openai else "native",
                )
            links = chain(info.value)
            cause = info.value.__cause__
            assert cause is not None
            assert cause in links
            assert info.value.__context__ in links  # the same error, or (3.10) its own cause
            request_info = getattr(cause, "request_info", None)
            assert request_info is not None, "expected aiohttp's error with request_info"
            assert request_info.headers["X-Api-Key"] == "<redacted>"
            if openai:
                assert request_info.headers["Authorization"] == "<redacted>"
            assert request_info.headers["User-Agent"].startswith("reka-async/")  # kept
            assert_clean_exc(info.value)
    assert KEY not in logs.text


@pytest.mark.parametrize("fault", ["cut", "error_event", "drop", "500", "bad_status_line"])
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


# --------------------------------------------------------------------------- the key itself


@pytest.mark.parametrize("padded", [KEY + "\n", KEY + "\r\n", f"  {KEY}\t", f"\n{KEY} \n"])
async def test_surrounding_whitespace_of_the_key_is_stripped(
    padded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with MockRekaServer(api_key=KEY) as server:
        async with AsyncClient(padded, server.base_url) as c:
            assert (await c.chat.create(messages=MSGS, model="reka-flash")).text
        monkeypatch.setenv("REKA_API_KEY", padded)  # as read from a secrets file
        async with AsyncClient(None, server.base_url) as c:
            assert (await c.chat.create(messages=MSGS, model="reka-flash")).text
        assert {r.headers["X-Api-Key"] for r in server.requests} == {KEY}


@pytest.mark.parametrize("char", ["\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\x85"])
def test_a_control_character_inside_the_key_is_refused_at_construction(
    char: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = KEY[:6] + char + KEY[6:]
    before = set(threading.enumerate())
    for make in (AsyncClient, Client):
        with pytest.raises(InvalidRequestError, match=r"^api_key: the API key contains") as info:
            make(bad, "http://127.0.0.1:1/v1")
        assert isinstance(info.value, RekaError)
        assert f"U+{ord(char):04X}" in str(info.value)
        assert_clean_exc(info.value)
        assert KEY[:6] not in str(info.value)
        assert KEY[7:] not in str(info.value)
    if char != "\x00":  # the environment cannot hold a NUL
        monkeypatch.setenv("REKA_API_KEY", bad)
        with pytest.raises(InvalidRequestError, match=r"^REKA_API_KEY: the API key contains"):
            Client(None, "http://127.0.0.1:1/v1")
    assert set(threading.enumerate()) <= before  # refused before a loop thread was started


def test_a_blank_or_non_string_key() -> None:
    with pytest.raises(MissingAPIKeyError):
        AsyncClient(" \n", "http://127.0.0.1:1/v1")
    with pytest.raises(InvalidRequestError, match="api_key: must be a string, got bytes"):
        AsyncClient(KEY.encode(), "http://127.0.0.1:1/v1")  # type: ignore[arg-type]
