"""Every example script runs against the mock server, in both dialects. (The Python blocks of
the README and of ``docs/`` are ``tests/docs/test_snippets.py``, run by ``nox -s docs``.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
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
