"""Every runtime dependency declared in ``pyproject.toml`` is imported by the package."""

from __future__ import annotations

import ast
import pathlib
import re

import reka_async

PACKAGE = pathlib.Path(reka_async.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"
#: Distribution name -> the top-level module it provides, where the two differ.
MODULE_OF: dict[str, str] = {}


def declared_dependencies(text: str) -> list[str]:
    """The distribution names of ``[project] dependencies`` (no tomllib on Python 3.10)."""
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.MULTILINE | re.DOTALL)
    assert block is not None, "no dependencies list in pyproject.toml"
    specs = re.findall(r'^\s*"([^"]+)"', block.group(1), re.MULTILINE)
    return [re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower() for spec in specs]


def imported_top_levels() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_the_dependency_list_is_read() -> None:
    assert declared_dependencies(
        'x\ndependencies = [\n    "a>=1",\n    # c\n    "b[x]; y",\n]\n'
    ) == [
        "a",
        "b",
    ]


def test_every_declared_runtime_dependency_is_imported() -> None:
    declared = declared_dependencies(PYPROJECT.read_text())
    assert "aiohttp" in declared
    imported = imported_top_levels()
    unused = [name for name in declared if MODULE_OF.get(name, name) not in imported]
    assert unused == [], f"declared in pyproject.toml but imported nowhere: {unused}"
