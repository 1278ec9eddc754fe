"""What making a whole read's chunks at once costs, against making each when it is asked for.

    python -m benchmarks.chunks_ahead                   # 64- and 1,000-chunk native delta streams
    python -m benchmarks.chunks_ahead --chunks 64 4000  # other lengths

A long stream over loopback arrives in large reads (256 kB), a thousand events each. The
stream's own loop hands out one chunk per event; this script replays the same work outside
the network: it captures a native delta stream from the mock, feeds it in ``--read``-byte
reads through ``SSEDecoder``, the native ``text_event`` and the ``Assembler``, and either
keeps every chunk of a read in a queue before handing them out ("ahead", what
``AsyncChatStream`` did before) or drops each as it is made ("on demand", what it does now).
Prints the CPU µs per chunk of each, best of ``--repeat`` rounds in which the two alternate
(a VM's speed drifts from second to second), and their ratio. Pin it (``taskset -c 1``) for
steadier figures. No figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``reka_async`` importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from reka_async._assemble import Assembler
from reka_async._models import ChatChunk
from reka_async._sse import SSEDecoder
from reka_async._wire import loads
from reka_async._wire.native import text_event
from reka_async.testing import MockRekaServer


async def capture(chunks: int) -> bytes:
    """The raw body of a native delta stream of ``chunks`` text chunks, from the mock."""
    prompt = " ".join(f"w{i}" for i in range(chunks))
    body = {
        "model": "reka-flash",
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
    }
    async with MockRekaServer(native_stream="delta") as server, aiohttp.ClientSession() as session:
        url = server.base_url + "/chat"
        async with session.post(url, json=body, headers={"X-Api-Key": "k"}) as resp:
            return await resp.read()


def replay(raw: bytes, read: int, *, ahead: bool) -> int:
    """Decode and assemble ``raw`` in ``read``-byte reads; return the chunks handed out."""
    decoder = SSEDecoder()
    assembler = Assembler()
    queue: collections.deque[ChatChunk] = collections.deque()
    handed = 0
    for start in range(0, len(raw), read):
        for event in decoder.feed(raw[start : start + read]):
            if event.data == "[DONE]":
                continue
            fields = text_event(loads(event.data))
            assert fields is not None
            chunk = assembler.feed_text(fields)
            if chunk is None:
                continue
            if ahead:
                queue.append(chunk)
            else:
                handed += 1
        while queue:
            queue.popleft()
            handed += 1
    return handed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chunks_ahead")
    parser.add_argument("--chunks", type=int, nargs="+", default=[64, 1000])
    parser.add_argument("--read", type=int, default=256 * 1024, help="bytes per read")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    for chunks in args.chunks:
        raw = asyncio.run(capture(chunks))
        best = {True: float("inf"), False: float("inf")}
        handed = 0
        for round_ in range(args.repeat):  # the two ways alternate: a VM's speed drifts
            for ahead in (True, False) if round_ % 2 else (False, True):
                start = time.process_time()
                handed = replay(raw, args.read, ahead=ahead)
                best[ahead] = min(best[ahead], time.process_time() - start)
        ahead_us, demand_us = (best[way] / handed * 1e6 for way in (True, False))
        print(
            f"{chunks:>6} chunks: ahead {ahead_us:6.2f} µs per chunk, on demand"
            f" {demand_us:6.2f} µs per chunk, ahead / on demand {ahead_us / demand_us:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
