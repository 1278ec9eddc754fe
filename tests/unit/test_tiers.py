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


def _third_party_tests() -> tuple[str, ...]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "THIRD_PARTY_TESTS" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, tuple)
            return value
    raise AssertionError("noxfile.py has no THIRD_PARTY_TESTS")


def test_parquet_is_tested_where_the_full_extra_is_installed() -> None:
    # A test that skips without pyarrow skipped on every Python while pyarrow was in no test
    # extra: the Parquet tests import it outright and run where `test-full` installs it.
    tomllib = pytest.importorskip("tomllib")  # 3.11+: the check runs on the newer Pythons

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert any(dep.startswith("pyarrow") for dep in extras["test-full"])
    assert "tests/cli/test_parquet_output.py" in _third_party_tests()
    assert "importorskip" not in (ROOT / "tests/cli/test_parquet_output.py").read_text()


def test_every_third_party_test_exists() -> None:
    for path in _third_party_tests():
        assert (ROOT / path).is_file(), f"noxfile.py THIRD_PARTY_TESTS: no such file {path}"
