"""``chat.parse(response_format=Model)`` with a pydantic v2 model, as openai-python users write
it: the model's own schema is sent (closed to extra keys), pydantic validates the answer, and an
unfit answer names the field path."""

from __future__ import annotations

import json

import pydantic
import pytest
from _seam import answers, client_over

from reka_async import APIResponseValidationError, AsyncClient, BatchRunner, Client
from reka_async.testing import MockRekaServer, MockResponse

KEY = "parse-key"
ASK = [{"role": "user", "content": "Describe Paris."}]


class Mayor(pydantic.BaseModel):
    name: str


class City(pydantic.BaseModel):
    name: str
    population: int
    mayor: Mayor
    landmarks: list[str] = []


def _closed_schema() -> dict[str, object]:
    schema = City.model_json_schema()
    schema["additionalProperties"] = False
    schema["$defs"]["Mayor"]["additionalProperties"] = False
    return schema


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_pydantic_model_sends_its_own_schema_and_comes_back_validated(api: str) -> None:
    async with (
        MockRekaServer(api_key=KEY) as server,
        AsyncClient(
            KEY,
            server.base_url,
            api=api,  # type: ignore[arg-type]
        ) as client,
    ):
        result = await client.chat.parse(messages=ASK, model="reka-flash", response_format=City)
    assert isinstance(result.parsed, City)
    assert isinstance(result.parsed.mayor, Mayor)
    spec = server.requests[0].body["response_format"]["json_schema"]
    assert spec["name"] == "City"
    assert spec["schema"] == _closed_schema()


async def test_an_unfit_answer_raises_with_pydantics_field_path() -> None:
    answer = {"name": "P", "population": 1, "mayor": {"name": 7}}
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
        with pytest.raises(APIResponseValidationError, match="does not fit City") as info:
            await client.chat.parse(messages=ASK, model="reka-flash", response_format=City)
    assert "$.mayor.name" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_the_sync_client_parses_a_pydantic_model() -> None:
    with MockRekaServer.in_thread(api_key=KEY) as server, Client(KEY, server.base_url) as client:
        result = client.chat.parse(messages=ASK, model="reka-flash", response_format=City)
    assert isinstance(result.parsed, City)


async def test_a_batch_item_may_name_a_pydantic_model() -> None:
    async with MockRekaServer(api_key=KEY) as server, AsyncClient(KEY, server.base_url) as client:
        results = await BatchRunner(client, concurrency=1).run(
            [{"messages": ASK, "response_format": City}]
        )
    assert results[0].ok, results[0].error
    City.model_validate_json(results[0].response.text)  # type: ignore[union-attr]
    assert server.requests[0].body["response_format"]["json_schema"]["schema"] == _closed_schema()
