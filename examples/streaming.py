"""Streaming: print each new piece of text as it arrives.

Whether the server sends cumulative text or deltas, ``chunk.delta`` is just the new part.

    python examples/streaming.py --mock
"""

import asyncio

from _support import connection, parse_args

from reka_async import AsyncClient


async def main() -> None:
    args = parse_args(__doc__ or "")
    messages = [{"role": "user", "content": "Write a haiku about asynchronous code."}]
    async with connection(args) as conn, AsyncClient(**conn) as client:
        async for chunk in client.chat.create_stream(messages=messages, model="reka-flash"):
            print(chunk.delta, end="", flush=True)
        print()

        # As a context manager, with the assembled response at the end.
        async with client.chat.create_stream(messages=messages, model="reka-flash") as stream:
            final = await stream.final_response()
        print(f"assembled: {final.text!r}, usage={final.usage}")


if __name__ == "__main__":
    asyncio.run(main())
