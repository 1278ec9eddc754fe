"""Hostile JSON from the server (nested far deeper than any parser recurses) is a typed error,
never a ``RecursionError``: in an error body, a stream event, a ``chat.parse`` answer, with
either JSON backend."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest
from _seam import answers, client_over

import reka_async
from reka_async import APIResponseValidationError, APIStatusError, StreamError
from reka_async._wire import _json
from reka_async.testing import MockResponse, sse

DEEP = "[" * 100_000 + "]" * 100_000
MESSAGES: Any = [{"role": "user", "content": "hi"}]
JSON = {"content-type": "application/json"}


@pytest.fixture(params=["backend", "stdlib"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The installed backend, and the standard library's (``_json`` loaded without orjson)
    in every module that parses a body."""
    if request.param == "stdlib":
        monkeypatch.setitem(sys.modules, "orjson", None)
        spec = importlib.util.spec_from_file_location("_json_stdlib", _json.__file__)
        assert spec is not None
        assert spec.loader is not None
        stdlib: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(stdlib)
        for name in ("_chat", "_stream", "_wire.native", "_wire.openai"):
            module = sys.modules[f"reka_async.{name}"]
            monkeypatch.setattr(module, "loads", stdlib.loads)
        monkeypatch.setattr(reka_async._stream, "too_deep", stdlib.too_deep)
    return str(request.param)


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_too_deep_error_body_is_a_status_error(api: Any, backend: str) -> None:
    transport = answers(MockResponse(400, content=DEEP, headers=JSON))
    async with client_over(transport, api=api, max_retries=0) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.chat.create(model="m", messages=MESSAGES)
    assert caught.value.status_code == 400
    assert caught.value.body == DEEP  # kept as text, as any body that is not JSON


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_too_deep_stream_event_is_a_stream_error(api: Any, backend: str) -> None:
    first = (
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}],
        }
        if api == "openai"
        else {"id": "c", "model": "m", "responses": [{"chunk": {"content": "Hel"}}]}
    )
    transport = answers(MockResponse(chunks=sse(first, DEEP)))
    async with client_over(transport, api=api, max_retries=0) as client:
        stream = client.chat.create_stream(model="m", messages=MESSAGES)
        with pytest.raises(StreamError, match="nested too deep") as caught:
            await _drain(stream)
    assert caught.value.partial_text == "Hel"


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_too_deep_parse_answer_is_a_validation_error(api: Any, backend: str) -> None:
    # Structured outputs go to the OpenAI-compatible endpoint in either dialect.
    message = {"role": "assistant", "content": DEEP}
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }
    async with client_over(answers(MockResponse(json=body)), api=api, max_retries=0) as client:
        with pytest.raises(APIResponseValidationError, match="not JSON"):
            await client.chat.parse(
                model="m", messages=MESSAGES, response_format={"type": "object"}
            )


async def _drain(stream: Any) -> None:
    async with stream:
        async for _ in stream:
            pass
