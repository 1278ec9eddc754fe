"""Structured outputs: ask for an answer that fits a class, and get an instance of it.

``chat.parse`` sends the class's JSON schema as ``response_format`` (OpenAI-compatible
endpoint) and structures the answer into the class.

    python examples/structured_output.py --mock
"""

import asyncio

import attrs
from _support import connection, parse_args

from reka_async import AsyncClient


@attrs.frozen
class City:
    name: str
    country: str
    population: int
    landmarks: list[str]


async def main() -> None:
    args = parse_args(__doc__ or "")
    async with connection(args) as conn, AsyncClient(**conn) as client:
        result = await client.chat.parse(
            messages=[{"role": "user", "content": "Describe Paris."}],
            model="reka-flash",
            response_format=City,
        )
        city = result.parsed
        print(f"parsed: {type(city).__name__} name={city.name!r} landmarks={len(city.landmarks)}")


if __name__ == "__main__":
    asyncio.run(main())
