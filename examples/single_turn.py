"""Single turn prompting with ``AsyncClient``.

python examples/single_turn.py --mock
"""

import asyncio

from _support import connection, parse_args

from reka_async import AsyncClient


async def main() -> None:
    args = parse_args(__doc__ or "")
    async with connection(args) as conn, AsyncClient(**conn) as client:
        response = await client.chat.create(
            messages=[{"role": "user", "content": "What is the capital of the UK?"}],
            model="reka-flash",
        )
        print(response.text)
        print(f"finish_reason={response.finish_reason} usage={response.usage}")


if __name__ == "__main__":
    asyncio.run(main())
