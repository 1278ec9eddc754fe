"""Every Python block of the README and of ``docs/`` runs as it is against the mock server.

A block fenced ```` ```python ```` is run, in a subprocess of its own, with ``REKA_BASE_URL`` and
``REKA_API_KEY`` pointing at a ``MockRekaServer`` (what "every snippet offline" in
``docs/getting-started.md`` tells a reader to do by hand). A block that cannot run here is
fenced ```` ```py ````, shown only, and listed in ``SHOWN_ONLY`` with the reason. ``nox -s docs``
runs this file once, outside the per-Python ``tests`` sessions.
"""

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
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_RUN = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)
_SHOWN = re.compile(r"^```py\n", flags=re.M)

#: The blocks shown but not run, by page: how many, and why.
SHOWN_ONLY = {
    "docs/guides/client.md": (1, "proxies and a connector bound to a local address"),
    "docs/guides/ray.md": (1, "needs Ray and a local cluster: tests/ray runs the same calls"),
}


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        for index, code in enumerate(_RUN.findall(page.read_text(encoding="utf-8"))):
            found.append((_name(page), index, code))
    return found


BLOCKS = _blocks()


@pytest.fixture(scope="module")
def mock_env() -> Iterator[dict[str, str]]:
    with MockRekaServer.in_thread(api_key="docs-key") as server:
        env = dict(os.environ)
        env["REKA_API_KEY"] = "docs-key"
        env["REKA_BASE_URL"] = server.base_url
        yield env


def test_the_readme_and_the_guides_have_python_blocks() -> None:
    pages = {page for page, _, _ in BLOCKS}
    assert "README.md" in pages
    assert len([p for p in pages if p.startswith("docs/guides/")]) >= 10


def test_every_block_that_is_not_run_is_listed_with_a_reason() -> None:
    shown = {_name(p): len(_SHOWN.findall(p.read_text(encoding="utf-8"))) for p in PAGES}
    assert {page: n for page, n in shown.items() if n} == {
        page: n for page, (n, _) in SHOWN_ONLY.items()
    }


@pytest.mark.parametrize(("page", "index", "code"), BLOCKS, ids=[f"{p}:{i}" for p, i, _ in BLOCKS])
def test_python_block_runs_against_the_mock(
    page: str, index: int, code: str, mock_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=mock_env,
        check=False,
    )
    assert proc.returncode == 0, f"{page}, block {index} failed:\n{code}\n{proc.stderr}"
