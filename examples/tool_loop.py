"""The tool-calling loop: Python functions as tools, called until the model answers.

python examples/tool_loop.py --mock                # native dialect
python examples/tool_loop.py --mock --api openai   # the OpenAI-compatible one

``run_tools`` reads each tool's schema from its signature and docstring, runs the calls the
model asks for, sends the results back and stops when the model answers (or after
``max_rounds`` model calls). ``Client.chat.run_tools`` is the same in blocking code.
"""

import asyncio
from typing import Literal

from _support import connection, parse_args

from reka_async import AsyncClient


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
    """The current weather in a city.

    Args:
        city: the city's name, e.g. "Paris".
        unit: the temperature unit.
    """
    return {"city": city, "temperature": 21 if unit == "celsius" else 70, "sky": "clear"}


async def local_time(city: str) -> str:
    """The local time in a city.

    Args:
        city: the city's name.
    """
    return f"It is 14:05 in {city}."


async def main() -> None:
    args = parse_args(__doc__ or "")
    async with connection(args) as conn, AsyncClient(**conn) as client:
        run = await client.chat.run_tools(
            messages=[{"role": "user", "content": "What's the weather in Paris right now?"}],
            model="reka-flash",
            tools=[get_weather, local_time],
            tool_choice="tool",  # the first round must call a tool; later rounds may answer
            max_rounds=4,
        )
    for record in run.calls:
        print(f"called {record.call.name}({record.call.parameters}) -> {record.output}")
    print(f"answer: {run.text}")
    print(f"finished after {run.rounds} rounds, {run.usage.input_tokens} input tokens")


if __name__ == "__main__":
    asyncio.run(main())
