"""CPU per request and per chunk of two checkouts, side by side: the budget of a change.

    git worktree add /tmp/before <base-commit>
    taskset -c 1 python -m benchmarks.budget --before /tmp/before --repeat 15

Both versions of the package run in this one process: the ``--before`` checkout's
``reka_async`` is copied under another name (``reka_async_before``; the package imports
itself relatively, so it runs as it is) and the current one is imported as usual. Against the
mock server in another process each side measures, in turn, the client CPU per plain
``chat.create`` at C=64 on the native dialect and on the OpenAI one, and per chunk of a native
64-chunk stream (``time.process_time``, so the server's CPU is not counted). The sides
alternate in short rounds, the order flipping every round, so a machine whose speed drifts
(a VM, other work) moves both alike; each round gives an after/before ratio, and the median
ratio is printed with the quartiles and the range of the rounds. Only public API is used, so
any checkout can be measured. No figure here is asserted anywhere.

On a machine shared with other work, CPU time moves by more than a budget of 5 %. ``--instructions``
counts instead: each side runs in a child process under valgrind's callgrind (Debian's
``valgrind``), once with few requests and once with many, and the difference of the two
instruction counts over the difference of the requests is the instructions one request (or
chunk) costs, whatever else the machine runs; repeated ``--repeat`` times (the rounds differ
only by how the event loop happens to batch the answers). Each child collects and freezes
(``gc.freeze``) what its imports left before its requests: otherwise one full collection
falling in one run and not the other moved a count by 15,000 instructions a request:

    python -m benchmarks.budget --before /tmp/before --instructions --repeat 5

The sides alternate in each round's order, and the ratio is taken per round. The count still
moves with the machine's load, by a few per cent: a client that finds no answer in yet polls
again (the mock server is given a higher priority where that is allowed, which narrows it).
``--in-process`` answers through each checkout's ``MockTransport`` instead, no sockets and no
server: the client's own code alone, a count that is the same run after run, whose difference
between the checkouts is what a change adds to a request over the network too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``reka_async`` importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MESSAGES = [{"role": "user", "content": "Write one short sentence about the sea."}]
CHUNKS = 64


async def _requests(pkg: Any, url: str, api: str, total: int, concurrency: int) -> float:
    async with pkg.AsyncClient(api_key="k", base_url=url, api=api) as client:  # type: ignore[arg-type]
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


async def _chunks(pkg: Any, url: str, streams: int) -> float:
    prompt = " ".join(f"w{i}" for i in range(CHUNKS))
    async with pkg.AsyncClient(api_key="k", base_url=url) as client:
        count, start = 0, 0.0
        for i in range(streams + 2):  # two streams of warm-up
            if i == 2:
                start, count = time.process_time(), 0
            async with client.chat.create_stream(
                messages=[{"role": "user", "content": prompt}], model="reka-flash"
            ) as stream:
                async for _ in stream:
                    count += 1
        return (time.process_time() - start) / count * 1e6


def measure_one(pkg: Any, url: str, requests: int, streams: int) -> dict[str, float]:
    """One side of a round: µs per request (native, OpenAI) and per chunk."""
    return {
        "native": asyncio.run(_requests(pkg, url, "native", requests, 64)),
        "openai": asyncio.run(_requests(pkg, url, "openai", requests, 64)),
        "chunk": asyncio.run(_chunks(pkg, url, streams)),
    }


_OPENAI_RAW = (
    b'{"id":"chatcmpl-1","object":"chat.completion","model":"reka-flash","choices":[{"index":0,'
    b'"finish_reason":"stop","message":{"role":"assistant","content":"The sea is wide."}}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}'
)
_NATIVE_RAW = (
    b'{"id":"c","model":"reka-flash","responses":[{"finish_reason":"stop","message":'
    b'{"role":"assistant","content":"The sea is wide."}}],"usage":{"input_tokens":12,'
    b'"output_tokens":9}}'
)


def _stream_raw() -> bytes:
    """A native cumulative stream of ``CHUNKS`` events, as the mock sends it."""
    events, text = [], ""
    for i in range(CHUNKS):
        text += f"w{i} "
        reason = '"stop"' if i == CHUNKS - 1 else "null"
        events.append(
            f'data: {{"id":"c","model":"reka-flash","responses":[{{"finish_reason":{reason},'
            f'"chunk":{{"role":"assistant","content":"{text}"}}}}]}}\n\n'
        )
    return "".join(events).encode()


def wire_us(pkg: Any, api: str, calls: int) -> float:
    """CPU µs of a request's wire work alone: the body from ``chat.create``'s keywords,
    encoded for ``api``, and an answer decoded (private modules: this repository's
    checkouts only)."""
    w = importlib.import_module(f"{pkg.__name__}._wire")
    request, openai, native = (
        importlib.import_module(f"{w.__name__}.{name}") for name in ("request", "openai", "native")
    )
    args = {"model": "reka-flash", "messages": MESSAGES}
    if api == "chunk":
        sse = importlib.import_module(f"{pkg.__name__}._sse")
        assemble = importlib.import_module(f"{pkg.__name__}._assemble")
        raw = _stream_raw()
        rounds = max(1, calls // CHUNKS)
        start = time.process_time()
        for _ in range(rounds):
            assembler = assemble.Assembler()
            for event in sse.SSEDecoder().feed(raw):
                fields = native.text_event(w.loads(event.data))
                assembler.feed_text(fields)
        return (time.process_time() - start) / (rounds * CHUNKS) * 1e6
    start = time.process_time()
    for _ in range(calls):
        body = request.chat_body(args, stream=False, what="create")
        if api == "openai":
            w.dumps(openai.to_openai_body(body))
            openai.load_completion(_OPENAI_RAW)
        else:
            w.dumps(body)
            native.load_chat_response(_NATIVE_RAW)
    return (time.process_time() - start) / calls * 1e6


def load_before(checkout: str) -> Any:
    """The ``reka_async`` of ``checkout``, imported as ``reka_async_before``."""
    source = Path(checkout).resolve() / "reka_async"
    if not (source / "__init__.py").is_file():
        raise SystemExit(f"--before: {checkout} holds no reka_async package")
    target = Path(tempfile.mkdtemp(prefix="reka-budget-"))
    shutil.copytree(source, target / "reka_async_before")
    sys.path.insert(0, str(target))
    return importlib.import_module("reka_async_before")


IN_PROCESS = "in-process"  # the ``url`` of a child that answers through ``MockTransport``


def _client(pkg: Any, url: str, api: str) -> Any:
    """A client of ``pkg`` for the mock at ``url``, or (``IN_PROCESS``) one answered in the
    process by the package's own ``MockTransport``: the client's code alone, no sockets."""
    if url != IN_PROCESS:
        return pkg.AsyncClient(api_key="k", base_url=url, api="native" if api == "chunk" else api)
    testing = importlib.import_module(f"{pkg.__name__}.testing")
    if api == "chunk":
        frames = [f"{event}\n\n".encode() for event in _stream_raw().decode().split("\n\n")[:-1]]
        answer = testing.MockResponse(chunks=frames)
    else:
        raw = _OPENAI_RAW if api == "openai" else _NATIVE_RAW
        answer = testing.MockResponse(content=raw, headers={"content-type": "application/json"})
    return pkg.AsyncClient(
        api_key="k",
        base_url="https://api.example/v1",
        api="native" if api == "chunk" else api,
        transport=testing.MockTransport(lambda request: answer),
    )


async def _run_requests(pkg: Any, url: str, api: str, total: int, concurrency: int) -> None:
    async with _client(pkg, url, api) as client:
        left = total

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await client.chat.create(messages=MESSAGES, model="reka-flash")  # type: ignore[arg-type]

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _run_streams(pkg: Any, url: str, streams: int) -> None:
    prompt = " ".join(f"w{i}" for i in range(CHUNKS))
    async with _client(pkg, url, "chunk") as client:
        for _ in range(streams):
            async with client.chat.create_stream(
                messages=[{"role": "user", "content": prompt}], model="reka-flash"
            ) as stream:
                async for _ in stream:
                    pass


def drive(side: str, url: str, api: str, count: int) -> None:
    """The child of ``--instructions``: ``count`` requests (or streams, for ``chunk``) of
    one side, nothing else."""
    pkg = load_before(side) if side != "after" else importlib.import_module("reka_async")
    # No automatic collection while counting: under callgrind, a collection or two more in
    # the run of many requests than in the run of few (their timing follows the event
    # loop's, which the slowed process changes) moved a side's count by 15,000 instructions
    # a request, in either direction. Outside valgrind the collector costs 0.2-0.5 µs of a
    # request's 90-140, on either side (``--gc`` times it through ``gc.callbacks``).
    gc.collect()
    gc.freeze()
    report = os.environ.get("BUDGET_GC") == "1"
    if report:
        spent = [0.0, 0.0, 0.0]  # seconds collecting, collections, the current one's start

        def timed(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                spent[2] = time.perf_counter()
            else:
                spent[0] += time.perf_counter() - spent[2]
                spent[1] += 1

        gc.callbacks.append(timed)
    else:
        gc.disable()
    if api == "chunk":
        asyncio.run(_run_streams(pkg, url, count))
    else:
        asyncio.run(_run_requests(pkg, url, api, count, 64))
    if report:
        print(f"gc {spent[0] / count * 1e6:.4f} {spent[1] / count * 1000:.2f}")


def gc_cost(before: str, repeat: int, only: Sequence[str]) -> int:
    """``--gc``: the collector's CPU µs per request (or stream), timed through
    ``gc.callbacks`` in children that run 6,000 requests (100 streams) outside valgrind."""
    from reka_async.testing import MockServerProcess

    server = MockServerProcess()
    url = server.start()
    try:
        for api in only:
            count = 100 if api == "chunk" else 6000
            for round_ in range(repeat):
                sides = (("before", before), ("after", "after"))
                for side, path in sides if round_ % 2 == 0 else sides[::-1]:
                    done = _child([], path, url, api, count, {"BUDGET_GC": "1"})
                    us, per_1000 = done.stdout.split()[-2:]
                    unit = "stream" if api == "chunk" else "request"
                    print(
                        f"{api:>6} round {round_ + 1} {side:>6}: the collector {float(us):.3f} µs"
                        f" per {unit}, {float(per_1000):.2f} collections per 1,000"
                    )
    finally:
        server.stop()
    return 0


def _child(
    prefix: list[str], side: str, url: str, api: str, count: int, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """One ``--drive`` child of ``side`` (under ``prefix``, e.g. valgrind), its output kept."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "benchmarks.budget", "--drive", side, url, api, str(count)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        # One string hash for every run: a random seed moves dict and set work by about
        # 2,000 instructions a request from run to run (measured in-process).
        env={**os.environ, "PYTHONHASHSEED": "0", **env},
    )


def _instructions(side: str, url: str, api: str, count: int) -> int:
    callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    done = _child(callgrind, side, url, api, count, {})
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"valgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found[1])


def instructions(
    before: str,
    repeat: int,
    only: Sequence[str] = ("native", "openai", "chunk"),
    in_process: bool = False,
) -> int:
    """``--instructions``: instructions per request (native, OpenAI) and per chunk (``only``:
    the measures to take)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    from reka_async.testing import MockServerProcess

    # (api, few, many, units per count): a stream is CHUNKS chunks.
    plan = (("native", 200, 1200, 1), ("openai", 200, 1200, 1), ("chunk", 5, 35, CHUNKS))
    server = MockServerProcess()
    url = IN_PROCESS if in_process else server.start()
    if not in_process:
        # A starved server makes the client poll for answers not in yet, instructions that
        # grow with the machine's load: the server is run ahead of other work where allowed.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, server.process.pid, -10)
    try:
        for api, few, many, units in plan:
            if api not in only:
                continue
            per: dict[str, list[float]] = {"before": [], "after": []}
            for round_ in range(repeat):
                sides = (("before", before), ("after", "after"))
                for side, path in sides if round_ % 2 == 0 else sides[::-1]:
                    low = _instructions(path, url, api, few)
                    high = _instructions(path, url, api, many)
                    per[side].append((high - low) / ((many - few) * units))
            b, a = statistics.median(per["before"]), statistics.median(per["after"])
            ratios = [x / y for x, y in zip(per["after"], per["before"], strict=True)]
            unit = "chunk" if api == "chunk" else "request"
            print(
                f"{api:>6}: before {b:9.0f} instructions per {unit}, after {a:9.0f};"
                f" after/before, paired by round: median {statistics.median(ratios):.3f}"
                f" (rounds {min(ratios):.3f}-{max(ratios):.3f}; sides: before"
                f" {min(per['before']):.0f}-{max(per['before']):.0f}, after"
                f" {min(per['after']):.0f}-{max(per['after']):.0f}; {repeat} rounds)"
            )
    finally:
        server.stop()
    return 0


def _quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], q[2]


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--drive"]:  # the child of --instructions
        side, url, api, count = argv[1:5]
        drive(side, url, api, int(count))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.budget")
    parser.add_argument("--before", required=True, help="the checkout before the change")
    parser.add_argument("--repeat", type=int, default=15, help="paired rounds (>= 5)")
    parser.add_argument("--requests", type=int, default=1_000, help="requests per side and API")
    parser.add_argument("--streams", type=int, default=10, help="streams per side")
    parser.add_argument(
        "--wire",
        action="store_true",
        help="the wire work alone instead (body, encode, decode; a stream's events decoded)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind instead of timing (see the module docstring)",
    )
    parser.add_argument(
        "--only",
        default="native,openai,chunk",
        help="with --instructions: the measures to take (comma-separated)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="with --instructions: answer through MockTransport, no sockets (the client's code)",
    )
    parser.add_argument(
        "--gc",
        action="store_true",
        help="time the garbage collector's share of a request instead (outside valgrind)",
    )
    args = parser.parse_args(argv)
    if args.gc:
        return gc_cost(args.before, args.repeat, args.only.split(","))
    if args.instructions:
        return instructions(args.before, args.repeat, args.only.split(","), args.in_process)
    import reka_async
    from reka_async.testing import MockServerProcess

    sides = {"before": load_before(args.before), "after": reka_async}
    print(f"before: {sides['before'].__file__}\nafter: {reka_async.__file__}")
    if args.wire:
        for api in ("native", "openai", "chunk"):
            diffs = []
            for round_ in range(args.repeat):
                order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                got = {side: wire_us(sides[side], api, 20_000) for side in order}
                diffs.append(got["after"] - got["before"])
            print(
                f"wire {api}: after - before {statistics.median(diffs):+.3f} µs per"
                f" {'chunk' if api == 'chunk' else 'request'}"
                f" (rounds {min(diffs):+.3f} to {max(diffs):+.3f}, {args.repeat} rounds)"
            )
        return 0
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    server = MockServerProcess()
    url = server.start()
    try:
        for side in sides:  # warm both: the pool, the imports, the mock
            measure_one(sides[side], url, 200, 2)
        for round_ in range(args.repeat):
            for side in ("before", "after") if round_ % 2 == 0 else ("after", "before"):
                runs[side].append(measure_one(sides[side], url, args.requests, args.streams))
    finally:
        server.stop()
    for key, unit in (("native", "request"), ("openai", "request"), ("chunk", "chunk")):
        before = [r[key] for r in runs["before"]]
        after = [r[key] for r in runs["after"]]
        ratios = [a / b for a, b in zip(after, before, strict=True)]
        low, high = _quartiles(ratios)
        print(
            f"{key:>6}: before {statistics.median(before):7.2f} µs per {unit}, after"
            f" {statistics.median(after):7.2f}; after/before median {statistics.median(ratios):.3f}"
            f" (quartiles {low:.3f}-{high:.3f}, rounds {min(ratios):.3f}-{max(ratios):.3f},"
            f" {len(ratios)} rounds)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
