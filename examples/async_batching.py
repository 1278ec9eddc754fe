"""Async batching: the vendor's Semaphore + gather pattern, then the same job as one line.

python examples/async_batching.py --mock
"""

import asyncio

from _support import connection, parse_args

from reka_async import AsyncClient, BatchRunner

PROMPTS = [f"What is {i} squared?" for i in range(20)]


async def main() -> None:
    args = parse_args(__doc__ or "")
    async with connection(args) as conn, AsyncClient(**conn) as client:
        # 1. The pattern from the vendor's docs works unchanged with AsyncClient.
        semaphore = asyncio.Semaphore(8)

        async def ask(prompt: str) -> str:
            async with semaphore:
                response = await client.chat.create(
                    messages=[{"role": "user", "content": prompt}], model="reka-flash"
                )
                return response.text

        answers = await asyncio.gather(*(ask(p) for p in PROMPTS))
        print(f"gather: {len(answers)} answers, first: {answers[0]!r}")

        # 2. The same batch in one line: bounded memory, per-item errors, rate limits, retries.
        results = await BatchRunner(client, concurrency=8, model="reka-flash").run(PROMPTS)
        for result in results[:3]:
            print(f"{result.custom_id}: {result.text if result.ok else result.error}")
        print(f"BatchRunner: {sum(r.ok for r in results)}/{len(results)} ok")


if __name__ == "__main__":
    asyncio.run(main())
