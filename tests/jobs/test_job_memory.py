"""What a job holds per input: bytes per entry of 100,000-entry structures, by tracemalloc.

Peaks are measured from just before the structure is built to its high-water mark, so a
temporary of the build (a growth, a sort, a list of tuples) counts; what the scan reads a line
at a time (its buffers) is a constant, well under a byte an entry at this size.
"""

from __future__ import annotations

import asyncio
import json
import os
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reka_async.jobs import JobInput, export_output, scan_output
from reka_async.jobs._export import _PARQUET_BATCH_BYTES

N = 100_000


@contextmanager
def traced() -> Iterator[Callable[[], tuple[int, int]]]:
    """``(held, peak)`` bytes allocated since entry (held: still allocated at the call)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        yield lambda: tuple(x - base for x in tracemalloc.get_traced_memory())  # type: ignore[return-value]
    finally:
        tracemalloc.stop()


def _write_output(path: Path, n: int) -> None:
    answer = "Mock reply to: Label item: is this review positive?"
    with path.open("w") as f:
        for i in range(n):
            rec = {
                "custom_id": f"id-{i:07d}",
                "line": i + 1,
                "ok": True,
                "response": {
                    "id": f"r-{i}",
                    "model": "reka-flash",
                    "text": answer,
                    "finish_reason": "stop",
                    "responses": [{"message": {"role": "assistant", "content": answer}}],
                },
                "usage": {"input_tokens": 7, "output_tokens": 10},
                "latency_s": 0.001,
                "attempts": 1,
                "cost_usd": 2.56e-05,
                "request_hash": f"sha256:{i:032x}",
            }
            f.write(json.dumps(rec) + "\n")


@pytest.fixture(scope="module")
def big_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("memory") / "out.jsonl"
    _write_output(path, N)
    return path


def test_a_resume_scan_holds_at_most_34_bytes_per_finished_record(big_output: Path) -> None:
    with traced() as memory:
        resumed = scan_output(str(big_output))
        held, peak = memory()
    # 12-byte key + 14-byte value, sized 80 % full: 32.5 bytes; the rest is per-scan constant.
    assert held / N <= 34, held / N
    assert peak / N <= 34, peak / N
    assert resumed.ok_count == N
    assert resumed.get("id-0000042") is not None


def test_the_ids_seen_on_a_first_run_take_at_most_20_bytes_each(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_text("".join(f"prompt {i}\n" for i in range(N)))
    source = JobInput(input_format="text", expected=N)

    async def read() -> int:
        fd = os.open(path, os.O_RDONLY)
        try:
            count = 0
            async for _ in source.items(fd):
                source.line_of.clear()  # as the writer pops each written result
                source.line_hash_of.clear()
                count += 1
            return count
        finally:
            os.close(fd)

    with traced() as memory:
        assert asyncio.run(read()) == N
        held, _ = memory()
    assert held / N <= 20, held / N


def test_the_ids_seen_from_standard_input_grow_within_32_bytes_each(tmp_path: Path) -> None:
    # No line count to size from (standard input): the table grows a shard at a time.
    path = tmp_path / "in.txt"
    path.write_text("".join(f"prompt {i}\n" for i in range(N)))
    source = JobInput(input_format="text")

    async def read() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            async for _ in source.items(fd):
                source.line_of.clear()
                source.line_hash_of.clear()
        finally:
            os.close(fd)

    with traced() as memory:
        asyncio.run(read())
        held, _ = memory()
    assert held / N <= 32, held / N


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_export_holds_at_most_32_bytes_per_row(
    big_output: Path, tmp_path: Path, fmt: str
) -> None:
    allowance = 0
    if fmt == "parquet":
        pytest.importorskip("pyarrow.parquet")
        # One row group in flight, as JSON lines and joined: a constant, whatever the job.
        allowance = 3 * _PARQUET_BATCH_BYTES
    # A first export imports what the format needs: modules, not rows, so it runs first.
    small = tmp_path / "small.jsonl"
    _write_output(small, 1)
    export_output(str(small), str(tmp_path / f"small.{fmt}"))
    with traced() as memory:
        rows = export_output(str(big_output), str(tmp_path / f"out.{fmt}"))
        _, peak = memory()
    assert rows == N
    # The table of last records (22.5 bytes a row) and the line -> offset index (8).
    assert (peak - allowance) / N <= 32, (peak - allowance) / N
