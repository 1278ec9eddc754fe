"""Python functions as tools: the schema from a signature and docstring, and ``run_tools``
(dispatch, results sent back, bounded rounds) on both dialects, async and sync."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Literal

import attrs
import pytest
from conftest import API_KEY

from reka_async import (
    AsyncClient,
    Client,
    FunctionTool,
    InvalidRequestError,
    Tool,
    ToolRun,
    function_tool,
)
from reka_async.testing import MockRekaServer


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@attrs.frozen
class Place:
    city: str
    country: str | None = None


def get_weather(city: str, unit: Unit = Unit.C, days: int = 1) -> dict[str, Any]:
    """The current weather in a city.

    Looked up in a table; no network.

    Args:
        city: the city's name, e.g. "Paris".
        unit: the temperature unit.
        days: how many days of forecast,
            counting today.
    """
    return {"city": city, "temperature": 21, "unit": unit if isinstance(unit, str) else unit.value}


async def get_time(zone: Literal["UTC", "CET"]) -> str:
    """What time it is.

    :param zone: the time zone.
    """
    return f"12:00 {zone}"


def test_the_schema_comes_from_the_signature_and_the_docstring() -> None:
    tool = function_tool(get_weather).tool
    assert tool.name == "get_weather"
    assert tool.description == "The current weather in a city. Looked up in a table; no network."
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'the city\'s name, e.g. "Paris".'},
            "unit": {"enum": ["celsius", "fahrenheit"], "description": "the temperature unit."},
            "days": {
                "type": "integer",
                "description": "how many days of forecast, counting today.",
            },
        },
        "required": ["city"],
    }


def test_sphinx_params_literals_annotated_and_attrs_classes() -> None:
    assert function_tool(get_time).tool.parameters == {
        "type": "object",
        "properties": {"zone": {"enum": ["UTC", "CET"], "description": "the time zone."}},
        "required": ["zone"],
    }

    def book(place: Place, note: Annotated[str, "a note for the desk"] = "") -> str:
        return "ok"

    schema = function_tool(book).tool.parameters
    assert schema is not None
    assert schema["properties"]["place"] == {"$ref": "#/$defs/Place"}
    assert schema["$defs"]["Place"]["required"] == ["city", "country"]
    assert schema["properties"]["note"] == {"type": "string", "description": "a note for the desk"}
    assert schema["required"] == ["place"]


def test_an_explicit_schema_name_and_description_win() -> None:
    params = {"type": "object", "properties": {"q": {"type": "string"}}}

    @function_tool(name="search", description="Search the docs.", parameters=params)
    def anything(**kwargs: Any) -> str:
        return "found"

    assert isinstance(anything, FunctionTool)
    assert anything.tool == Tool(name="search", description="Search the docs.", parameters=params)


def test_a_parameter_type_without_schema_says_what_to_do() -> None:
    def bad(when: complex) -> None: ...

    with pytest.raises(InvalidRequestError, match=r"parameter 'when' has type .*parameters="):
        function_tool(bad)


async def test_bad_tool_lists_say_what_to_fix(client: AsyncClient) -> None:
    msgs: Any = [{"role": "user", "content": "x"}]
    with pytest.raises(InvalidRequestError, match="without a function"):
        await client.chat.run_tools(messages=msgs, model="m", tools=[Tool(name="t")])  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="max_rounds"):
        await client.chat.run_tools(messages=msgs, model="m", tools=[get_weather], max_rounds=0)
    with pytest.raises(InvalidRequestError, match="two tools are named"):
        await client.chat.run_tools(messages=msgs, model="m", tools=[get_weather, get_weather])
    with pytest.raises(InvalidRequestError, match="tools: give a list"):
        await client.chat.run_tools(messages=msgs, model="m", tools=[])
    with pytest.raises(TypeError, match="'messages'"):
        await client.chat.run_tools(model="m", tools=[get_weather])  # type: ignore[call-arg]


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_run_tools_calls_the_function_and_sends_the_result_back(
    server: MockRekaServer, client: AsyncClient, api: Any
) -> None:
    run = await client.chat.run_tools(
        messages=[{"role": "user", "content": "Weather in Paris? [[tool:get_weather]]"}],
        model="reka-flash",
        tools=[get_weather, get_time],
        api=api,
        max_tokens=200,
    )
    assert isinstance(run, ToolRun)
    assert run.finished
    assert run.rounds == 2
    assert [c.call.name for c in run.calls] == ["get_weather"]
    record = run.calls[0]
    assert record.ok
    assert record.round == 0
    assert json.loads(record.output)["temperature"] == 21
    assert run.text.startswith("Mock reply to:")
    assert run.usage.input_tokens == sum(r.usage.input_tokens for r in run.responses)
    # What went over the wire: the schemas, the call, then its output.
    first, second = (r.body for r in server.requests)
    assert all(body["max_tokens"] == 200 for body in (first, second))
    if api == "native":
        assert [t["name"] for t in first["tools"]] == ["get_weather", "get_time"]
        assert second["messages"][1]["tool_calls"][0]["name"] == "get_weather"
        assert second["messages"][2] == {
            "role": "tool_output",
            "content": [{"tool_call_id": record.call.id, "output": record.output}],
        }
    else:
        assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "get_time"]
        assert second["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert record.output in second["messages"][2]["content"]
    roles = [m["role"] for m in run.messages]
    assert roles == ["user", "assistant", "tool_output", "assistant"]


async def test_async_tools_are_awaited(client: AsyncClient) -> None:
    run = await client.chat.run_tools(
        messages=[{"role": "user", "content": "time?"}],
        model="reka-flash",
        tools=[get_time],
        tool_choice="tool",
    )
    assert run.calls[0].output == "12:00 UTC"
    assert run.finished


async def test_tool_choice_forces_the_first_round_only(
    server: MockRekaServer, client: AsyncClient
) -> None:
    run = await client.chat.run_tools(
        messages=[{"role": "user", "content": "go"}],
        model="reka-flash",
        tools=[get_weather],
        tool_choice="tool",
    )
    assert run.finished
    assert run.rounds == 2
    assert [r.body["tool_choice"] for r in server.requests] == ["tool", "auto"]


async def test_max_rounds_bounds_a_model_that_keeps_calling(
    server: MockRekaServer, client: AsyncClient
) -> None:
    def again() -> str:
        """Always asks for itself again."""
        return "call me again [[tool:again]]"

    run = await client.chat.run_tools(
        messages=[{"role": "user", "content": "[[tool:again]]"}],
        model="reka-flash",
        tools=[again],
        max_rounds=3,
    )
    assert not run.finished
    assert run.rounds == 3 == len(server.requests)
    assert len(run.calls) == 2  # the third answer's call is not run
    assert run.response.tool_calls  # the last answer still asks for it


async def test_tool_errors_go_back_to_the_model(client: AsyncClient) -> None:
    def explode(city: str) -> str:
        """Fails."""
        raise ValueError(f"no data for {city}")

    run = await client.chat.run_tools(
        messages=[{"role": "user", "content": "[[tool:explode]]"}],
        model="reka-flash",
        tools=[explode],
    )
    assert run.finished
    (record,) = run.calls
    assert not record.ok
    assert isinstance(record.error, ValueError)
    assert record.output.startswith("Error: ValueError: no data for ")
    assert "error" not in record.to_dict()


async def test_raise_tool_errors_raises_what_the_tool_raised(client: AsyncClient) -> None:
    def explode(city: str) -> str:
        """Fails."""
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await client.chat.run_tools(
            messages=[{"role": "user", "content": "[[tool:explode]]"}],
            model="reka-flash",
            tools=[explode],
            raise_tool_errors=True,
        )


async def test_arguments_that_do_not_fit_are_reported(client: AsyncClient) -> None:
    @function_tool(
        parameters={"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    )
    def takes_nothing() -> str:
        """Has no parameters, whatever the schema says."""
        return "never"

    run = await client.chat.run_tools(
        messages=[{"role": "user", "content": "[[tool:takes_nothing]]"}],
        model="reka-flash",
        tools=[takes_nothing],
    )
    assert run.calls[0].output.startswith("Error: TypeError:")


def test_run_tools_in_the_sync_client_runs_plain_and_async_tools() -> None:
    seen: list[str] = []

    def note(text: str) -> str:
        """Write a note."""
        seen.append(text)
        return "noted"

    with (
        MockRekaServer.in_thread(api_key=API_KEY) as server,
        Client(API_KEY, server.base_url, api="openai") as client,
    ):
        run = client.chat.run_tools(
            messages=[{"role": "user", "content": "[[tool:note]] [[tool:get_time]]"}],
            model="reka-flash",
            tools=[note, get_time],
        )
    assert run.finished
    assert run.rounds == 2
    assert [c.call.name for c in run.calls] == ["note", "get_time"]
    assert [c.output for c in run.calls] == ["noted", "12:00 UTC"]
    assert len(seen) == 1
