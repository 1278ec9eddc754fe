"""The message, part, tool and tool-call dicts are TypedDicts with ``Literal`` roles: a real
mypy run accepts correct code and rejects ``role="usr"`` and a misspelled ``"contnet"``; the
batch options are named for type checkers and editors too (``concurency=`` is an error)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

import reka_async

GOOD = """
from reka_async import AsyncClient, Client, ImagePart, TextPart
from reka_async.types import MessageParam, ToolParam, FunctionToolParam

async def main(client: AsyncClient) -> None:
    history: list[MessageParam] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [ImagePart(image_url="https://x/c.png"),
                                     {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "name": "look", "parameters": {"q": "cat"}}]},
        {"role": "tool_output", "content": [{"tool_call_id": "c1", "output": "a cat"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]},
    ]
    tools: list[ToolParam | FunctionToolParam] = [
        {"name": "look", "description": "Look.", "parameters": {"type": "object"}},
        {"type": "function", "function": {"name": "look2"}},
    ]
    response = await client.chat.create(messages=history, model="reka-flash", tools=tools)
    reveal_type(response.request_id)
    await client.chat.create(
        messages=[{"role": "user", "content": "hi"}], model="reka-flash", tool_choice="tool"
    )

def sync(client: Client) -> None:
    client.chat.create(messages=[{"role": "user", "content": [TextPart(text="hi")]}], model="m")
"""

BAD_ROLE = """
from reka_async import AsyncClient

async def main(client: AsyncClient) -> None:
    await client.chat.create(messages=[{"role": "usr", "content": "hi"}], model="reka-flash")
"""

BAD_KEY = """
from reka_async import AsyncClient

async def main(client: AsyncClient) -> None:
    await client.chat.create(messages=[{"role": "user", "contnet": "hi"}], model="reka-flash")
"""

BAD_PART = """
from reka_async.types import MessageParam

message: MessageParam = {"role": "user", "content": [{"type": "image", "image_url": "x"}]}
"""

BAD_TOOL_CALL = """
from reka_async.types import AssistantMessageParam

message: AssistantMessageParam = {
    "role": "assistant", "tool_calls": [{"id": "c1", "nmae": "look", "parameters": {}}]
}
"""

GOOD_BATCH = """
from reka_async import BatchRunner, Client

def run(client: Client) -> None:
    client.batch(["a"], concurrency=2, model="reka-flash", max_tokens=5, rpm=60, adaptive=False)
    with client.batch_stream(["a"], ordered=True, tpm=1000, fail_fast=True) as results:
        list(results)
"""

BAD_BATCH = """
from reka_async import Client

def run(client: Client) -> None:
    client.batch(["a"], concurency=2)
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    folder = tmp_path_factory.mktemp("snippets")
    files = {
        "good": GOOD,
        "bad_role": BAD_ROLE,
        "bad_key": BAD_KEY,
        "bad_part": BAD_PART,
        "bad_tool_call": BAD_TOOL_CALL,
        "good_batch": GOOD_BATCH,
        "bad_batch": BAD_BATCH,
    }
    for name, code in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(code))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--cache-dir",
            str(folder / ".mypy_cache"),
            *(str(folder / f"{name}.py") for name in files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
        check=False,
        # The package under test (this checkout's), not whichever one is installed.
        env={**os.environ, "MYPYPATH": str(pathlib.Path(reka_async.__file__).parent.parent)},
    )
    assert proc.returncode in (0, 1), proc.stderr  # 2 would be a crash or a usage error
    found: dict[str, list[str]] = {name: [] for name in files}
    for line in proc.stdout.splitlines():
        match = re.match(r"(?:.*/)?(\w+)\.py:\d+: (\w+): (.*)", line)
        if match:
            found[match.group(1)].append(f"{match.group(2)}: {match.group(3)}")
    return found


def test_correct_messages_type_check(mypy_output: dict[str, list[str]]) -> None:
    errors = [line for line in mypy_output["good"] if line.startswith("error")]
    assert errors == []
    assert mypy_output["good_batch"] == []
    assert any(
        re.search(r'Revealed type is "(builtins\.)?str \| None"', line)
        for line in mypy_output["good"]
    ), mypy_output["good"]


@pytest.mark.parametrize("name", ["bad_role", "bad_key", "bad_part", "bad_tool_call", "bad_batch"])
def test_mistakes_are_type_errors(mypy_output: dict[str, list[str]], name: str) -> None:
    errors = [line for line in mypy_output[name] if line.startswith("error")]
    assert errors, f"mypy accepted {name}"


def test_the_error_points_at_the_message(mypy_output: dict[str, list[str]]) -> None:
    # mypy reports a dict that fits no role's shape against the union of message shapes.
    assert any("UserMessageParam" in line for line in mypy_output["bad_role"]), mypy_output
    assert any("UserMessageParam" in line for line in mypy_output["bad_key"]), mypy_output
    assert any('"concurency"' in line for line in mypy_output["bad_batch"]), mypy_output
