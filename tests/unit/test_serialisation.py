"""``to_dict()``/``to_json()`` on every model, in the native layout whichever dialect answered;
``json.dumps(..., default=to_jsonable)``; a short ``BatchResult`` repr."""

from __future__ import annotations

import inspect
import json

import attrs
import pytest
from conftest import API_KEY

import reka_async
from reka_async import (
    AsyncClient,
    BatchResult,
    BatchRunner,
    ChatResponse,
    ImagePart,
    InternalServerError,
    Message,
    TextPart,
    ToolCall,
    ToolOutput,
)
from reka_async._serial import to_jsonable
from reka_async._wire import parse_chat_response
from reka_async.testing import MockRekaServer

MSGS = [{"role": "user", "content": "Describe the sea."}]

#: Public attrs classes that are configuration, events or wrappers rather than data.
EXEMPT = {
    "RetryPolicy",
    "Timeout",
    "RetryEvent",
    "RequestEvent",
    "ResponseEvent",
    "RawResponse",
    "FunctionTool",
    "ServerSentEvent",
}
#: Every other public attrs class: each must have to_dict/to_json.
MODELS = [
    value
    for name in reka_async.__all__
    if inspect.isclass(value := getattr(reka_async, name))
    and attrs.has(value)
    and name not in EXEMPT
]


def test_the_model_list_is_not_empty() -> None:
    assert len(MODELS) > 20


@pytest.mark.parametrize("cls", MODELS, ids=[c.__name__ for c in MODELS])
def test_every_data_model_has_to_dict_and_to_json(cls: type) -> None:
    assert callable(getattr(cls, "to_dict", None)), cls
    assert callable(getattr(cls, "to_json", None)), cls


def test_to_dict_gives_the_native_layout_and_leaves_none_out() -> None:
    response = ChatResponse(
        id="c1",
        model="reka-flash",
        responses=[
            reka_async.MessageResponse(
                message=Message(
                    role="assistant",
                    content=[TextPart(text="hi"), ImagePart(image_url="https://x/y.png")],
                    tool_calls=[ToolCall(id="t1", name="f", parameters={"a": 1})],
                ),
                finish_reason="stop",
            )
        ],
        request_id="req_1",
    )
    assert response.to_dict() == {
        "id": "c1",
        "model": "reka-flash",
        "responses": [
            {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": "https://x/y.png"},
                    ],
                    "tool_calls": [{"id": "t1", "name": "f", "parameters": {"a": 1}}],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    assert json.loads(response.to_json()) == response.to_dict()
    assert response.to_json(indent=2).startswith('{\n  "id"')
    # The native layout reads back into the same response.
    assert parse_chat_response(response.to_dict()) == response


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_both_dialects_serialise_alike(client: AsyncClient, api: str) -> None:
    response = await client.chat.create(messages=MSGS, model="reka-flash", api=api)  # type: ignore[arg-type]
    data = response.to_dict()
    assert set(data) == {"id", "model", "responses", "usage"}
    assert data["responses"][0]["message"] == {"role": "assistant", "content": response.text}
    assert data["responses"][0]["finish_reason"] == "stop"
    assert set(data["usage"]) == {"input_tokens", "output_tokens"}
    assert data["usage"]["input_tokens"] > 0
    assert parse_chat_response(json.loads(response.to_json())) == response


async def test_json_dumps_with_to_jsonable_handles_models_lists_and_results(
    server: MockRekaServer,
) -> None:
    async with AsyncClient(API_KEY, server.base_url, max_retries=0) as client:
        response = await client.chat.create(messages=MSGS, model="reka-flash")
        server.inject("500")
        results = await BatchRunner(client, concurrency=1).run(["ok?", "second"])
    with pytest.raises(TypeError):
        json.dumps(response)  # the plain call still needs the default hook
    text = json.dumps({"answer": response, "batch": results}, default=to_jsonable)
    back = json.loads(text)
    assert back["answer"] == response.to_dict()
    failed, ok = sorted(back["batch"], key=lambda r: r["ok"])
    assert failed["error"]["type"] == "InternalServerError"
    assert failed["error"]["status"] == 500
    assert failed["error"]["request_id"]
    assert ok["response"]["responses"][0]["message"]["content"] == "Mock reply to: second"
    assert ok["request"]["messages"] == [{"role": "user", "content": "second"}]
    with pytest.raises(TypeError, match="not JSON serializable"):
        json.dumps({"x": object()}, default=to_jsonable)


def test_parts_and_tool_outputs_serialise_as_the_wire_form() -> None:
    assert ToolOutput(tool_call_id="c", output="o").to_dict() == {
        "tool_call_id": "c",
        "output": "o",
    }
    assert Message(role="user", content="hi").to_dict() == {"role": "user", "content": "hi"}
    assert reka_async.Research(web_search=reka_async.WebSearch(max_uses=2)).to_dict() == {
        "web_search": {"enabled": True, "max_uses": 2}
    }


def _result(**kwargs: object) -> BatchResult:
    base: dict[str, object] = {"index": 3, "custom_id": "q3", "request": {"messages": MSGS * 500}}
    return BatchResult(**{**base, **kwargs})  # type: ignore[arg-type]


def test_batch_result_repr_is_short() -> None:
    long_text = "word " * 2_000
    response = ChatResponse(
        id="c",
        model="m",
        responses=[
            reka_async.MessageResponse(message=Message(role="assistant", content=long_text))
        ],
    )
    ok = _result(response=response, attempts=1, latency_s=0.1234)
    assert len(repr(ok)) < 160
    assert repr(ok).startswith("<BatchResult index=3 custom_id='q3' ok text='word word")
    assert "attempts=1 latency_s=0.123>" in repr(ok)
    failed = _result(
        error=InternalServerError(
            "HTTP 500: " + "x" * 500, status_code=500, body="", headers={}, request_id="r"
        ),
        attempts=3,
    )
    assert len(repr(failed)) < 200
    assert "error=InternalServerError(" in repr(failed)


def test_batch_result_to_dict_of_an_invalid_item() -> None:
    result = _result(request=None, error=reka_async.InvalidRequestError("messages: empty"))
    assert result.to_dict() == {
        "index": 3,
        "custom_id": "q3",
        "ok": False,
        "request": None,
        "error": {
            "type": "InvalidRequestError",
            "message": "messages: empty",
            "status": None,
            "request_id": None,
        },
        "attempts": 0,
        "latency_s": 0.0,
    }


def test_to_dict_is_plain_json_data_for_web_handlers() -> None:
    # A web handler (FastAPI) returns a plain dict as JSON as it is: the stdlib encoder takes it.
    response = ChatResponse(id="c", model="m", responses=[])
    assert json.loads(json.dumps(response.to_dict())) == {
        "id": "c",
        "model": "m",
        "responses": [],
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
