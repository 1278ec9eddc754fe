"""Tool calling: the model asks for a function, we run it and send the result back.

python examples/tool_calling.py --mock                # native dialect
python examples/tool_calling.py --mock --api openai   # the OpenAI-compatible one
"""

import asyncio
import json
from typing import Any

from _support import connection, parse_args

from reka_async import AsyncClient, Tool

WEATHER = Tool(
    name="get_weather",
    description="The current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


def get_weather(city: str = "Paris", **_: Any) -> str:
    return json.dumps({"city": city, "temperature_c": 21, "sky": "clear"})


async def main() -> None:
    args = parse_args(__doc__ or "")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    async with connection(args) as conn, AsyncClient(**conn) as client:
        first = await client.chat.create(
            messages=messages, model="reka-flash", tools=[WEATHER], tool_choice="tool"
        )
        calls = first.tool_calls
        print(f"tool calls: {[(c.name, c.parameters) for c in calls]}")
        # Send the assistant's calls back with their outputs, then ask for the answer.
        messages.append(
            {
                "role": "assistant",
                "content": first.text or None,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "parameters": c.parameters} for c in calls
                ],
            }
        )
        messages.append(
            {
                "role": "tool_output",
                "content": [
                    {"tool_call_id": c.id, "output": get_weather(**c.parameters)} for c in calls
                ],
            }
        )
        final = await client.chat.create(messages=messages, model="reka-flash", tools=[WEATHER])
        print(f"answer: {final.text}")
        print(f"round trip finished: {final.finish_reason}")


if __name__ == "__main__":
    asyncio.run(main())
