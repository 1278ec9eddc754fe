"""Useful parameters: temperature, max_tokens (and finish_reason "length"), stop.

python examples/parameters.py --mock
"""

import asyncio

from _support import connection, parse_args

from reka_async import AsyncClient


async def main() -> None:
    args = parse_args(__doc__ or "")
    question = [{"role": "user", "content": "List the first ten prime numbers, comma separated."}]
    async with connection(args) as conn, AsyncClient(**conn) as client:
        greedy = await client.chat.create(messages=question, model="reka-flash", temperature=0.0)
        print(f"temperature=0: {greedy.text}")

        short = await client.chat.create(messages=question, model="reka-flash", max_tokens=3)
        if short.finish_reason == "length":
            print(f"max_tokens=3 truncated the answer: {short.text!r}")

        stopped = await client.chat.create(messages=question, model="reka-flash", stop=[","])
        print(f"stop=[',']: {stopped.text!r} (finish_reason={stopped.finish_reason})")


if __name__ == "__main__":
    asyncio.run(main())
