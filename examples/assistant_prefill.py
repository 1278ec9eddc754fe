"""Assistant completions: prefill the start of the answer and stop after the code block.

python examples/assistant_prefill.py --mock
"""

import asyncio

from _support import connection, parse_args

from reka_async import AsyncClient


async def main() -> None:
    args = parse_args(__doc__ or "")
    prefix = "```json\n"
    async with connection(args) as conn, AsyncClient(**conn) as client:
        response = await client.chat.create(
            messages=[
                {
                    "role": "user",
                    "content": 'Give me a JSON object with the key "answer" and a short answer '
                    "to: what is the tallest mountain on Earth?",
                },
                # The last message is the assistant's: the model continues it.
                {"role": "assistant", "content": prefix},
            ],
            model="reka-flash",
            stop=["```\n"],
        )
        # The reply holds only the continuation; put the prefix back to see the whole answer.
        print(prefix + response.text)
        print(f"finish_reason={response.finish_reason}")


if __name__ == "__main__":
    asyncio.run(main())
