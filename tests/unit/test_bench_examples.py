"""Every ``reka-async bench`` example we print or document gives each concurrency slot at
least ten requests: a closed-loop step with fewer warns that its ramp-up and drain weigh on
the throughput (``bench/_report.py``), so an example that warns teaches the wrong habit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reka_async.cli import _epilogs

ROOT = Path(__file__).resolve().parents[2]


def _commands(text: str) -> list[str]:
    joined = re.sub(r"\\\\?\n\s*", " ", text)  # shell continuations (``\\`` in the epilogs)
    return [m.group(0) for m in re.finditer(r"reka-async bench [^\n`]*", joined)]


def _documented() -> list[tuple[str, str]]:
    found = [
        (name, command)
        for name in _epilogs.__all__
        for command in _commands(getattr(_epilogs, name))
    ]
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        if page.is_file():
            found += [(page.name, c) for c in _commands(page.read_text(encoding="utf-8"))]
    return found


def test_the_examples_are_found() -> None:
    names = {name for name, _ in _documented()}
    assert {"MAIN_EPILOG", "BENCH_EPILOG", "README.md"} <= names


@pytest.mark.parametrize(("where", "command"), _documented())
def test_each_concurrency_slot_gets_ten_requests(where: str, command: str) -> None:
    levels = re.search(r"--concurrency ([\d,]+)", command)
    count = re.search(r"--num-requests (\d+)", command)
    if not levels or not count or "--duration" in command:
        return  # an open-loop (--rate) step or a timed one: no per-slot count to check
    most = max(int(level) for level in levels.group(1).split(","))
    assert int(count.group(1)) >= 10 * most, f"{where}: {command}"
