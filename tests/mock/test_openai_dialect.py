"""The mock's OpenAI-compatible dialect, ``/v1/chat/completions``, proved with the ``openai``
package (sync over `MockRekaServer.in_thread`, async on the test's loop) and raw requests."""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import aiohttp
import openai
import pytest
from pydantic import BaseModel, Field

from reka_async.testing import MockRekaServer

KEY = "test-key"
MODEL = "reka-flash"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city", "unit"],
        },
    },
}


def ask(text: str) -> Any:
    return [{"role": "user", "content": text}]


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    async with MockRekaServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture
async def aclient(server: MockRekaServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as c:
        yield c


@pytest.fixture
def sync_pair() -> Iterator[tuple[MockRekaServer, openai.OpenAI]]:
    with (
        MockRekaServer.in_thread(api_key=KEY) as server,
        openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        yield server, client


async def post(
    server: MockRekaServer, body: Any, headers: dict[str, str] | None = None, path: str = ""
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {KEY}"} if headers is None else headers
    url = f"{server.base_url}{path or '/chat/completions'}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as r,
    ):
        return r.status, await r.read()


# --------------------------------------------------------------------------- plain and stream


def test_sync_client_gets_the_contract_shape(
    sync_pair: tuple[MockRekaServer, openai.OpenAI],
) -> None:
    server, client = sync_pair
    completion = client.chat.completions.create(model=MODEL, messages=ask("hello world"))
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    (choice,) = completion.choices
    assert (choice.index, choice.finish_reason) == (0, "stop")
    assert choice.message.role == "assistant"
    assert choice.message.content == "Mock reply to: hello world"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 5)
    assert completion.usage.total_tokens == 7
    assert server.requests[-1].path == "/v1/chat/completions"
    assert server.requests[-1].headers["Authorization"] == f"Bearer {KEY}"


async def test_reply_text_is_the_native_reply_for_the_same_conversation(
    server: MockRekaServer, aclient: openai.AsyncOpenAI
) -> None:
    completion = await aclient.chat.completions.create(model=MODEL, messages=ask("same words"))
    status, raw = await post(
        server, {"model": MODEL, "messages": ask("same words")}, {"X-Api-Key": KEY}, "/chat"
    )
    assert status == 200
    native = json.loads(raw)["responses"][0]["message"]["content"]
    assert completion.choices[0].message.content == native == "Mock reply to: same words"


async def test_stream_deltas_join_to_the_plain_reply_and_usage_comes_last(
    aclient: openai.AsyncOpenAI,
) -> None:
    plain = await aclient.chat.completions.create(model=MODEL, messages=ask("one two three"))
    stream = await aclient.chat.completions.create(
        model=MODEL, messages=ask("one two three"), stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    *content, usage_chunk = chunks
    assert content[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in content[1:])
    text = "".join(c.choices[0].delta.content or "" for c in content)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in content] == [None] * (len(content) - 1) + ["stop"]
    assert all(c.usage is None for c in content)
    assert usage_chunk.choices == []
    assert usage_chunk.usage == plain.usage


def test_sync_stream_ends_with_done(sync_pair: tuple[MockRekaServer, openai.OpenAI]) -> None:
    _, client = sync_pair
    with client.chat.completions.create(model=MODEL, messages=ask("a b"), stream=True) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Mock reply to: a b"


async def test_raw_stream_ends_with_a_done_line(server: MockRekaServer) -> None:
    _, raw = await post(server, {"model": MODEL, "messages": ask("x"), "stream": True})
    assert raw.endswith(b"data: [DONE]\n\n")


async def test_x_api_key_is_accepted_too(server: MockRekaServer) -> None:
    status, _ = await post(server, {"model": MODEL, "messages": ask("x")}, {"X-Api-Key": KEY})
    assert status == 200


# --------------------------------------------------------------------------- tool calls


async def test_required_tool_choice_returns_a_call_with_json_arguments(
    aclient: openai.AsyncOpenAI,
) -> None:
    completion = await aclient.chat.completions.create(
        model=MODEL, messages=ask("Weather in Oslo?"), tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock", "unit": "C"}


async def test_named_tool_choice_and_directives_pick_the_tool(
    aclient: openai.AsyncOpenAI,
) -> None:
    other: Any = {"type": "function", "function": {"name": "noop", "parameters": {}}}
    named = await aclient.chat.completions.create(
        model=MODEL,
        messages=ask("hi"),
        tools=[other, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    directed = await aclient.chat.completions.create(
        model=MODEL, messages=ask("[[tool:noop]] [[tool:get_weather]]"), tools=[other, WEATHER_TOOL]
    )
    none = await aclient.chat.completions.create(
        model=MODEL, messages=ask("[[tool:noop]]"), tools=[other], tool_choice="none"
    )
    assert [c.function.name for c in named.choices[0].message.tool_calls or []] == ["get_weather"]
    names = [c.function.name for c in directed.choices[0].message.tool_calls or []]
    assert names == ["noop", "get_weather"]
    assert none.choices[0].message.tool_calls is None


async def test_streamed_tool_call_arguments_arrive_in_fragments(
    aclient: openai.AsyncOpenAI,
) -> None:
    stream = await aclient.chat.completions.create(
        model=MODEL,
        messages=ask("[[tool:get_weather]] [[tool:get_weather]]"),
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    fragments = 0
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for piece in choice.delta.tool_calls or []:
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += piece.id or ""
                if piece.function is not None:
                    call["name"] += piece.function.name or ""
                    if piece.function.arguments:
                        fragments += 1
                        call["arguments"] += piece.function.arguments
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert fragments > len(calls)
    assert calls[0]["id"] != calls[1]["id"]
    for call in calls.values():
        assert call["name"] == "get_weather"
        assert json.loads(call["arguments"]) == {"city": "mock", "unit": "C"}


async def test_tool_results_go_back_as_tool_messages(aclient: openai.AsyncOpenAI) -> None:
    first = await aclient.chat.completions.create(
        model=MODEL, messages=ask("Oslo?"), tools=[WEATHER_TOOL], tool_choice="required"
    )
    (call,) = first.choices[0].message.tool_calls or []
    messages: Any = [
        *ask("Oslo?"),
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "-3 C"},
    ]
    second = await aclient.chat.completions.create(model=MODEL, messages=messages)
    assert second.choices[0].message.content == "Mock reply to: -3 C"


async def test_reject_tool_role_answers_500() -> None:
    messages: Any = [*ask("x"), {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    async with (
        MockRekaServer(api_key=KEY, reject_tool_role=True) as server,
        openai.AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model=MODEL, messages=messages)
        ok = await client.chat.completions.create(model=MODEL, messages=ask("no tools"))
    assert ok.choices[0].message.content == "Mock reply to: no tools"


# --------------------------------------------------------------------------- research


async def test_research_model_answers_with_reasoning_steps_and_citations(
    aclient: openai.AsyncOpenAI,
) -> None:
    completion = await aclient.chat.completions.create(
        model="reka-flash-research", messages=ask("tallest tree")
    )
    message = completion.choices[0].message
    extra = message.model_extra or {}
    assert "tallest tree" in extra["reasoning_content"]
    call_step, tool_step = extra["reasoning_steps"]
    (search,) = call_step["tool_calls"]
    assert (search["name"], search["args"]) == ("search_web", {"query": "tallest tree"})
    assert tool_step["role"] == "tool"
    assert tool_step["tool_call_id"] == search["id"]
    assert tool_step["content"]["tool_name"] == "search_web"
    results = tool_step["content"]["tool_output"]
    assert message.annotations is not None
    assert len(message.annotations) == len(results) == 2
    content = message.content or ""
    for annotation, result in zip(message.annotations, results, strict=True):
        cite = annotation.url_citation
        assert annotation.type == "url_citation"
        assert content[cite.start_index : cite.end_index] == cite.title == result["title"]
        assert cite.url == result["url"]


async def test_research_answers_are_deterministic(aclient: openai.AsyncOpenAI) -> None:
    answers = [
        await aclient.chat.completions.create(model="reka-flash-research", messages=ask("q"))
        for _ in range(2)
    ]
    dumps = [a.choices[0].message.model_dump(exclude={"reasoning_steps"}) for a in answers]
    assert dumps[0] == dumps[1]


async def test_research_domains_and_disabled_search_are_respected(
    aclient: openai.AsyncOpenAI,
) -> None:
    def urls(completion: Any) -> list[str]:
        return [a.url_citation.url for a in completion.choices[0].message.annotations or []]

    allowed = await aclient.chat.completions.create(
        model=MODEL,
        messages=ask("q"),
        extra_body={"research": {"web_search": {"allowed_domains": ["reka.ai"]}}},
    )
    blocked = await aclient.chat.completions.create(
        model="reka-flash-research",
        messages=ask("q"),
        extra_body={"research": {"web_search": {"blocked_domains": ["wikipedia.org"]}}},
    )
    disabled = await aclient.chat.completions.create(
        model="reka-flash-research",
        messages=ask("q"),
        extra_body={"research": {"web_search": {"enabled": False}}},
    )
    assert urls(allowed)
    assert all(u.startswith("https://reka.ai/") for u in urls(allowed))
    assert urls(blocked)
    assert not any("wikipedia.org" in u for u in urls(blocked))
    message = disabled.choices[0].message
    assert (message.model_extra or {})["reasoning_steps"] == []
    assert message.annotations == []
    assert message.content == "Mock reply to: q"


async def test_research_stream_sends_reasoning_then_steps_then_content(
    aclient: openai.AsyncOpenAI,
) -> None:
    plain = await aclient.chat.completions.create(model="reka-flash-research", messages=ask("q"))
    stream = await aclient.chat.completions.create(
        model="reka-flash-research", messages=ask("q"), stream=True
    )
    kinds: list[str] = []
    reasoning = text = ""
    steps: list[Any] = []
    annotations: list[Any] = []
    async for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta.model_extra or {}
            if "reasoning_content" in delta:
                kinds.append("reasoning")
                reasoning += delta["reasoning_content"]
            if "reasoning_steps" in delta:
                kinds.append("steps")
                steps += delta["reasoning_steps"]
            if choice.delta.content:
                kinds.append("content")
                text += choice.delta.content
            if "annotations" in delta:
                kinds.append("annotations")
                annotations += delta["annotations"]
    message = plain.choices[0].message
    assert kinds.index("steps") == kinds.count("reasoning")
    assert kinds[-1] == "annotations"
    assert kinds.count("steps") == kinds.count("annotations") == 1
    assert reasoning == (message.model_extra or {})["reasoning_content"]
    assert text == message.content
    assert [a["url_citation"] for a in annotations] == [
        a.url_citation.model_dump() for a in message.annotations or []
    ]
    assert len(steps) == 2


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        (
            {
                "research": {
                    "web_search": {"allowed_domains": ["a.io"], "blocked_domains": ["b.io"]}
                }
            },
            ["body", "research", "web_search"],
        ),
        (
            {"research": {"parallel_thinking": {"mode": "high"}}, "stream": True},
            ["body", "research", "parallel_thinking"],
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "bad name!"}}},
            ["body", "response_format", "json_schema", "name"],
        ),
        ({"temperature": "hot"}, ["body", "temperature"]),
        ({"tool_choice": "tool"}, ["body", "tool_choice"]),
        ({"tools": [{"type": "function"}]}, ["body", "tools", 0, "function"]),
        ({"messages": [{"role": "tool_output", "content": "x"}]}, ["body", "messages", 0, "role"]),
    ],
)
async def test_invalid_requests_are_422_with_a_detail_list(
    server: MockRekaServer, extra: dict[str, Any], loc: list[Any]
) -> None:
    status, raw = await post(server, {"model": MODEL, "messages": ask("x"), **extra})
    assert status == 422
    detail = json.loads(raw)["detail"]
    assert loc in [item["loc"] for item in detail]


async def test_parallel_thinking_without_streaming_is_fine(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(
        model="reka-flash-research",
        messages=ask("q"),
        extra_body={"research": {"parallel_thinking": {"mode": "low"}}},
    )
    assert "low" in (completion.choices[0].message.model_extra or {})["reasoning_content"]


async def test_research_model_on_the_native_endpoint_is_400(server: MockRekaServer) -> None:
    body = {"model": "reka-flash-research", "messages": ask("x")}
    status, raw = await post(server, body, {"X-Api-Key": KEY}, "/chat")
    assert status == 400
    assert "/v1/chat/completions" in json.loads(raw)["error"]["message"]


# --------------------------------------------------------------------------- structured outputs


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    city: str
    zip_code: str | None


class Person(BaseModel):
    name: str
    age: int = Field(ge=18, le=120)
    kind: Literal["staff", "guest"]
    color: Color
    tags: list[str]
    home: Address
    past: list[Address]
    nickname: str | None = None


def _parse(client: openai.OpenAI | openai.AsyncOpenAI) -> Any:
    completions = client.chat.completions
    return getattr(completions, "parse", None) or client.beta.chat.completions.parse


async def test_parse_returns_an_instance_of_the_pydantic_model(
    aclient: openai.AsyncOpenAI, server: MockRekaServer
) -> None:
    completion = await _parse(aclient)(model=MODEL, messages=ask("who?"), response_format=Person)
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)
    assert 18 <= person.age <= 120
    assert person.kind in ("staff", "guest")
    assert isinstance(person.color, Color)
    assert isinstance(person.home, Address)
    sent = server.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Person"


def test_sync_parse_is_deterministic(sync_pair: tuple[MockRekaServer, openai.OpenAI]) -> None:
    _, client = sync_pair
    parse = _parse(client)
    first, second = (
        parse(model=MODEL, messages=ask("who?"), response_format=Person).choices[0].message.parsed
        for _ in range(2)
    )
    assert first == second


async def test_json_object_format_answers_json(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(
        model=MODEL, messages=ask("hi"), response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {
        "answer": "Mock reply to: hi"
    }


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fault", ["credits", "credits_p001", "credits_enough", "rate_limit"])
async def test_429s_raise_rate_limit_error(aclient: openai.AsyncOpenAI, fault: str) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        await aclient.chat.completions.create(model=MODEL, messages=ask(f"[[fault:{fault}]]"))
    assert info.value.status_code == 429
    assert info.value.request_id is not None


async def test_credits_wordings_are_the_contracts(server: MockRekaServer) -> None:
    bodies = {}
    for fault in ("credits_p001", "credits_enough"):
        status, raw = await post(server, {"model": MODEL, "messages": ask(f"[[fault:{fault}]]")})
        assert status == 429
        bodies[fault] = json.loads(raw)
    assert bodies["credits_p001"] == {"detail": "P001: Insufficient Balance"}
    assert "does not have enough credits" in bodies["credits_enough"]["error"]["message"]


@pytest.mark.parametrize(
    ("messages", "model", "error"),
    [
        (ask("[[fault:400]]"), MODEL, openai.BadRequestError),
        (ask("[[fault:403]]"), MODEL, openai.PermissionDeniedError),
        (ask("x"), "reka-giant", openai.NotFoundError),
        (ask("[[fault:409]]"), MODEL, openai.ConflictError),
        (ask("[[fault:422]]"), MODEL, openai.UnprocessableEntityError),
        (ask("[[fault:503]]"), MODEL, openai.InternalServerError),
        (ask("[[fault:html]]"), MODEL, openai.InternalServerError),
        (ask("[[fault:drop]]"), MODEL, openai.APIConnectionError),
    ],
)
async def test_errors_map_to_openai_exceptions(
    aclient: openai.AsyncOpenAI, messages: Any, model: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await aclient.chat.completions.create(model=model, messages=messages)


async def test_wrong_key_is_an_authentication_error(server: MockRekaServer) -> None:
    async with openai.AsyncOpenAI(api_key="wrong", base_url=server.base_url, max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model=MODEL, messages=ask("x"))


async def test_error_event_in_a_stream_raises_api_error(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(
        model=MODEL, messages=ask("a b c d [[fault:error_event]]"), stream=True
    )
    with pytest.raises(openai.APIError, match="Stream failed"):
        async for _ in stream:
            pass


async def test_rate_limit_headers_and_request_id_on_completions(server: MockRekaServer) -> None:
    url = f"{server.base_url}/chat/completions"
    body = {"model": MODEL, "messages": ask("x")}
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as r,
    ):
        assert r.status == 200
        assert r.headers["x-request-id"].startswith("req_")
        assert int(r.headers["x-ratelimit-remaining"]) > 0
        assert float(r.headers["x-ratelimit-reset"]) > 0


async def test_latency_directive_and_inject_work_on_completions(
    server: MockRekaServer, aclient: openai.AsyncOpenAI
) -> None:
    server.inject("502")
    with pytest.raises(openai.InternalServerError):
        await aclient.chat.completions.create(model=MODEL, messages=ask("x [[latency_ms:1]]"))
    assert [r.fault for r in server.requests] == ["502"]
