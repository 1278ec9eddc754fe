"""Every public name has an entry in the built site's API reference.

The site's inventory (``objects.inv``, which mkdocstrings writes in Sphinx's format: four
header lines, then zlib-compressed lines ``name domain:role priority uri dispname``) must hold
each name of the public-name snapshot (``tests/unit/public_names.json``) under its public path,
``module.name``. ``nox -s docs`` builds the site first and passes it as ``REKA_DOCS_SITE``;
without it, this test builds the site itself (``mkdocs`` must be installed:
``docs/requirements.txt``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "tests" / "unit" / "public_names.json"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("REKA_DOCS_SITE")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def read_inventory(path: Path) -> dict[str, str]:
    """``{name: domain:role}`` of a Sphinx inventory (version 2)."""
    *header, rest = path.read_bytes().split(b"\n", 4)
    assert header[0] == b"# Sphinx inventory version 2"
    assert b"zlib" in header[3]
    entries = {}
    for line in zlib.decompress(rest).decode("utf-8").splitlines():
        name, role, _ = line.split(" ", 2)
        entries[name] = role
    return entries


def test_every_public_name_has_a_reference_entry(site: Path) -> None:
    inventory = read_inventory(site / "objects.inv")
    pinned: dict[str, list[str]] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    missing = [f"{mod}.{name}" for mod, names in pinned.items() for name in names]
    missing = [path for path in missing if path not in inventory]
    assert missing == []
    assert [mod for mod in pinned if inventory.get(mod) != "py:module"] == []
