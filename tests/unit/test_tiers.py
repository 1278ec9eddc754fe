"""The slow tier is an explicit list (``tests/conftest.py``'s ``SLOW``): every entry names a
test file, or a test of one, that exists, and gives its reason."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import SLOW

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("prefix", sorted(SLOW))
def test_every_slow_entry_names_a_test_that_exists(prefix: str) -> None:
    path, _, name = prefix.partition("::")
    source = ROOT / path
    assert source.is_file(), f"{prefix}: no such file"
    if name:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        functions = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        assert name in functions, f"{prefix}: no test {name} in {path}"
    assert len(SLOW[prefix]) > 10, f"{prefix}: say why it is slow"


def test_the_slow_tier_is_marked(request: pytest.FixtureRequest) -> None:
    markers = request.config.getini("markers")
    assert any(m.startswith("slow:") for m in markers)
    assert "not slow" in " ".join(request.config.getini("addopts"))
