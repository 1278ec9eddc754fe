"""The OpenAI-compatible dialect on the wire: its typed options, the request conversions both
ways, and the decoders of its responses and stream events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reka_async import (
    Annotation,
    ChatResponse,
    ImagePart,
    InvalidRequestError,
    JsonSchemaFormat,
    Message,
    MessageResponse,
    ParallelThinking,
    ReasoningStep,
    Research,
    Tool,
    ToolCall,
    UrlCitation,
    Usage,
    UserLocation,
    WebSearch,
)
from reka_async._research import research_body, response_format_body
from reka_async._wire import (
    load_completion,
    parse_chunk_event,
    parse_completion,
    parse_completion_chunk,
    request_body,
    to_openai_body,
)
from reka_async._wire.events import ChoicePiece, StreamEvent, ToolCallPiece

USER = {"role": "user", "content": "Hi"}


def body(messages: Any = None, stream: bool = False, **params: Any) -> dict[str, Any]:
    return request_body(
        model="reka-flash",
        messages=[USER] if messages is None else messages,
        params=params,
        stream=stream,
    )


# --- research= --------------------------------------------------------------------------------


def test_research_models_and_dicts_give_the_same_wire_dict() -> None:
    model = Research(
        web_search=WebSearch(
            max_uses=3,
            allowed_domains=["reka.ai"],
            user_location=UserLocation(city="Paris", country="FR"),
        ),
        parallel_thinking=ParallelThinking(mode="high"),
    )
    plain = {
        "web_search": {
            "enabled": True,
            "max_uses": 3,
            "allowed_domains": ["reka.ai"],
            "user_location": {"city": "Paris", "country": "FR"},
        },
        "parallel_thinking": {"mode": "high"},
    }
    expected = {
        "web_search": {
            "enabled": True,
            "max_uses": 3,
            "allowed_domains": ["reka.ai"],
            "user_location": {
                "type": "approximate",
                "approximate": {"city": "Paris", "country": "FR"},
            },
        },
        "parallel_thinking": {"mode": "high"},
    }
    assert research_body(model, stream=False) == expected
    assert research_body(plain, stream=False) == expected


def test_user_location_in_the_wire_form_is_accepted() -> None:
    wire = {"type": "approximate", "approximate": {"timezone": "Europe/Paris"}}
    out = research_body({"web_search": {"user_location": wire}}, stream=False)
    assert out["web_search"]["user_location"] == wire


def test_research_omits_what_is_not_given() -> None:
    assert research_body(Research(), stream=True) == {}
    assert research_body({"web_search": WebSearch(enabled=False)}, stream=True) == {
        "web_search": {"enabled": False}
    }


def test_parallel_thinking_mode_none_is_allowed_with_streaming() -> None:
    out = research_body({"parallel_thinking": {"mode": "none"}}, stream=True)
    assert out == {"parallel_thinking": {"mode": "none"}}


@pytest.mark.parametrize(
    ("value", "stream", "field", "fix"),
    [
        (
            {"web_search": {"allowed_domains": ["a.com"], "blocked_domains": ["b.com"]}},
            False,
            "research.web_search.allowed_domains",
            "not both",
        ),
        ({"parallel_thinking": {"mode": "low"}}, True, "research.parallel_thinking", "streaming"),
        ({"parallel_thinking": {"mode": "max"}}, False, "research.parallel_thinking.mode", "'low'"),
        ({"parallel_thinking": {}}, False, "research.parallel_thinking.mode", "'high'"),
        ({"web_search": {"max_uses": 0}}, False, "research.web_search.max_uses", "at least 1"),
        ({"web_search": {"max_uses": "3"}}, False, "research.web_search.max_uses", "integer"),
        ({"web_search": {"max_uses": True}}, False, "research.web_search.max_uses", "integer"),
        ({"web_search": {"enabled": "yes"}}, False, "research.web_search.enabled", "a bool"),
        ({"web_search": {"allowed_domains": "a.com"}}, False, "allowed_domains", "a list"),
        ({"web_search": {"blocked_domains": [""]}}, False, "blocked_domains", "non-empty"),
        ({"web_search": {"user_location": {"city": 1}}}, False, "user_location.city", "string"),
        ({"web_search": {"user_location": {"zip": "1"}}}, False, "user_location.zip", "unknown"),
        (
            {"web_search": {"user_location": {"type": "exact", "approximate": {}}}},
            False,
            "research.web_search.user_location",
            "approximate",
        ),
        ({"web_search": {"max_use": 3}}, False, "research.web_search.max_use", "unknown key"),
        ({"websearch": {}}, False, "research.websearch", "web_search"),
        ({"web_search": True}, False, "research.web_search", "WebSearch or a dict"),
        ("web", False, "research", "Research or a dict"),
    ],
)
def test_research_errors_name_the_field(value: Any, stream: bool, field: str, fix: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        research_body(value, stream=stream)
    assert field in str(info.value)
    assert fix in str(info.value)


# --- response_format= -------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}


def test_json_schema_format_becomes_the_wire_form() -> None:
    fmt = JsonSchemaFormat(name="answer-1_x", schema=SCHEMA, description="d", strict=True)
    wire = {
        "type": "json_schema",
        "json_schema": {"name": "answer-1_x", "schema": SCHEMA, "description": "d", "strict": True},
    }
    assert response_format_body(fmt) == wire
    assert response_format_body(wire) == wire


def test_json_schema_format_omits_unset_fields() -> None:
    out = response_format_body(JsonSchemaFormat(name="a", schema=SCHEMA))
    assert out == {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}


@pytest.mark.parametrize("kind", ["json_object", "text"])
def test_json_object_and_text_formats_pass_through(kind: str) -> None:
    assert response_format_body({"type": kind}) == {"type": kind}


@pytest.mark.parametrize(
    ("value", "field", "fix"),
    [
        (JsonSchemaFormat(name="has space", schema=SCHEMA), "json_schema.name", "64"),
        (JsonSchemaFormat(name="x" * 65, schema=SCHEMA), "json_schema.name", "64"),
        (JsonSchemaFormat(name="", schema=SCHEMA), "json_schema.name", "1 to 64"),
        ({"type": "json_schema", "json_schema": {"name": "a"}}, "json_schema.schema", "dict"),
        (
            {"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "strict": "no"}},
            "json_schema.strict",
            "a bool",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "description": 1}},
            "json_schema.description",
            "a string",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "extra": 1}},
            "json_schema.extra",
            "unknown key",
        ),
        ({"type": "json_schema", "json_schema": "a"}, "response_format.json_schema", "dict"),
        ({"type": "json_schema", "schema": {}}, "response_format.schema", "unknown key"),
        ({"type": "json_object", "schema": {}}, "response_format.schema", "unknown key"),
        ({"type": "yaml"}, "response_format.type", "'json_schema'"),
        ({}, "response_format.type", "'json_schema'"),
        ("json", "response_format", "JsonSchemaFormat or a dict"),
    ],
)
def test_response_format_errors_name_the_field(value: Any, field: str, fix: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        response_format_body(value)
    assert field in str(info.value)
    assert fix in str(info.value)


# --- OpenAI-shaped inputs become the canonical (native) form -----------------------------------


@pytest.mark.parametrize("kind", ["image_url", "video_url", "audio_url", "pdf_url"])
def test_openai_media_parts_become_native_parts(kind: str) -> None:
    part = {"type": kind, kind: {"url": "https://x/y", "detail": "high"}}
    out = body([{"role": "user", "content": [part, {"type": "text", "text": "what?"}]}])
    assert out["messages"][0]["content"] == [
        {"type": kind, kind: "https://x/y"},
        {"type": "text", "text": "what?"},
    ]


def test_an_openai_media_part_without_a_url_names_the_field() -> None:
    part = {"type": "image_url", "image_url": {"uri": "x"}}
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]\.content\[0\]\.image_url\.url"):
        body([{"role": "user", "content": [part]}])


def test_openai_tools_lose_their_wrapper() -> None:
    fn = {"name": "get_weather", "description": "d", "parameters": {"type": "object"}}
    out = body(tools=[{"type": "function", "function": fn}, Tool(name="other")])
    assert out["tools"] == [fn, {"name": "other"}]


@pytest.mark.parametrize(
    ("tool", "field"),
    [
        ({"type": "function", "function": "get_weather"}, r"tools\[0\]\.function"),
        ({"type": "function", "function": {"description": "d"}}, r"tools\[0\]: needs a string"),
    ],
)
def test_invalid_openai_tools_name_the_field(tool: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError, match=field):
        body(tools=[tool])


def test_tool_choice_required_is_tool() -> None:
    assert body(tool_choice="required")["tool_choice"] == "tool"
    assert body(tool_choice="tool")["tool_choice"] == "tool"


def test_openai_assistant_tool_calls_become_native_tool_calls() -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    out = body([USER, {"role": "assistant", "content": None, "tool_calls": [call]}])
    assert out["messages"][1] == {
        "role": "assistant",
        "tool_calls": [{"id": "call_1", "name": "get_weather", "parameters": {"city": "Paris"}}],
    }


@pytest.mark.parametrize("arguments", ["", {"city": "Paris"}])
def test_empty_or_object_arguments_are_accepted(arguments: Any) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    out = body([{"role": "assistant", "tool_calls": [call]}])
    expected = arguments or {}
    assert out["messages"][0]["tool_calls"][0]["parameters"] == expected


@pytest.mark.parametrize(
    ("function", "problem"),
    [
        ({"name": "f", "arguments": "{not json"}, "not valid JSON"),
        ({"name": "f", "arguments": "[1, 2]"}, "must be a JSON object"),
    ],
)
def test_bad_openai_arguments_name_the_field(function: Any, problem: str) -> None:
    call = {"id": "c", "type": "function", "function": function}
    with pytest.raises(InvalidRequestError) as info:
        body([{"role": "assistant", "tool_calls": [call]}])
    assert "messages[0].tool_calls[0].function.arguments" in str(info.value)
    assert problem in str(info.value)


def test_an_openai_tool_call_without_an_id_names_the_call() -> None:
    call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]\.tool_calls\[0\]: .*'id'"):
        body([{"role": "assistant", "tool_calls": [call]}])


def test_a_tool_message_becomes_a_tool_output_message() -> None:
    out = body([USER, {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}])
    assert out["messages"][1] == {
        "role": "tool_output",
        "content": [{"tool_call_id": "call_1", "output": "18 C"}],
    }


def test_a_tool_message_with_text_parts_is_joined() -> None:
    parts = [{"type": "text", "text": "18 "}, {"type": "text", "text": "C"}]
    out = body([{"role": "tool", "tool_call_id": "c", "content": parts}])
    assert out["messages"][0]["content"] == [{"tool_call_id": "c", "output": "18 C"}]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "tool", "content": "x"}, "messages[0].tool_call_id"),
        ({"role": "tool", "tool_call_id": "c", "content": 3}, "messages[0].content"),
        ({"role": "tool", "tool_call_id": "c"}, "messages[0].content"),
    ],
)
def test_invalid_tool_messages_name_the_field(message: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        body([message])
    assert field in str(info.value)


# --- canonical body -> /chat/completions body ----------------------------------------------------


def test_a_plain_text_body_keeps_its_message_objects() -> None:
    native = body([USER, {"role": "assistant", "content": "Hello"}], max_tokens=5)
    out = to_openai_body(native)
    assert out == native
    assert out is not native
    assert out["messages"] is native["messages"]  # nothing needed converting: nothing copied


def test_media_parts_take_the_url_object_form() -> None:
    native = body([USER, {"role": "user", "content": [ImagePart(image_url="https://i")]}])
    out = to_openai_body(native)
    assert out["messages"][0] is native["messages"][0]
    assert out["messages"][1]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://i"}}
    ]
    assert native["messages"][1]["content"] == [{"type": "image_url", "image_url": "https://i"}]


def test_tools_and_tool_choice_take_the_openai_form() -> None:
    out = to_openai_body(body(tools=[Tool(name="f", parameters={})], tool_choice="tool"))
    assert out["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert out["tool_choice"] == "required"
    assert to_openai_body(body(tool_choice="auto"))["tool_choice"] == "auto"


def test_assistant_tool_calls_get_json_string_arguments() -> None:
    call = ToolCall(id="c1", name="f", parameters={"city": "Paris"})
    out = to_openai_body(body([USER, Message(role="assistant", tool_calls=[call])]))
    (converted,) = out["messages"][1]["tool_calls"]
    assert converted["id"] == "c1"
    assert converted["type"] == "function"
    assert converted["function"]["name"] == "f"
    assert json.loads(converted["function"]["arguments"]) == {"city": "Paris"}


def test_tool_outputs_go_back_as_user_text() -> None:
    tool_output = {
        "role": "tool_output",
        "content": [
            {"tool_call_id": "c1", "output": "18 C"},
            {"tool_call_id": "c2", "output": "rain"},
        ],
    }
    out = to_openai_body(body([USER, tool_output]))
    assert out["messages"][1] == {
        "role": "user",
        "content": "Tool result (call c1): 18 C\nTool result (call c2): rain",
    }


def test_an_openai_tool_message_round_trips_to_user_text() -> None:
    out = to_openai_body(body([{"role": "tool", "tool_call_id": "c1", "content": "ok"}]))
    assert out["messages"] == [{"role": "user", "content": "Tool result (call c1): ok"}]


def test_a_stream_asks_for_usage_on_the_last_chunk() -> None:
    assert to_openai_body(body(stream=True))["stream_options"] == {"include_usage": True}
    assert "stream_options" not in to_openai_body(body())


def test_use_search_engine_points_to_research() -> None:
    with pytest.raises(InvalidRequestError, match=r"use_search_engine: .*research="):
        to_openai_body(body(use_search_engine=True))


def test_other_fields_pass_through() -> None:
    native = {**body(temperature=0.2, stop=["x"]), "research": {"web_search": {}}}
    out = to_openai_body(native)
    assert out["temperature"] == 0.2
    assert out["stop"] == ["x"]
    assert out["research"] == {"web_search": {}}


# --- /chat/completions responses ---------------------------------------------------------------

#: The contract's example response.
COMPLETION: dict[str, Any] = {
    "id": "cmpl-1",
    "object": "chat.completion",
    "created": 1750000000,
    "model": "reka-flash-research",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": "Paris is the capital.",
                "reasoning_content": "The user asks...",
                "reasoning_steps": [
                    {
                        "role": "assistant",
                        "reasoning_content": "Search it.",
                        "tool_calls": [
                            {"id": "s1", "name": "search_web", "args": {"query": "capital"}}
                        ],
                    },
                    {
                        "role": "tool",
                        "tool_call_id": "s1",
                        "content": {
                            "tool_name": "search_web",
                            "tool_output": [{"url": "https://w", "title": "W", "snippet": "s"}],
                        },
                    },
                ],
                "annotations": [
                    {
                        "type": "url_citation",
                        "url_citation": {
                            "start_index": 0,
                            "end_index": 10,
                            "title": "W",
                            "url": "https://w",
                        },
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60},
}


def test_the_contract_example_is_parsed_field_by_field() -> None:
    response = parse_completion(COMPLETION)
    assert isinstance(response, ChatResponse)
    assert response.id == "cmpl-1"
    assert response.model == "reka-flash-research"
    assert response.usage == Usage(input_tokens=20, output_tokens=40)
    assert response.finish_reason == "stop"
    assert response.text == "Paris is the capital."
    message = response.responses[0].message
    assert message.role == "assistant"
    assert message.reasoning_content == "The user asks..."
    assert message.tool_calls is None
    assert message.reasoning_steps == [
        ReasoningStep(
            role="assistant",
            reasoning_content="Search it.",
            tool_calls=[ToolCall(id="s1", name="search_web", parameters={"query": "capital"})],
        ),
        ReasoningStep(
            role="tool",
            tool_call_id="s1",
            tool_name="search_web",
            tool_output=[{"url": "https://w", "title": "W", "snippet": "s"}],
        ),
    ]
    assert message.annotations == [
        Annotation(
            type="url_citation",
            url_citation=UrlCitation(url="https://w", title="W", start_index=0, end_index=10),
        )
    ]


def test_load_completion_decodes_bytes() -> None:
    assert load_completion(json.dumps(COMPLETION).encode()) == parse_completion(COMPLETION)


def test_a_plain_completion_has_only_text() -> None:
    data = {
        "id": 5,
        "model": "reka-flash",
        "choices": [{"message": {"content": "Hi", "refusal": None, "annotations": []}}],
        "usage": {"input_tokens": "3", "output_tokens": 2},
    }
    response = parse_completion(data)
    assert response.id == "5"
    assert response.responses == [
        MessageResponse(message=Message(role="assistant", content="Hi"), finish_reason=None)
    ]
    assert response.usage == Usage(input_tokens=3, output_tokens=2)


def test_a_completion_without_usage_has_zero_counts() -> None:
    response = parse_completion({"id": "x", "model": "m", "choices": []})
    assert response.usage == Usage()
    assert response.text == ""


def test_tool_call_arguments_are_parsed_into_parameters() -> None:
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}},
        {"id": "c3", "name": "h", "parameters": {"b": 2}},
    ]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    data = {
        "id": "x",
        "model": "m",
        "choices": [{"message": message, "finish_reason": "tool_calls"}],
    }
    response = parse_completion(data)
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == [
        ToolCall(id="c1", name="f", parameters={"a": 1}),
        ToolCall(id="c2", name="g", parameters={}),
        ToolCall(id="c3", name="h", parameters={"b": 2}),
    ]


@pytest.mark.parametrize("arguments", ['{"a": 1', "[1]", "null"])
def test_unparsable_arguments_are_kept_raw(arguments: str) -> None:
    call = {"id": "c", "function": {"name": "f", "arguments": arguments}}
    data = {"id": "x", "model": "m", "choices": [{"message": {"tool_calls": [call]}}]}
    assert parse_completion(data).tool_calls[0].parameters == {"_raw": arguments}


def test_an_unknown_annotation_type_is_kept_without_a_citation() -> None:
    message = {"content": "x", "annotations": [{"type": "file_citation", "file": "f"}]}
    data = {"id": "x", "model": "m", "choices": [{"message": message}]}
    annotations = parse_completion(data).responses[0].message.annotations
    assert annotations == [Annotation(type="file_citation", url_citation=None)]


@pytest.mark.parametrize(
    "data",
    [
        {"id": "x", "model": "m", "choices": "nope"},
        {"id": "x", "model": "m"},
        {"model": "m", "choices": []},
        {"id": "x", "model": "m", "choices": [{"message": "text"}]},
        {"id": "x", "model": "m", "choices": [{}]},
        {"id": "x", "model": "m", "choices": [], "usage": [1]},
        {"id": "x", "model": "m", "choices": [{"message": {"reasoning_steps": "s"}}]},
        [1, 2],
        "a string",
    ],
)
def test_completion_of_the_wrong_shape_raises(data: Any) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        parse_completion(data)


# --- stream events -----------------------------------------------------------------------------


def chunk(*choices: Any, **extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": list(choices),
        **extra,
    }


def test_a_content_delta_becomes_a_choice_piece() -> None:
    event = parse_completion_chunk(
        chunk({"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None})
    )
    assert event == StreamEvent(
        id="c",
        model="m",
        choices=[ChoicePiece(index=0, role="assistant", content="Hel")],
        usage=None,
        deltas=True,
    )


def test_reasoning_deltas_steps_and_annotations_are_carried() -> None:
    delta = {
        "reasoning_content": "hm",
        "reasoning_steps": [{"role": "tool", "tool_call_id": "s", "content": "raw"}],
        "annotations": [{"type": "url_citation", "url_citation": {"url": "https://w"}}],
    }
    (piece,) = parse_completion_chunk(chunk({"index": 1, "delta": delta})).choices
    assert piece.index == 1
    assert piece.reasoning_content == "hm"
    assert piece.reasoning_steps == [
        ReasoningStep(role="tool", tool_call_id="s", tool_output="raw")
    ]
    assert piece.annotations == [Annotation(url_citation=UrlCitation(url="https://w"))]


def test_tool_call_fragments_become_tool_call_pieces() -> None:
    first = {
        "tool_calls": [
            {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
        ]
    }
    second = {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]}
    pieces = [
        parse_completion_chunk(chunk({"index": 0, "delta": d})).choices[0].tool_calls
        for d in (first, second)
    ]
    assert pieces == [
        [ToolCallPiece(index=0, id="c1", name="f", arguments="")],
        [ToolCallPiece(index=0, arguments='{"a": ')],
    ]


def test_the_finish_chunk_carries_the_reason() -> None:
    (piece,) = parse_completion_chunk(
        chunk({"index": 0, "delta": {}, "finish_reason": "stop"})
    ).choices
    assert piece == ChoicePiece(index=0, finish_reason="stop")


def test_the_usage_only_last_chunk_has_no_choices() -> None:
    event = parse_completion_chunk(chunk(usage={"prompt_tokens": 4, "completion_tokens": 9}))
    assert event.choices == []
    assert event.usage == Usage(input_tokens=4, output_tokens=9)


@pytest.mark.parametrize(
    "data",
    [
        {"id": "c", "model": "m"},
        {"id": "c", "model": "m", "choices": {}},
        {"id": "c", "model": "m", "choices": [{"delta": "x"}]},
        {"id": "c", "model": "m", "choices": [{"delta": {"tool_calls": [1]}}]},
        {"id": "c", "model": "m", "choices": [{"index": "first", "delta": {}}]},
        None,
    ],
)
def test_chunk_of_the_wrong_shape_raises(data: Any) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        parse_completion_chunk(data)


def test_a_native_event_becomes_a_stream_event() -> None:
    data = {
        "id": "n",
        "model": "reka-flash",
        "responses": [
            {
                "finish_reason": "tool_calls",
                "chunk": {
                    "role": "assistant",
                    "content": "Hel",
                    "tool_calls": [{"id": "t", "name": "f", "parameters": {"a": 1}}],
                },
            }
        ],
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    assert parse_chunk_event(data) == StreamEvent(
        id="n",
        model="reka-flash",
        choices=[
            ChoicePiece(
                index=0,
                role="assistant",
                content="Hel",
                tool_calls=[ToolCallPiece(index=0, id="t", name="f", parameters={"a": 1})],
                finish_reason="tool_calls",
            )
        ],
        usage=Usage(input_tokens=1, output_tokens=2),
        deltas=False,
    )


def test_a_native_event_with_text_parts_carries_their_text() -> None:
    data = {
        "id": "n",
        "model": "m",
        "responses": [{"chunk": {"content": [{"type": "text", "text": "a"}]}}],
    }
    assert parse_chunk_event(data).choices[0].content == "a"


def test_a_native_usage_trailer_has_no_choices() -> None:
    event = parse_chunk_event(
        {"id": "n", "model": "m", "responses": [], "usage": {"prompt_tokens": 3}}
    )
    assert event.choices == []
    assert event.usage == Usage(input_tokens=3, output_tokens=0)


@pytest.mark.parametrize(
    "data",
    [
        {"id": "n", "model": "m", "responses": "x"},
        {"id": "n", "model": "m", "responses": ["x"]},
        {"id": "n", "model": "m", "responses": [{"chunk": "x"}]},
        {"id": "n", "model": "m", "responses": [{"chunk": {"tool_calls": "x"}}]},
        {"model": "m", "responses": []},
    ],
)
def test_native_event_of_the_wrong_shape_raises(data: Any) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        parse_chunk_event(data)


# --- any input: a wire dict or InvalidRequestError ----------------------------------------------

option_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-2, 5),
        st.text(max_size=6),
        st.sampled_from(["none", "low", "high", "json_schema", "json_object", "approximate"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "web_search",
                    "parallel_thinking",
                    "mode",
                    "enabled",
                    "max_uses",
                    "allowed_domains",
                    "blocked_domains",
                    "user_location",
                    "approximate",
                    "city",
                    "type",
                    "json_schema",
                    "name",
                    "schema",
                    "strict",
                    "description",
                ]
            )
            | st.text(max_size=4),
            children,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=option_values, stream=st.booleans())
def test_options_give_a_wire_dict_or_invalid_request(value: Any, stream: bool) -> None:
    for build in (lambda: research_body(value, stream=stream), lambda: response_format_body(value)):
        try:
            out = build()
        except InvalidRequestError:
            continue
        assert isinstance(out, dict)
        json.dumps(out)
