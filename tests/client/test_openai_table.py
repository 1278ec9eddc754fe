"""The "Coming from openai-python" table (``docs/guides/from-openai.md``), row by row: each
row's right-hand column is run here against the mock (or in a subprocess where it sets the
environment). The rows are read from the page, so a row added without a check here fails
``test_every_row_has_a_check``. The pydantic half of the ``parse`` row is
``tests/client/test_parse_pydantic.py`` (a third-party test)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

import aiohttp
import attrs
import pytest
from _proxy import LoopbackProxy
from conftest import API_KEY, FAST_POLICY

import reka_async
import reka_async.types
from reka_async import AsyncChatStream, AsyncClient, Client
from reka_async.testing import MockRekaServer

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "from-openai.md"
MSGS: Any = [{"role": "user", "content": "hi"}]
Check = Callable[[MockRekaServer, Path, pytest.MonkeyPatch], Awaitable[None]]


def table_rows() -> list[str]:
    """The left-hand cells of the table, in order."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index("| openai-python (or anthropic) | reka_async |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line.split(" | ")[0].removeprefix("| "))
    return rows


CHECKS: dict[str, Check] = {}


def row(first_cell: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        CHECKS[first_cell] = check
        return check

    return register


@row("`AsyncOpenAI()` / `OpenAI()`")
async def _clients_from_the_environment(
    server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch
) -> None:
    env.setenv("REKA_API_KEY", API_KEY)
    env.setenv("REKA_BASE_URL", server.base_url)
    async with AsyncClient() as client:
        assert client.base_url == server.base_url
        assert (await client.chat.create(messages=MSGS, model="reka-flash")).text
    with Client() as sync:
        assert sync.base_url == server.base_url


@row("`client.chat.completions.create(model=..., messages=...)`")
async def _create(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    for api in ("native", "openai"):
        async with AsyncClient(API_KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
            response = await client.chat.create(model="reka-flash", messages=MSGS)
        assert response.text == response.responses[0].message.content == "Mock reply to: hi"


@row("`create(..., stream=True)`")
async def _stream(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        stream = await client.chat.create(model="reka-flash", messages=MSGS, stream=True)
        assert isinstance(stream, AsyncChatStream)
        async with stream:
            deltas = [chunk.delta async for chunk in stream]
        async with client.chat.create_stream(model="reka-flash", messages=MSGS) as other:
            final = await other.final_response()
    assert "".join(deltas) == final.text == "Mock reply to: hi"


@dataclasses.dataclass
class _City:
    name: str
    population: int


class _CityDict(TypedDict):
    name: str
    population: int


@attrs.frozen
class _CityAttrs:
    name: str
    population: int


@row("`client.beta.chat.completions.parse(response_format=Model)`")
async def _parse(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name", "population"],
    }
    async with AsyncClient(API_KEY, server.base_url) as client:
        for kind in (_City, _CityDict, _CityAttrs, schema):
            result = await client.chat.parse(
                model="reka-flash", messages=MSGS, response_format=kind
            )
            parsed: Any = result.parsed
            if isinstance(kind, dict):
                assert isinstance(parsed["population"], int)
            elif kind is _CityDict:
                assert set(parsed) == {"name", "population"}
            else:
                assert isinstance(parsed, kind)


@row("`client.with_options(max_retries=0, timeout=10)`, `client.copy(...)`")
async def _with_options(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    async with (
        MockRekaServer(api_key=None) as elsewhere,
        AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY, rpm=6000) as client,
    ):
        async with client.with_options(max_retries=0, timeout=10) as quick:
            assert (quick.max_retries, quick.timeout.total) == (0, 10)
            assert quick.rate_budget is client.rate_budget
            server.inject("rate_limit")
            with pytest.raises(reka_async.RateLimitError):
                await quick.chat.create(model="reka-flash", messages=MSGS)
            assert client.cooldown_remaining > 0  # the same cooldown
        assert not client.is_closed  # closing the copy left the client open
        async with client.copy(api_key="other", base_url=elsewhere.base_url) as own:
            assert own.cooldown_remaining == 0  # a cooldown of its own
            assert own.rate_budget is client.rate_budget  # the budgets stay shared
            assert (await own.chat.create(model="reka-flash", messages=MSGS)).text
            assert elsewhere.requests[-1].headers["X-Api-Key"] == "other"
        assert own.is_closed
        assert not client.is_closed


@row("`client.chat.completions.with_raw_response.create(...)`")
async def _raw(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        raw = await client.chat.with_raw_response.create(model="reka-flash", messages=MSGS)
    assert raw.status_code == 200
    assert raw.headers["x-request-id"] == raw.request_id
    assert json.loads(raw.content)["responses"]
    assert raw.retries_taken == 0
    assert raw.parse().text == "Mock reply to: hi"


@row("`response._request_id`")
async def _request_id(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        response = await client.chat.create(model="reka-flash", messages=MSGS)
        async with client.chat.create_stream(model="reka-flash", messages=MSGS) as stream:
            await stream.final_response()
    assert response.request_id
    assert stream.request_id
    assert stream.request_id != response.request_id
    assert stream.headers["x-request-id"] == stream.request_id


@row("rate-limit headers via the raw response")
async def _rate_limit(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    async with (
        MockRekaServer(api_key=None, rate_limit="100/min") as limited,
        AsyncClient(API_KEY, limited.base_url) as client,
    ):
        assert client.rate_limit is None
        raw = await client.chat.with_raw_response.create(model="reka-flash", messages=MSGS)
        limit = client.rate_limit
    assert limit is not None
    assert (limit.limit, limit.remaining) == (100, 99)
    assert limit.reset is not None
    assert raw.headers["x-ratelimit-remaining"] == "99"


@row("`response.model_dump()`, `.to_dict()`, `.to_json()`")
async def _to_dict(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    async with AsyncClient(API_KEY, server.base_url) as client:
        response = await client.chat.create(model="reka-flash", messages=MSGS)
        models = await client.models.list()
    assert response.to_dict()["responses"][0]["message"]["content"] == "Mock reply to: hi"
    assert json.loads(response.to_json(indent=2)) == response.to_dict()
    assert "\n  " in response.to_json(indent=2)
    listed = json.loads(json.dumps([m.to_dict() for m in models]))
    assert listed[0]["id"] == models[0].id


@row("`OPENAI_LOG=debug`")
async def _reka_log(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    code = textwrap.dedent(
        f"""
        import asyncio
        from reka_async import AsyncClient

        async def main():
            async with AsyncClient({API_KEY!r}, {server.base_url!r}) as client:
                await client.chat.create(messages=[{{"role": "user", "content": "x"}}],
                                         model="reka-flash")

        asyncio.run(main())
        """
    )
    env.setenv("REKA_LOG", "debug")
    # Not subprocess.run: the mock serves on this test's event loop, which must keep running.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
    )
    _, raw = await asyncio.wait_for(proc.communicate(), timeout=60)
    stderr = raw.decode()
    assert proc.returncode == 0, stderr
    assert "DEBUG reka_async" in stderr, stderr
    assert "POST" in stderr


class _Resolver(aiohttp.abc.AbstractResolver):
    """Every host is 127.0.0.1 (the mock), so the connector is seen to be the one used."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[Any]:
        import socket

        self.asked.append(host)
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


@row("`http_client=DefaultAsyncHttpxClient(proxy=..., verify=...)`")
async def _proxy(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        env.delenv(name, raising=False)
        env.delenv(name.lower(), raising=False)
    base = "http://api.reka.invalid/v1"
    async with LoopbackProxy(server.port) as proxy:
        async with AsyncClient(API_KEY, base, proxy=proxy.url, allow_insecure_http=True) as c:
            assert (await c.chat.create(model="reka-flash", messages=MSGS)).text
        env.setenv("HTTP_PROXY", proxy.url)
        async with AsyncClient(API_KEY, base, allow_insecure_http=True) as c:
            assert (await c.chat.create(model="reka-flash", messages=MSGS)).text
        assert [t for _, t, _ in proxy.seen] == [f"{base}/chat"] * 2
        env.setenv("NO_PROXY", "api.reka.invalid")
        resolver = _Resolver()
        url = f"http://api.reka.invalid:{server.port}/v1"
        async with AsyncClient(
            API_KEY,
            url,
            allow_insecure_http=True,
            connector_factory=lambda: aiohttp.TCPConnector(resolver=resolver),
        ) as c:
            assert (await c.chat.create(model="reka-flash", messages=MSGS)).text
        assert len(proxy.seen) == 2  # NO_PROXY: straight to the host, through our connector
        assert resolver.asked == ["api.reka.invalid"]
    with pytest.raises(ValueError, match="ssl"):
        AsyncClient(API_KEY, ssl=str(tmp / "missing-ca.pem"))


@row('httpx `event_hooks={"request": [...], "response": [...]}`')
async def _hooks(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    async with AsyncClient(
        API_KEY,
        server.base_url,
        retry_policy=FAST_POLICY,
        on_request=seen.append,
        on_response=seen.append,
        on_retry=seen.append,
    ) as client:
        server.inject("500")
        await client.chat.create(model="reka-flash", messages=MSGS)
    kinds = [type(event).__name__ for event in seen]
    assert kinds == ["RequestEvent", "ResponseEvent", "RetryEvent", "RequestEvent", "ResponseEvent"]
    assert seen[-1].status_code == 200


@row("`ChatCompletionMessageParam`, `ChatCompletionToolParam` (`openai.types`)")
async def _param_types(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    message: reka_async.types.UserMessageParam = {"role": "user", "content": "hi"}
    tool: reka_async.types.ToolParam = {"name": "f", "parameters": {"type": "object"}}
    function: reka_async.types.FunctionToolParam = {"type": "function", "function": {"name": "g"}}
    call: reka_async.types.ToolCallParam = {"id": "c", "name": "f", "parameters": {}}
    history: list[reka_async.types.MessageParam] = [
        message,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool_output", "content": [{"tool_call_id": "c", "output": "ok"}]},
    ]
    async with AsyncClient(API_KEY, server.base_url) as client:
        response = await client.chat.create(
            model="reka-flash", messages=history, tools=[tool, function]
        )
    assert response.text


@row("`client.beta.chat.completions.run_tools(...)`, anthropic's `tool_runner`")
async def _run_tools(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    called: list[str] = []

    def get_weather(city: str) -> str:
        """The weather in a city."""
        called.append(city)
        return "-3 C"

    async with AsyncClient(API_KEY, server.base_url) as client:
        run = await client.chat.run_tools(
            model="reka-flash",
            messages=[{"role": "user", "content": "weather? [[tool:get_weather]]"}],
            tools=[get_weather],
            max_rounds=8,
        )
    assert len(called) == 1
    assert "-3 C" in run.text


@row('`{"type": "image_url", "image_url": {"url": "data:..."}}` by hand')
async def _media(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    parts = []
    for cls, name in (
        (reka_async.ImagePart, "cat.png"),
        (reka_async.AudioPart, "a.wav"),
        (reka_async.VideoPart, "v.mp4"),
        (reka_async.PdfPart, "d.pdf"),
    ):
        (tmp / name).write_bytes(b"\x89PNG\r\n\x1a\n" if name.endswith("png") else b"data")
        parts.append(cls.from_file(tmp / name))
    assert parts[0].image_url.startswith("data:image/png;base64,")  # type: ignore[attr-defined]
    async with AsyncClient(API_KEY, server.base_url) as client:
        await client.chat.create(
            model="reka-flash",
            messages=[{"role": "user", "content": [*parts, {"type": "text", "text": "what?"}]}],
        )
    sent = server.requests[-1].body["messages"][0]["content"]
    assert [p["type"] for p in sent] == ["image_url", "audio_url", "video_url", "pdf_url", "text"]


@row("`openai.RateLimitError`, `APIStatusError`, `APIConnectionError`, `APITimeoutError`")
async def _errors(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    assert issubclass(reka_async.RateLimitError, reka_async.APIStatusError)
    assert issubclass(reka_async.APITimeoutError, reka_async.APIConnectionError)
    async with AsyncClient(API_KEY, server.base_url, max_retries=0) as client:
        server.inject("rate_limit")
        with pytest.raises(reka_async.RateLimitError) as info:
            await client.chat.create(model="reka-flash", messages=MSGS)
    error = info.value
    assert error.status_code == 429
    assert error.request_id
    assert error.body is not None
    async with AsyncClient(API_KEY, "http://127.0.0.1:9/v1", max_retries=0) as client:
        with pytest.raises(reka_async.APIConnectionError):
            await client.chat.create(model="reka-flash", messages=MSGS)


@row("the Batch API")
async def _batch(server: MockRekaServer, tmp: Path, env: pytest.MonkeyPatch) -> None:
    prompts = [f"p{i}" for i in range(5)]
    async with AsyncClient(API_KEY, server.base_url) as client:
        finished = [r async for r in reka_async.BatchRunner(client, concurrency=32).stream(prompts)]
    assert sorted(r.index for r in finished) == list(range(5))
    assert all(r.ok for r in finished)

    def blocking() -> list[reka_async.BatchResult]:
        # The sync client from plain code, against a server of its own thread (this test's
        # event loop must not be blocked while it serves).
        with (
            MockRekaServer.in_thread(api_key=API_KEY) as own,
            Client(API_KEY, own.base_url) as sync,
        ):
            return sync.batch(prompts, concurrency=32)

    results = await asyncio.to_thread(blocking)
    assert [r.response.text for r in results if r.response] == [
        f"Mock reply to: {p}" for p in prompts
    ]


def test_every_row_has_a_check() -> None:
    assert table_rows() == list(CHECKS)


@pytest.mark.parametrize("first_cell", list(CHECKS))
async def test_the_row_is_true(
    first_cell: str, server: MockRekaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logging.getLogger("reka_async")  # the REKA_LOG row runs in a subprocess: nothing global
    await CHECKS[first_cell](server, tmp_path, monkeypatch)
