"""``chat.parse`` with the classes Python users hold besides attrs: dataclasses and TypedDicts,
on the async and sync clients, and a class as a ``BatchRunner`` item's ``response_format``
(the mock over real sockets; unfit answers over the seam)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from _seam import answers, client_over
from typing_extensions import TypedDict

from reka_async import APIResponseValidationError, AsyncClient, BatchRunner, Client
from reka_async.testing import MockRekaServer, MockResponse

KEY = "parse-key"
ASK = [{"role": "user", "content": "Describe Paris."}]


@dataclasses.dataclass
class Mayor:
    name: str


@dataclasses.dataclass
class CityDC:
    name: str
    population: int
    mayor: Mayor
    motto: str | None = None


class CityTD(TypedDict):
    name: str
    population: int
    landmarks: list[str]


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_dataclass_is_sent_as_its_schema_and_returned_as_an_instance(api: str) -> None:
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(
            KEY,
            server.base_url,
            api=api,  # type: ignore[arg-type]
        ) as client,
    ):
        result = await client.chat.parse(messages=ASK, model="reka-flash", response_format=CityDC)
    assert isinstance(result.parsed, CityDC)
    assert isinstance(result.parsed.mayor, Mayor)
    spec = server.requests[0].body["response_format"]["json_schema"]
    assert spec["name"] == "CityDC"
    schema = spec["schema"]
    assert schema["required"] == ["name", "population", "mayor", "motto"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["mayor"] == {"$ref": "#/$defs/Mayor"}
    assert schema["$defs"]["Mayor"]["required"] == ["name"]


async def test_a_typeddict_is_returned_as_a_checked_dict() -> None:
    async with MockRekaServer(api_key=KEY) as server, AsyncClient(KEY, server.base_url) as client:
        result = await client.chat.parse(messages=ASK, model="reka-flash", response_format=CityTD)
    assert isinstance(result.parsed, dict)
    assert set(result.parsed) == {"name", "population", "landmarks"}
    assert isinstance(result.parsed["population"], int)
    schema = server.requests[0].body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["landmarks"] == {"type": "array", "items": {"type": "string"}}


@pytest.mark.parametrize(
    ("target", "answer", "path"),
    [
        (
            CityDC,
            {"name": "P", "population": "many", "mayor": {"name": "A"}, "motto": None},
            "$.population",
        ),
        (CityDC, {"name": "P", "population": 1, "mayor": {}, "motto": None}, "$.mayor.name"),
        (CityTD, {"name": "P", "population": "many", "landmarks": []}, "$.population"),
    ],
)
async def test_an_unfit_answer_names_the_field_path(
    target: type, answer: dict[str, object], path: str
) -> None:
    message = {"role": "assistant", "content": json.dumps(answer)}
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "reka-flash",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }
    url = "https://api.example.test/v1/chat/completions"
    transport = answers(MockResponse(json=body), url=url)
    async with client_over(transport, KEY, base_url="https://api.example.test/v1") as client:
        with pytest.raises(APIResponseValidationError, match="does not fit") as info:
            await client.chat.parse(messages=ASK, model="reka-flash", response_format=target)
    assert path in str(info.value)


def test_the_sync_client_parses_too() -> None:
    with MockRekaServer.in_thread(api_key=KEY) as server, Client(KEY, server.base_url) as client:
        result = client.chat.parse(messages=ASK, model="reka-flash", response_format=CityDC)
    assert isinstance(result.parsed, CityDC)
    assert server.requests[0].body["response_format"]["json_schema"]["name"] == "CityDC"


async def test_a_batch_item_may_name_a_class_as_its_response_format() -> None:
    async with MockRekaServer(api_key=KEY) as server, AsyncClient(KEY, server.base_url) as client:
        runner = BatchRunner(client, concurrency=2)
        results = await runner.run([{"custom_id": "a", "messages": ASK, "response_format": CityDC}])
    assert results[0].ok, results[0].error
    assert isinstance(json.loads(results[0].response.text)["population"], int)  # type: ignore[union-attr]
    sent = server.requests[0].body["response_format"]["json_schema"]
    assert sent["name"] == "CityDC"
    assert sent["schema"]["properties"]["mayor"] == {"$ref": "#/$defs/Mayor"}
