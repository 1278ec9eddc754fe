"""Wire models and the converter: tolerant response parsing, strict request validation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from reka_async import (
    AudioPart,
    ChatChunk,
    ChatResponse,
    ImagePart,
    InvalidRequestError,
    Message,
    MessageResponse,
    Model,
    PdfPart,
    RekaError,
    TextPart,
    Timeout,
    Tool,
    ToolCall,
    ToolOutput,
    Usage,
    VideoPart,
)
from reka_async._assemble import Assembler
from reka_async._models import ChatRequest, ChunkResponse
from reka_async._wire import (
    parse_chat_response,
    parse_chunk_event,
    parse_models,
    request_body,
    request_from_model,
)
from reka_async.types import ModelPricing

USER = {"role": "user", "content": "Hi"}


def response_json(**message: Any) -> dict[str, Any]:
    msg = {"role": "assistant", "content": "Hello!", **message}
    return {
        "id": "chat-1",
        "model": "reka-flash",
        "responses": [{"finish_reason": "stop", "message": msg}],
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }


def body(messages: Any = None, stream: bool = False, extra_body: Any = None, **params: Any) -> Any:
    return request_body(
        model="reka-flash",
        messages=[USER] if messages is None else messages,
        params=params,
        stream=stream,
        extra_body=extra_body,
    )


# --- response parsing -------------------------------------------------------------------------


def test_response_parses_documented_shape() -> None:
    assert parse_chat_response(response_json()) == ChatResponse(
        id="chat-1",
        model="reka-flash",
        responses=[
            MessageResponse(
                message=Message(role="assistant", content="Hello!"), finish_reason="stop"
            )
        ],
        usage=Usage(input_tokens=3, output_tokens=2),
    )


def test_response_tolerates_unknown_keys_at_every_level() -> None:
    data = response_json(
        annotations=[{"kind": "citation"}],
        tool_calls=[{"id": "c1", "name": "f", "parameters": {}, "type": "function", "x": 1}],
    )
    data["created"] = 1_700_000_000
    data["system_fingerprint"] = {"nested": [1, 2]}
    data["responses"][0]["logprobs"] = None
    data["responses"][0]["index"] = 0
    data["usage"]["cached_tokens"] = 7

    resp = parse_chat_response(data)

    assert resp.text == "Hello!"
    assert resp.usage == Usage(input_tokens=3, output_tokens=2)
    assert resp.tool_calls == [ToolCall(id="c1", name="f", parameters={})]


def test_response_without_usage_defaults_to_zero_counts() -> None:
    data = response_json()
    del data["usage"]
    assert parse_chat_response(data).usage == Usage(input_tokens=0, output_tokens=0)


def test_unknown_finish_reason_is_kept_as_data() -> None:
    data = response_json()
    data["responses"][0]["finish_reason"] = "content_filter"
    assert parse_chat_response(data).finish_reason == "content_filter"


def test_content_list_of_parts_becomes_part_models() -> None:
    parts = [
        {"type": "image_url", "image_url": "https://example.com/cat.png"},
        {"type": "video_url", "video_url": "https://example.com/v.mp4"},
        {"type": "audio_url", "audio_url": "https://example.com/a.mp3"},
        {"type": "pdf_url", "pdf_url": "https://example.com/d.pdf"},
        {"type": "text", "text": "A cat"},
        {"type": "text", "text": " sitting."},
    ]
    resp = parse_chat_response(response_json(content=parts))
    assert resp.responses[0].message.content == [
        ImagePart(image_url="https://example.com/cat.png"),
        VideoPart(video_url="https://example.com/v.mp4"),
        AudioPart(audio_url="https://example.com/a.mp3"),
        PdfPart(pdf_url="https://example.com/d.pdf"),
        TextPart(text="A cat"),
        TextPart(text=" sitting."),
    ]
    assert resp.text == "A cat sitting."


def test_unknown_part_type_is_kept_as_a_dict() -> None:
    hologram = {"type": "hologram_url", "hologram_url": "https://example.com/h", "fps": 90}
    resp = parse_chat_response(response_json(content=[hologram, {"type": "text", "text": "ok"}]))
    content = resp.responses[0].message.content
    assert content == [hologram, TextPart(text="ok")]
    assert resp.text == "ok"


def test_known_part_type_with_wrong_field_type_is_kept_as_a_dict() -> None:
    odd = {"type": "text", "text": 42}
    resp = parse_chat_response(response_json(content=[odd]))
    assert resp.responses[0].message.content == [odd]


def test_tool_output_parts_are_parsed() -> None:
    content = [{"tool_call_id": "c1", "output": "22 C"}]
    resp = parse_chat_response(response_json(role="tool_output", content=content))
    assert resp.responses[0].message.content == [ToolOutput(tool_call_id="c1", output="22 C")]


def test_tool_calls_are_parsed() -> None:
    calls = [
        {"id": "call_1", "name": "get_weather", "parameters": {"city": "Paris"}},
        {"id": "call_2", "name": "get_time"},
    ]
    resp = parse_chat_response(response_json(content="", tool_calls=calls))
    assert resp.tool_calls == [
        ToolCall(id="call_1", name="get_weather", parameters={"city": "Paris"}),
        ToolCall(id="call_2", name="get_time", parameters={}),
    ]
    assert resp.responses[0].message.tool_calls == resp.tool_calls


def test_response_without_tool_calls_has_empty_tool_calls() -> None:
    assert parse_chat_response(response_json()).tool_calls == []


def test_text_is_the_vendor_content_path() -> None:
    resp = parse_chat_response(response_json(content="The answer is 4."))
    assert resp.responses[0].message.content == "The answer is 4."
    assert resp.text == resp.responses[0].message.content


def test_empty_responses_give_empty_text_and_no_finish_reason() -> None:
    data = response_json()
    data["responses"] = []
    resp = parse_chat_response(data)
    assert resp.text == ""
    assert resp.finish_reason is None
    assert resp.tool_calls == []


def test_null_content_gives_empty_text() -> None:
    resp = parse_chat_response(response_json(content=None))
    assert resp.responses[0].message.content is None
    assert resp.text == ""


@pytest.mark.parametrize(
    "data",
    [
        {"unexpected": True, "responses": "nope"},
        {"id": "x", "model": "m", "responses": [{"message": "not an object"}]},
        [1, 2, 3],
        "a string",
    ],
    ids=["responses-not-list", "message-not-object", "list", "string"],
)
def test_wrong_shape_raises(data: Any) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        parse_chat_response(data)


def test_chunk_event_parses_content_as_sent() -> None:
    data = {
        "id": "chat-1",
        "model": "reka-flash",
        "responses": [{"finish_reason": None, "chunk": {"role": "assistant", "content": "Hel"}}],
        "extra": 1,
    }
    event = parse_chunk_event(data)
    assert event.deltas is False  # native: the stream decides cumulative or delta
    assert event.usage is None
    (piece,) = event.choices
    assert (piece.role, piece.content, piece.finish_reason) == ("assistant", "Hel", None)
    chunk = Assembler().feed(event)
    assert isinstance(chunk, ChatChunk)
    assert chunk.responses[0].chunk.content == "Hel"
    assert chunk.text == "Hel"
    assert chunk.delta == "Hel"  # nothing came before: all of it is new
    assert chunk.finish_reason is None
    assert chunk.usage is None


@pytest.mark.parametrize(
    "data",
    [
        [{"id": "reka-core"}, {"id": "reka-flash", "owned_by": "reka", "unknown": 1}],
        {"data": [{"id": "reka-core"}, {"id": "reka-flash", "owned_by": "reka"}]},
    ],
    ids=["list", "data-envelope"],
)
def test_models_list_parses(data: Any) -> None:
    assert parse_models(data) == [Model(id="reka-core"), Model(id="reka-flash", owned_by="reka")]


def test_models_list_of_names_parses() -> None:
    assert parse_models(["reka-core", "reka-flash"]) == [
        Model(id="reka-core"),
        Model(id="reka-flash"),
    ]


def test_openai_models_list_fills_every_field() -> None:
    entry = {
        "id": "reka-flash-3",
        "object": "model",
        "created": "1750000000",
        "owned_by": "reka",
        "name": "Reka Flash 3",
        "description": "fast",
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
        "context_length": 32768,
        "max_output_length": "8192",
        "pricing": {"prompt": "0.0000001", "completion": "0.0000002", "image": "0"},
        "supported_sampling_parameters": ["temperature"],
        "unknown": {"x": 1},
    }
    assert parse_models({"object": "list", "data": [entry]}) == [
        Model(
            id="reka-flash-3",
            name="Reka Flash 3",
            description="fast",
            context_length=32768,
            max_output_length=8192,
            input_modalities=["text", "image"],
            output_modalities=["text"],
            pricing=ModelPricing(prompt="0.0000001", completion="0.0000002"),
            owned_by="reka",
            created=1750000000,
        )
    ]


@pytest.mark.parametrize(
    "data",
    [
        {"models": []},
        [{"name": "no id"}],
        [3],
        [{"id": "m", "pricing": "cheap"}],
        [{"id": "m", "context_length": "long"}],
        [{"id": "m", "input_modalities": "text"}],
    ],
)
def test_models_list_of_wrong_shape_raises(data: Any) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        parse_models(data)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60}, (20, 40)),
        ({"input_tokens": 1, "output_tokens": 2, "prompt_tokens": 9}, (1, 2)),
        ({"prompt_tokens": None}, (0, 0)),
    ],
    ids=["openai-names", "native-names-win", "null"],
)
def test_native_usage_reads_the_openai_names_too(usage: Any, expected: tuple[int, int]) -> None:
    data = response_json()
    data["usage"] = usage
    parsed = parse_chat_response(data).usage
    assert (parsed.input_tokens, parsed.output_tokens) == expected


# --- request encoding -------------------------------------------------------------------------


def test_request_omits_none_fields() -> None:
    assert body(max_tokens=None, temperature=None, stop=None, tools=None) == {
        "model": "reka-flash",
        "messages": [USER],
    }


def test_request_includes_given_fields_unchanged() -> None:
    got = body(
        max_tokens=64,
        temperature=0,
        top_p=0.9,
        top_k=40,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        stop=["\n\n"],
        tool_choice="auto",
        use_search_engine=False,
    )
    assert got == {
        "model": "reka-flash",
        "messages": [USER],
        "max_tokens": 64,
        "temperature": 0,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "stop": ["\n\n"],
        "tool_choice": "auto",
        "use_search_engine": False,
    }


def test_stream_flag_is_only_sent_when_streaming() -> None:
    assert "stream" not in body()
    assert body(stream=True)["stream"] is True


def test_dict_and_model_messages_can_be_mixed() -> None:
    messages = [
        Message(role="system", content="Be brief."),
        {"role": "user", "content": "Hi"},
        Message(role="assistant", content="Hello"),
        {"role": "user", "content": [{"type": "text", "text": "Again"}]},
    ]
    assert body(messages)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "Again"}]},
    ]


def test_part_models_are_encoded_as_wire_dicts() -> None:
    msg = Message(
        role="user",
        content=[
            ImagePart(image_url="https://example.com/cat.png"),
            PdfPart(pdf_url="https://example.com/d.pdf"),
            TextPart(text="What is this?"),
        ],
    )
    assert body([msg])["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": "https://example.com/cat.png"},
                {"type": "pdf_url", "pdf_url": "https://example.com/d.pdf"},
                {"type": "text", "text": "What is this?"},
            ],
        }
    ]


def test_a_plain_string_part_is_encoded_as_a_text_part() -> None:
    got = body([{"role": "user", "content": ["hello"]}])
    assert got["messages"][0]["content"] == [{"type": "text", "text": "hello"}]


def test_assistant_tool_calls_and_tool_output_are_encoded() -> None:
    messages = [
        USER,
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="call_1", name="get_weather", parameters={"city": "Oslo"})],
        ),
        Message(role="tool_output", content=[ToolOutput(tool_call_id="call_1", output="-3 C")]),
    ]
    assert body(messages)["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [{"id": "call_1", "name": "get_weather", "parameters": {"city": "Oslo"}}],
        },
        {"role": "tool_output", "content": [{"tool_call_id": "call_1", "output": "-3 C"}]},
    ]


def test_tool_models_are_encoded_without_none_fields() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    got = body(tools=[Tool(name="get_weather", parameters=schema), {"name": "get_time"}])
    assert got["tools"] == [{"name": "get_weather", "parameters": schema}, {"name": "get_time"}]


def test_a_single_stop_string_becomes_a_list() -> None:
    assert body(stop="```\n")["stop"] == ["```\n"]


def test_extra_body_is_merged_into_the_request() -> None:
    got = body(max_tokens=5, extra_body={"response_format": {"type": "json"}, "max_tokens": 9})
    assert got["response_format"] == {"type": "json"}
    assert got["max_tokens"] == 9  # the escape hatch wins: it is the caller's business


def test_chat_request_model_encodes_to_wire_body() -> None:
    req = ChatRequest(
        model="reka-core",
        messages=[
            Message(
                role="user", content=[ImagePart(image_url="https://x/y.png"), TextPart(text="?")]
            ),
            Message(role="assistant", content="A cat."),
            Message(role="user", content="Sure?"),
        ],
        max_tokens=100,
        temperature=0.2,
        stop=["END"],
        tools=[Tool(name="lookup", description="Look it up")],
        tool_choice="none",
        extra_body={"custom": [1]},
    )
    assert request_from_model(req) == {
        "model": "reka-core",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": "https://x/y.png"},
                    {"type": "text", "text": "?"},
                ],
            },
            {"role": "assistant", "content": "A cat."},
            {"role": "user", "content": "Sure?"},
        ],
        "max_tokens": 100,
        "temperature": 0.2,
        "stop": ["END"],
        "tools": [{"name": "lookup", "description": "Look it up"}],
        "tool_choice": "none",
        "custom": [1],
    }


def test_chat_request_model_with_stream_sets_stream_true() -> None:
    req = ChatRequest(model="reka-core", messages=[Message(role="user", content="Hi")], stream=True)
    assert request_from_model(req) == {
        "model": "reka-core",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }


def test_chat_request_model_is_validated_like_keyword_arguments() -> None:
    req = ChatRequest(model="reka-core", messages=[Message(role="bot", content="Hi")])
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]\.role"):
        request_from_model(req)


# --- request validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"messages": []}, r"^messages: "),
        ({"messages": "Hi"}, r"^messages: "),
        ({"messages": {"role": "user", "content": "Hi"}}, r"^messages: "),
        ({"messages": [{"role": "bot", "content": "Hi"}]}, r"^messages\[0\]\.role: "),
        ({"messages": [USER, {"content": "no role"}]}, r"^messages\[1\]\.role: "),
        ({"messages": [{"role": "user", "content": 42}]}, r"^messages\[0\]\.content: "),
        ({"messages": [{"role": "user", "content": {"text": "x"}}]}, r"^messages\[0\]\.content: "),
        ({"messages": [{"role": "user"}]}, r"^messages\[0\]\.content: "),
        ({"messages": [{"role": "user", "content": []}]}, r"^messages\[0\]\.content: "),
        (
            {"messages": [{"role": "user", "content": [{"type": "gif_url", "gif_url": "x"}]}]},
            r"^messages\[0\]\.content\[0\]: ",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]},
            r"^messages\[0\]\.content\[0\]\.image_url: ",
        ),
        ({"messages": [{"role": "user", "content": [42]}]}, r"^messages\[0\]\.content\[0\]: "),
        ({"messages": [USER, 42]}, r"^messages\[1\]: "),
        ({"max_tokens": "100"}, r"^max_tokens: "),
        ({"max_tokens": 1.5}, r"^max_tokens: "),
        ({"max_tokens": True}, r"^max_tokens: "),
        ({"max_tokens": 0}, r"^max_tokens: "),
        ({"temperature": "hot"}, r"^temperature: "),
        ({"temperature": True}, r"^temperature: "),
        ({"top_k": False}, r"^top_k: "),
        ({"seed": 1.0}, r"^seed: "),
        ({"tool_choice": "always"}, r"^tool_choice: "),
        ({"stop": 5}, r"^stop: "),
        ({"stop": ["ok", 1]}, r"^stop: "),
        ({"tools": "get_weather"}, r"^tools: "),
        ({"tools": [{"description": "no name"}]}, r"^tools\[0\]: "),
        ({"use_search_engine": "yes"}, r"^use_search_engine: "),
        ({"best_of": 3}, r"^best_of: "),
    ],
)
def test_invalid_request_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    messages = kwargs.pop("messages", [USER])
    with pytest.raises(InvalidRequestError, match=field):
        request_body(model="reka-flash", messages=messages, params=kwargs, stream=False)


@pytest.mark.parametrize("model", ["", None, 3])
def test_invalid_model_names_the_field(model: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"^model: "):
        request_body(model=model, messages=[USER], params={}, stream=False)


def test_invalid_request_error_is_a_value_error_and_a_reka_error() -> None:
    with pytest.raises(InvalidRequestError) as info:
        body([])
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, RekaError)


def test_message_with_only_tool_calls_is_valid() -> None:
    msg = {"role": "assistant", "tool_calls": [{"id": "c", "name": "f", "parameters": {}}]}
    assert body([USER, msg])["messages"][1] == msg


def test_message_content_helper_joins_text_parts() -> None:
    msg = Message(
        role="user", content=[TextPart(text="a"), ImagePart(image_url="u"), TextPart(text="b")]
    )
    assert msg.text == "ab"


# --- the hot paths give the same answers as the general ones --------------------------------


def test_plain_timeout_is_one_deadline_of_the_smaller_bound() -> None:
    plain = Timeout(connect=3.0, read=60.0, total=600.0).to_aiohttp_plain()
    assert (plain.total, plain.sock_connect, plain.sock_read) == (60.0, 3.0, None)
    assert Timeout(read=900.0, total=30.0).to_aiohttp_plain().total == 30.0
    assert Timeout(read=None, total=None).to_aiohttp_plain().total is None
    assert Timeout(read=None, total=45.0).to_aiohttp_plain().total == 45.0
    stream = Timeout(connect=3.0, read=60.0, total=600.0).to_aiohttp()
    assert (stream.total, stream.sock_connect, stream.sock_read) == (600.0, 3.0, 60.0)


def test_plain_dict_messages_are_sent_as_given_in_a_new_list() -> None:
    messages = [USER, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "More"}]
    wire = body(messages)["messages"]
    assert wire == messages
    assert wire is not messages  # the caller may reuse or change their list afterwards


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"role": ["user"], "content": "x"}, "messages[0].role"),  # unhashable: no TypeError
        ({"role": "robot", "content": "x"}, "messages[0].role"),
        ({"role": "user", "content": 5}, "messages[0].content"),
    ],
)
def test_the_fast_path_still_rejects_invalid_messages(message: Any, error: str) -> None:
    with pytest.raises(InvalidRequestError, match=re.escape(error)):
        body([message])


def test_response_fast_path_matches_the_general_hooks() -> None:
    data = response_json()
    data["responses"][0]["finish_reason"] = 7  # coerced like the generated hooks would
    data["id"] = 12
    data["usage"] = {"input_tokens": "3", "output_tokens": 2}
    parsed = parse_chat_response(data)
    assert parsed.id == "12"
    assert parsed.finish_reason == "7"
    assert parsed.usage == Usage(input_tokens=3, output_tokens=2)
    tool = response_json(tool_calls=[{"id": "t1", "name": "f", "parameters": {"a": 1}}])
    assert parse_chat_response(tool).tool_calls == [
        ToolCall(id="t1", name="f", parameters={"a": 1})
    ]


@pytest.mark.parametrize("usage", [None, {"input_tokens": 3, "output_tokens": 2}, "missing"])
def test_a_chunk_is_built_once_with_its_delta(usage: Any) -> None:
    event: dict[str, Any] = {
        "id": "chat-1",
        "model": "reka-flash",
        "responses": [{"finish_reason": None, "chunk": {"role": "assistant", "content": "Hel"}}],
    }
    if usage != "missing":
        event["usage"] = usage
    assembler = Assembler()
    assembler.feed(parse_chunk_event({**event, "usage": None}))
    event["responses"][0]["chunk"]["content"] = "Hello!"
    assert assembler.feed(parse_chunk_event(event)) == ChatChunk(
        id="chat-1",
        model="reka-flash",
        responses=[ChunkResponse(chunk=Message(role="assistant", content="Hello!"))],
        usage=Usage(input_tokens=3, output_tokens=2) if isinstance(usage, dict) else None,
        delta="lo!",
    )
