"""Multiple turn conversations: send the history, get the next assistant turn.

python examples/multi_turn.py --mock
"""

import asyncio

from _support import connection, parse_args

from reka_async import AsyncClient, Message


async def main() -> None:
    args = parse_args(__doc__ or "")
    history: list[Message | dict[str, str]] = [
        {"role": "user", "content": "My name is Matt."},
        {"role": "assistant", "content": "Hello Matt! How can I help you today?"},
        # Plain dicts and Message models mix freely.
        Message(role="user", content="Can you remind me what my name is?"),
    ]
    async with connection(args) as conn, AsyncClient(**conn) as client:
        response = await client.chat.create(messages=history, model="reka-flash")
        print(response.responses[0].message.content)
        # Keep the conversation going by appending the reply.
        history.append(response.responses[0].message)
        history.append({"role": "user", "content": "Thanks!"})
        follow_up = await client.chat.create(messages=history, model="reka-flash")
        print(follow_up.text)


if __name__ == "__main__":
    asyncio.run(main())
