"""The input reader's thread never reads a file descriptor its caller closed.

A job that stops early (a budget, the breaker) closes its input while the reader thread is
between two reads; the next ``open`` in the process (a resume, in a notebook) may get the same
number. A thread reading the caller's number then read the next job's input into a generator
nobody consumed: the resume found its input empty and ended "done" with nothing sent.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from reka_async.jobs._read import read_lines


async def test_a_closed_readers_thread_cannot_steal_the_next_files_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"a\n" * 10)
    second.write_bytes(b"".join(b"line %d\n" % i for i in range(50)))
    real_read = os.read
    gate, parked = threading.Event(), threading.Event()
    calls = 0

    def gated_read(fd: int, n: int) -> bytes:
        # The first reader's second read waits until the test has closed its descriptor and
        # opened the next file (the schedule that lost a resume's input).
        nonlocal calls
        if threading.current_thread().name == "reka-async-input":
            calls += 1
            if calls == 2:
                parked.set()
                gate.wait(10)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", gated_read)
    fd = os.open(first, os.O_RDONLY)
    lines = read_lines(fd)
    assert await anext(lines) == [b"a"] * 10
    await asyncio.to_thread(parked.wait, 10)  # the thread is between its reads
    await lines.aclose()
    os.close(fd)
    reused = os.open(second, os.O_RDONLY)
    try:
        gate.set()  # the old thread goes on now, with the number reused
        monkeypatch.setattr(os, "read", real_read)
        got = [line async for batch in read_lines(reused) for line in batch]
    finally:
        os.close(reused)
    assert got == [b"line %d" % i for i in range(50)]


async def test_the_reader_closes_its_own_descriptor_when_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"x\ny\n")
    before = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    fd = os.open(path, os.O_RDONLY)
    try:
        got = [line async for batch in read_lines(fd) for line in batch]
    finally:
        os.close(fd)
    assert got == [b"x", b"y"]
    for thread in threading.enumerate():
        if thread.name == "reka-async-input":
            await asyncio.to_thread(thread.join, 10)
    if before is not None:
        assert set(os.listdir("/proc/self/fd")) <= before
