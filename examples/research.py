"""Research: a web-searching answer with its reasoning steps and citations.

Research lives on the OpenAI-compatible endpoint, so this call goes there whatever the
client's default dialect is.

    python examples/research.py --mock
"""

import asyncio

from _support import connection, parse_args

from reka_async import AsyncClient, Research, WebSearch


async def main() -> None:
    args = parse_args(__doc__ or "")
    async with connection(args) as conn, AsyncClient(**conn) as client:
        response = await client.chat.create(
            messages=[{"role": "user", "content": "What changed in Python 3.13?"}],
            model="reka-flash-research",
            research=Research(web_search=WebSearch(max_uses=3, blocked_domains=["example.org"])),
        )
        message = response.responses[0].message
        print(message.text)
        for step in message.reasoning_steps or ():
            if step.tool_calls:
                for call in step.tool_calls:
                    print(f"step: {call.name}({call.parameters})")
            elif step.tool_name:
                print(f"step: {step.tool_name} returned {len(step.tool_output or ())} result(s)")
        for note in message.annotations or ():
            if note.url_citation is not None:
                print(f"citation: {note.url_citation.url}")
        print(f"citations={len(message.annotations or ())}")


if __name__ == "__main__":
    asyncio.run(main())
