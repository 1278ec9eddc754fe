"""What each fast path buys: CPU per request or per chunk of the fast path against the general.

    taskset -c 1 python -m benchmarks.fastpaths               # every path, 7 paired rounds
    taskset -c 1 python -m benchmarks.fastpaths --repeat 9 --only builders,text_event

Each fast path of the client (a shortcut taken for the usual shape, with a general path
beside it for every other) is timed against the general path on the same input: the two run
alternately, ``--calls`` calls each per round, for ``--repeat`` rounds (the order flips every
round; a VM's speed drifts from second to second). A round's saving is the general path's CPU
per call minus the fast path's, times how often the path runs per request or per chunk; the
median of the rounds is printed with their spread (min-max). ``time.process_time`` counts CPU,
not wall time, so other processes on the machine matter less, but they still move caches.

The yardstick is the CPU of a whole request or chunk, measured here too (``reference``): a
plain ``chat.create`` at C=64 against the mock in another process (native and OpenAI), and a
native 64-chunk stream per chunk, each over ``--repeat`` runs, with its own run-to-run
spread. A fast path earns its place when it saves more than the run-to-run spread of a paired
request or chunk measurement (STYLE.md: "A fast path earns its place"); on a loaded machine
the spread of separate runs printed here is wider than that of the paired ratio
(``benchmarks.budget``), which ``benchmarks/README.md`` uses. No figure here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``reka_async`` importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reka_async._models import (
    ChatChunk,
    ChatResponse,
    ChunkResponse,
    Message,
    MessageResponse,
    Usage,
)
from reka_async._sse import ServerSentEvent
from reka_async._wire import _build, native
from reka_async._wire._convert import decode_event

MESSAGES = [{"role": "user", "content": "Write one short sentence about the sea."}]
CHUNKS = 64


def _native_events() -> list[dict[str, Any]]:
    """A native 64-event cumulative stream, as decoded JSON."""
    text = ""
    events = []
    for i in range(CHUNKS):
        text += f"w{i} "
        last = i == CHUNKS - 1
        events.append(
            {
                "id": "chat-1",
                "model": "reka-flash",
                "responses": [
                    {
                        "finish_reason": "stop" if last else None,
                        "chunk": {"role": "assistant", "content": text},
                    }
                ],
            }
        )
    return events


# --- the general paths, as the code takes them for any other shape ------------------------


def response_objects_fast() -> ChatResponse:
    return _build.new_chat_response(
        "chat-1",
        "reka-flash",
        [_build.new_message_response(_build.new_message("assistant", "x"), "stop")],
        _build.new_usage(12, 9),
        None,
    )


def response_objects_attrs() -> ChatResponse:
    return ChatResponse(
        id="chat-1",
        model="reka-flash",
        responses=[
            MessageResponse(message=Message(role="assistant", content="x"), finish_reason="stop")
        ],
        usage=Usage(input_tokens=12, output_tokens=9),
        request_id=None,
    )


def chunk_objects_fast() -> ChatChunk:
    _build_event("message", "{}", None, None)
    return _build.new_chat_chunk(
        "chat-1",
        "reka-flash",
        [_build.new_chunk_response(_build.new_message("assistant", "x"), None)],
        None,
        "x",
        False,
    )


def chunk_objects_attrs() -> ChatChunk:
    ServerSentEvent(event="message", data="{}", id=None, retry=None)
    return ChatChunk(
        id="chat-1",
        model="reka-flash",
        responses=[ChunkResponse(chunk=Message(role="assistant", content="x"), finish_reason=None)],
        usage=None,
        delta="x",
        rewrite=False,
    )


_build_event = _build.builder(ServerSentEvent)


def _stream_fast(events: list[dict[str, Any]]) -> None:
    from reka_async._assemble import Assembler

    assembler = Assembler()
    for data in events:
        fields = native.text_event(data)
        assert fields is not None
        assembler.feed_text(fields)


def _stream_general(events: list[dict[str, Any]]) -> None:
    from reka_async._assemble import Assembler

    assembler = Assembler()
    for data in events:
        assembler.feed(decode_event(data, "responses", native._chunk_piece, deltas=False))


#: name -> (unit, runs per unit, fast, general, what it is); each callable does one call.
Case = tuple[str, float, Callable[[], Any], Callable[[], Any], str]


def cases() -> dict[str, Case]:
    events = _native_events()
    return {
        "builders_response": (
            "request",
            1,
            response_objects_fast,
            response_objects_attrs,
            "_wire/_build.py builders: the 4 objects of a response",
        ),
        "builders_chunk": (
            "chunk",
            1,
            chunk_objects_fast,
            chunk_objects_attrs,
            "_wire/_build.py builders: the 4 objects of a stream chunk",
        ),
        "text_event": (
            "chunk",
            1 / CHUNKS,
            lambda: _stream_fast(events),
            lambda: _stream_general(events),
            "text_event/feed_text: a 64-event native stream assembled",
        ),
    }


def _time(fn: Callable[[], Any], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def measure(case: Case, *, calls: int, repeat: int) -> list[float]:
    """The per-unit saving (µs) of each round: general minus fast, interleaved."""
    _, per_unit, fast, general, _ = case
    if per_unit < 1:
        calls = max(1, int(calls * per_unit * 4))
    fast(), general()  # warm both
    savings = []
    for round_ in range(repeat):
        order = (fast, general) if round_ % 2 else (general, fast)
        got = {fn: _time(fn, calls) for fn in order}
        savings.append((got[general] - got[fast]) * per_unit)
    return savings


# --- the yardstick: CPU of a whole request and chunk ----------------------------------------


async def _requests(url: str, api: str, total: int, concurrency: int) -> float:
    from reka_async import AsyncClient

    async with AsyncClient(api_key="k", base_url=url, api=api) as client:  # type: ignore[arg-type]
        left = total

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await client.chat.create(messages=MESSAGES, model="reka-flash")  # type: ignore[arg-type]

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm the pool
        left = total
        start = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - start) / total * 1e6


async def _chunks(url: str, streams: int) -> float:
    from reka_async import AsyncClient

    prompt = " ".join(f"w{i}" for i in range(CHUNKS))
    async with AsyncClient(api_key="k", base_url=url) as client:
        count = 0
        start = 0.0
        for i in range(streams + 2):
            if i == 2:
                start, count = time.process_time(), 0
            async with client.chat.create_stream(
                messages=[{"role": "user", "content": prompt}], model="reka-flash"
            ) as stream:
                async for _ in stream:
                    count += 1
        return (time.process_time() - start) / count * 1e6


@contextlib.contextmanager
def _sock_read_timeout() -> Iterator[None]:
    from reka_async._http.options import Timeout

    plain = Timeout.to_aiohttp_plain
    Timeout.to_aiohttp_plain = Timeout.to_aiohttp  # type: ignore[method-assign]
    try:
        yield
    finally:
        Timeout.to_aiohttp_plain = plain  # type: ignore[method-assign]


def reference(repeat: int, requests: int) -> dict[str, list[float]]:
    """CPU µs per request (C=64, native and OpenAI) and per chunk, one figure per run."""
    from reka_async.testing import MockServerProcess

    server = MockServerProcess()
    url = server.start()
    try:
        out: dict[str, list[float]] = {"native": [], "openai": [], "chunk": [], "timeout": []}
        for round_ in range(repeat):
            out["native"].append(asyncio.run(_requests(url, "native", requests, 64)))
            out["openai"].append(asyncio.run(_requests(url, "openai", requests, 64)))
            out["chunk"].append(asyncio.run(_chunks(url, 20)))
            # to_aiohttp_plain (one deadline) against the stream's timeout (a sock_read timer
            # re-armed per read), interleaved with a native run of the fast path.
            fast = general = 0.0
            for side in ("general", "fast") if round_ % 2 else ("fast", "general"):
                if side == "general":
                    with _sock_read_timeout():
                        general = asyncio.run(_requests(url, "native", requests, 64))
                else:
                    fast = asyncio.run(_requests(url, "native", requests, 64))
            out["timeout"].append(general - fast)
        return out
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fastpaths")
    parser.add_argument("--repeat", type=int, default=7, help="paired rounds (>= 5)")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per side per round")
    parser.add_argument("--requests", type=int, default=3_000, help="requests per reference run")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--no-reference", action="store_true", help="skip the yardstick")
    args = parser.parse_args(argv)
    table = cases()
    chosen = [n for n in args.only.split(",") if n] or list(table)
    ref: dict[str, list[float]] = {}
    if not args.no_reference:
        ref = reference(args.repeat, args.requests)
        timeout = ref.pop("timeout")
        for name, runs in ref.items():
            med = statistics.median(runs)
            print(
                f"reference {name:>6}: {med:7.2f} µs per {'chunk' if name == 'chunk' else 'req'}"
                f" (runs {min(runs):.2f}-{max(runs):.2f}, spread {max(runs) - min(runs):.2f} µs,"
                f" {(max(runs) - min(runs)) / med * 100:.1f} %)"
            )
        med = statistics.median(timeout)
        spread = max(ref["native"]) - min(ref["native"])
        print(
            f"{'to_aiohttp_plain':>18}: saves {med:6.3f} µs per request (rounds"
            f" {min(timeout):.3f} to {max(timeout):.3f}),"
            f" {med / statistics.median(ref['native']) * 100:5.2f} % of a request;"
            f" runs' spread {spread:.2f} µs"
            f"  [one deadline for a plain request instead of a per-read timer]"
        )
    for name in chosen:
        case = table[name]
        savings = measure(case, calls=args.calls, repeat=args.repeat)
        med = statistics.median(savings)
        unit = case[0]
        line = (
            f"{name:>18}: saves {med:6.3f} µs per {unit} (rounds {min(savings):.3f}"
            f" to {max(savings):.3f})"
        )
        yard = ref.get("chunk") if unit == "chunk" else ref.get("native")
        if yard:
            ymed = statistics.median(yard)
            line += f", {med / ymed * 100:5.2f} % of a {unit}"
        print(line + f"  [{case[4]}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
