"""Every example script and every Python block of the README runs against the mock server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reka_async.testing import MockRekaServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))

EXPECTED = {
    "quickstart.py": "Mock reply to: What is the fifth prime number?",
    "single_turn.py": "Mock reply to: What is the capital of the UK?",
    "multi_turn.py": "Mock reply to: Can you remind me what my name is?",
    "assistant_prefill.py": '{"answer": "mock"}',
    "parameters.py": "finish_reason=stop",
    "streaming.py": "assembled: 'Mock reply to: Write a haiku",
    "async_batching.py": "BatchRunner: 20/20 ok",
    "sync_batching.py": "20/20 ok",
    "research.py": "citation: https://",
    "structured_output.py": "parsed: City name=",
    "tool_calling.py": "round trip finished: stop",
    "tool_loop.py": "finished after 2 rounds",
    "opentelemetry_tracing.py": "span chat reka-flash: system=reka usage=(",
}


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_every_example_has_an_expectation() -> None:
    assert {p.name for p in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("api", ["native", "openai"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_against_the_mock(path: Path, api: str) -> None:
    proc = _run([str(path), "--mock", "--api", api])
    assert proc.returncode == 0, proc.stderr
    assert EXPECTED[path.name] in proc.stdout


def test_prefill_example_stops_after_the_code_block() -> None:
    proc = _run([str(ROOT / "examples" / "assistant_prefill.py"), "--mock"])
    assert proc.returncode == 0, proc.stderr
    # The stop sequence itself is not part of the answer.
    assert proc.stdout.count("```") == 1


@pytest.fixture(scope="module")
def mock_env() -> Iterator[dict[str, str]]:
    with MockRekaServer.in_thread(api_key="readme-key") as server:
        env = dict(os.environ)
        env["REKA_API_KEY"] = "readme-key"
        env["REKA_BASE_URL"] = server.base_url
        yield env


def _readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_python_examples() -> None:
    assert len(_readme_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_readme_python_block_runs(index: int, mock_env: dict[str, str]) -> None:
    code = _readme_blocks()[index]
    proc = _run(["-c", code], env=mock_env)
    assert proc.returncode == 0, f"README block {index} failed:\n{code}\n{proc.stderr}"
