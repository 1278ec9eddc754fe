"""Both dialects against the mock over real sockets: the same typed surface, the routing rules,
Research, structured outputs, tool calls, usage, and the sync client and batches on each."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from _seam import answers, client_over

from reka_async import (
    APIResponseValidationError,
    AsyncClient,
    BatchRunner,
    Client,
    InvalidRequestError,
    Research,
    RetryPolicy,
    Tool,
    WebSearch,
)
from reka_async.testing import MockRekaServer, MockResponse

KEY = "dialect-key"
FAST = RetryPolicy(base=0.001, cap=0.01)
ASK = [{"role": "user", "content": "What is the fifth prime number?"}]
WEATHER = Tool(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

pytestmark = pytest.mark.parametrize("api", ["native", "openai"])


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key=KEY) as srv:
        yield srv


def paths(server: MockRekaServer) -> list[str]:
    return [r.path for r in server.requests]


ENDPOINT = {"native": "/v1/chat", "openai": "/v1/chat/completions"}


async def test_create_gives_the_same_typed_answer(server: MockRekaServer, api: str) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        response = await client.chat.create(messages=ASK, model="reka-flash", max_tokens=64)
    assert response.text == "Mock reply to: What is the fifth prime number?"
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert paths(server) == [ENDPOINT[api]]
    sent = server.requests[0]
    if api == "openai":
        assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body["max_tokens"] == 64


async def test_a_call_overrides_the_client_dialect(server: MockRekaServer, api: str) -> None:
    other = "native" if api == "openai" else "openai"
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        response = await client.chat.create(messages=ASK, model="reka-flash", api=other)  # type: ignore[typeddict-item]
    assert response.text.startswith("Mock reply to:")
    assert paths(server) == [ENDPOINT[other]]


async def test_a_stream_assembles_the_same_text(server: MockRekaServer, api: str) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        plain = await client.chat.create(messages=ASK, model="reka-flash")
        async with client.chat.create_stream(messages=ASK, model="reka-flash") as stream:
            deltas = [chunk.delta async for chunk in stream]
            final = await stream.final_response()
    assert "".join(deltas) == plain.text
    assert stream.text == plain.text
    assert final.text == plain.text
    assert final.usage.output_tokens > 0
    assert len(deltas) > 1


async def test_research_goes_to_the_compatible_endpoint(server: MockRekaServer, api: str) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        response = await client.chat.create(
            messages=[{"role": "user", "content": "Latest Python release?"}],
            model="reka-flash-research",
            research=Research(web_search=WebSearch(max_uses=2)),
        )
    message = response.responses[0].message
    assert paths(server) == ["/v1/chat/completions"]
    assert message.reasoning_steps
    assert message.annotations
    assert all(a.url_citation is not None for a in message.annotations)


async def test_research_on_an_explicit_native_call_is_refused(
    server: MockRekaServer, api: str
) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="api='native'"):
            await client.chat.create(
                messages=ASK, model="reka-flash", research={"web_search": {}}, api="native"
            )
    assert server.requests == []


@attrs.frozen
class City:
    name: str
    country: str
    population: int
    landmarks: list[str]
    mayor: str | None = None


async def test_parse_returns_an_instance_of_the_class(server: MockRekaServer, api: str) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        result = await client.chat.parse(messages=ASK, model="reka-flash", response_format=City)
    assert isinstance(result.parsed, City)
    assert json.loads(result.text)["name"] == result.parsed.name
    sent = server.requests[0].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "City"
    assert set(sent["json_schema"]["schema"]["required"]) == {
        "name",
        "country",
        "population",
        "landmarks",
        "mayor",
    }


async def test_parse_with_a_dict_schema_returns_json(server: MockRekaServer, api: str) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        result = await client.chat.parse(messages=ASK, model="reka-flash", response_format=schema)
    assert isinstance(result.parsed, dict)
    assert isinstance(result.parsed["n"], int)


async def test_a_tool_call_round_trip(server: MockRekaServer, api: str) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        first = await client.chat.create(
            messages=messages, model="reka-flash", tools=[WEATHER], tool_choice="tool"
        )
        calls = first.tool_calls
        assert calls
        assert calls[0].name == "get_weather"
        assert isinstance(calls[0].parameters, dict)
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "parameters": c.parameters} for c in calls
                ],
            }
        )
        messages.append(
            {"role": "tool_output", "content": [{"tool_call_id": calls[0].id, "output": "21 C"}]}
        )
        final = await client.chat.create(messages=messages, model="reka-flash", tools=[WEATHER])
    assert final.finish_reason == "stop"
    assert final.text


async def test_a_streamed_tool_call_is_assembled(server: MockRekaServer, api: str) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        stream = client.chat.create_stream(
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            model="reka-flash",
            tools=[WEATHER],
            tool_choice="required",
        )
        final = await stream.final_response()
    assert final.tool_calls
    assert final.tool_calls[0].name == "get_weather"
    assert isinstance(final.tool_calls[0].parameters, dict)


async def test_batches_follow_the_client_and_count_tokens(server: MockRekaServer, api: str) -> None:
    async with AsyncClient(KEY, server.base_url, api=api, retry_policy=FAST) as client:  # type: ignore[arg-type]
        runner = BatchRunner(client, concurrency=4, max_tokens=32)
        results = await runner.run([f"prompt {i}" for i in range(10)])
    assert all(r.ok for r in results)
    assert runner.stats.input_tokens > 0
    assert runner.stats.output_tokens > 0
    assert set(paths(server)) == {ENDPOINT[api]}


def test_the_sync_client_follows_its_dialect(api: str) -> None:
    with MockRekaServer.in_thread(api_key=KEY) as srv, Client(KEY, srv.base_url, api=api) as c:  # type: ignore[arg-type]
        response = c.chat.create(messages=ASK, model="reka-flash")
        with c.chat.create_stream(messages=ASK, model="reka-flash") as stream:
            text = "".join(chunk.delta for chunk in stream)
        path = srv.requests[-1].path
    assert text == response.text
    assert path == ENDPOINT[api]


async def test_models_list_parses_on_any_dialect(server: MockRekaServer, api: str) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        models = await client.models.list()
    assert "reka-flash" in {m.id for m in models}


async def test_openai_shaped_inputs_are_accepted(server: MockRekaServer, api: str) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
                {"type": "text", "text": "What is this?"},
            ],
        }
    ]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        response = await client.chat.create(messages=messages, model="reka-flash", tools=[tool])
    assert response.text
    sent = server.requests[0].body
    part = sent["messages"][0]["content"][0]
    if api == "native":
        assert part == {"type": "image_url", "image_url": "https://example.test/cat.png"}
        assert sent["tools"] == [{"name": "f", "parameters": {"type": "object"}}]
    else:
        assert part == {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}}
        assert sent["tools"][0]["type"] == "function"
        assert sent["tools"][0]["function"]["name"] == "f"


async def test_a_research_stream_carries_reasoning_and_citations(
    server: MockRekaServer, api: str
) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        plain = await client.chat.create(messages=ASK, model="reka-flash-research")
        stream = client.chat.create_stream(messages=ASK, model="reka-flash-research")
        final = await stream.final_response()
    streamed = final.responses[0].message
    assert streamed.content == plain.text
    assert streamed.reasoning_content == plain.responses[0].message.reasoning_content
    assert streamed.reasoning_content
    assert streamed.annotations == plain.responses[0].message.annotations


async def test_parallel_thinking_on_a_stream_is_refused_before_sending(
    server: MockRekaServer, api: str
) -> None:
    async with AsyncClient(KEY, server.base_url, api=api) as client:  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="parallel_thinking"):
            client.chat.create_stream(
                messages=ASK,
                model="reka-flash-research",
                research={"parallel_thinking": {"mode": "high"}},
            )
    assert server.requests == []


async def test_parse_raises_when_the_answer_does_not_fit(api: str) -> None:
    # A server whose structured answer breaks the schema: the error says so and keeps the text.
    message = {"role": "assistant", "content": '{"name": 1}'}
    answer = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "reka-flash",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }
    # Structured outputs go to the OpenAI-compatible endpoint in either dialect.
    url = "https://api.example.test/v1/chat/completions"
    transport = answers(MockResponse(json=answer), url=url)
    async with client_over(
        transport, KEY, base_url="https://api.example.test/v1", api=api
    ) as client:
        with pytest.raises(APIResponseValidationError, match="does not fit City") as info:
            await client.chat.parse(messages=ASK, model="reka-flash", response_format=City)
    assert info.value.body == '{"name": 1}'
    assert len(transport.requests) == 1
