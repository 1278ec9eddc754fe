"""``chat.create``'s ``stream=`` overloads, checked by a real mypy run: ``stream=True`` is a
stream, no ``stream`` or ``stream=False`` a ``ChatResponse``, a plain ``bool`` either; on the
async and the sync client."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

SNIPPET = """
from reka_async import AsyncClient, Client
from reka_async.types import MessageParam

M: list[MessageParam] = [{"role": "user", "content": "hi"}]

async def main(client: AsyncClient, flag: bool) -> None:
    reveal_type(await client.chat.create(messages=M, model="m", stream=True))
    reveal_type(await client.chat.create(messages=M, model="m"))
    reveal_type(await client.chat.create(messages=M, model="m", stream=False))
    reveal_type(await client.chat.create(messages=M, model="m", stream=flag))

def sync(client: Client) -> None:
    reveal_type(client.chat.create(messages=M, model="m", stream=True))
    reveal_type(client.chat.create(messages=M, model="m"))
"""


def test_the_overloads_give_the_right_types(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(textwrap.dedent(SNIPPET))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "snippet.py",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
        # The package of this checkout, not whichever one the environment installed.
        env={**os.environ, "MYPYPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.returncode in (0, 1), proc.stderr
    revealed = re.findall(r'Revealed type is "([^"]+)"', proc.stdout)
    assert [name.split(".")[-1] for name in revealed[:3]] == [
        "AsyncChatStream",
        "ChatResponse",
        "ChatResponse",
    ], proc.stdout
    assert "ChatResponse" in revealed[3], proc.stdout
    assert "AsyncChatStream" in revealed[3], proc.stdout
    assert [name.split(".")[-1] for name in revealed[4:]] == ["ChatStream", "ChatResponse"]
    assert "error" not in proc.stdout, proc.stdout
