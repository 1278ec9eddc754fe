"""Where the plain request's cost over raw aiohttp goes: ``python -m benchmarks.decompose``.

Five ways to make the same request, each a layer more of ``reka_async``, alternate in one
process (C=64, slices of 0.5 s, the order flipping each round) against the mock server in its
own process, so the machine's drift cancels as in the paired runs. Printed: client CPU per
request and its ratio to the first.

* ``raw``: raw aiohttp posting a pre-serialised body, ``json.loads`` of the answer (the
  benchmark's physical limit, ``aiohttp_raw``).
* ``transport``: the same body through ``Transport.send`` (retries machinery, error
  mapping, rate-limit headers, the stale-connection check), ``json.loads`` of the answer.
* ``typed_parse``: the same, the answer structured into a ``ChatResponse``.
* ``send_body``: a body dict serialised per request and the typed answer
  (``client.chat.send_body``, what ``BatchRunner`` calls).
* ``create``: the full path, ``client.chat.create(messages=..., model=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import API_KEY, MODEL, PROMPT, MockServerProcess, cpu_plan, pin_self


async def _measure(url: str, *, concurrency: int, rounds: int, slice_s: float) -> None:
    import aiohttp

    from reka_async import AsyncClient
    from reka_async._wire.native import load_chat_response

    messages = [{"role": "user", "content": PROMPT}]
    body = {"model": MODEL, "messages": messages}
    data = json.dumps(body).encode()
    headers = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=headers)
    client = AsyncClient(api_key=API_KEY, base_url=url, max_connections=1024)
    transport = client._transport
    opts = transport.default_options

    async def raw() -> None:
        async with session.post(url + "/chat", data=data) as resp:
            answer = await resp.read()
        json.loads(answer)

    async def through_transport() -> None:
        await transport.send(
            transport.call(
                "POST", "/chat", body=data, opts=opts, parse=lambda raw, rid: json.loads(raw)
            )
        )

    async def typed_parse() -> None:
        await transport.send(
            transport.call("POST", "/chat", body=data, opts=opts, parse=load_chat_response)
        )

    async def send_body() -> None:
        await client.chat.send_body(body)

    async def create() -> None:
        await client.chat.create(messages=messages, model=MODEL)

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "raw": raw,
        "transport": through_transport,
        "typed_parse": typed_parse,
        "send_body": send_body,
        "create": create,
    }
    totals = {name: [0, 0.0] for name in ways}

    async def run_slice(call: Callable[[], Awaitable[None]], seconds: float) -> tuple[int, float]:
        done = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await call()
                done += 1

        cpu = time.process_time()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return done, time.process_time() - cpu

    try:
        for call in ways.values():  # warm-up: connections open for every way
            await run_slice(call, slice_s)
        gc.collect()
        names = list(ways)
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                done, cpu = await run_slice(ways[name], slice_s)
                totals[name][0] += done
                totals[name][1] += cpu
    finally:
        await session.close()
        await client.aclose()
    base = totals["raw"][1] / totals["raw"][0]
    print(f"# C={concurrency}, {rounds} rounds of {slice_s} s per way")
    for name, (done, cpu) in totals.items():
        per = cpu / done
        print(f"{name:<12} {per * 1e6:7.1f} µs CPU/request  {per / base:6.3f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decompose")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--slice", type=float, default=0.5)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args(argv)
    server_cpu, client_cpu, note = cpu_plan(not args.no_pin)
    print(f"# {note}")
    with MockServerProcess(cpu=server_cpu) as server:
        pin_self(client_cpu)
        asyncio.run(
            _measure(
                server.url, concurrency=args.concurrency, rounds=args.rounds, slice_s=args.slice
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
