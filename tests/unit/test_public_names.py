"""The public names, pinned by a committed snapshot (``public_names.json`` beside this file).

The top level holds what a user holds, catches or passes (about 75 names); the types a user
spells are in ``reka_async.types``; machinery stays in its subpackage. A change of the public
surface is made on purpose: update the snapshot with

    python tests/unit/test_public_names.py --update

and say in CHANGELOG.md what moved where.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pathlib
import sys
import types
from typing import Any

import pytest

SNAPSHOT = pathlib.Path(__file__).with_name("public_names.json")
#: The public modules: the package's door and the public subpackages.
PUBLIC_MODULES = (
    "reka_async",
    "reka_async.types",
    "reka_async.batch",
    "reka_async.jobs",
    "reka_async.testing",
    "reka_async.bench",
    "reka_async.cli",
    "reka_async.integrations.ray",
)
#: The most names the top level may hold (the issue: "about 75 names at most").
TOP_LEVEL_LIMIT = 75


def public_names() -> dict[str, list[str]]:
    """``{module: sorted __all__}`` of every public module, as imported now."""
    return {name: sorted(importlib.import_module(name).__all__) for name in PUBLIC_MODULES}


def test_the_public_names_are_the_snapshot() -> None:
    pinned = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    now = public_names()
    assert set(now) == set(pinned)
    for module in PUBLIC_MODULES:
        added = sorted(set(now[module]) - set(pinned[module]))
        removed = sorted(set(pinned[module]) - set(now[module]))
        hint = (
            f"{module}: if on purpose, run `python tests/unit/test_public_names.py --update` "
            f"and say in CHANGELOG.md what moved where"
        )
        assert added == [], hint
        assert removed == [], hint


def test_the_top_level_is_small_and_has_no_duplicates() -> None:
    import reka_async

    assert len(reka_async.__all__) <= TOP_LEVEL_LIMIT
    assert len(set(reka_async.__all__)) == len(reka_async.__all__)


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_exists(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []


def test_machinery_and_spelled_types_are_not_at_the_top_level() -> None:
    import reka_async
    import reka_async.types

    machinery = {"SSEDecoder", "TokenBucket", "AdaptiveLimit", "Quota", "ClientState"}
    machinery |= {"ConnectorFactory", "to_jsonable", "MAX_MEDIA_BYTES", "prepare_item"}
    machinery |= {"ChunkResponse", "BatchResultIterator", "ServerSentEvent"}
    assert machinery.isdisjoint(reka_async.__all__)
    params = {name for name in reka_async.types.__all__ if name.endswith("Param")}
    assert len(params) == 20
    assert params.isdisjoint(reka_async.__all__)
    assert {"ChatParams", "ChatArgs", "ClientOptions", "CopyOptions"} <= set(
        reka_async.types.__all__
    )
    assert "BatchOptions" in reka_async.__all__


def test_job_is_not_public_and_run_job_is() -> None:
    import reka_async.jobs

    assert "run_job" in reka_async.jobs.__all__
    assert "Job" not in reka_async.jobs.__all__
    assert not hasattr(reka_async.jobs, "Job")


def _documented(value: Any) -> bool:
    if isinstance(value, types.GenericAlias):
        return True  # a type alias; Python 3.10's inspect.isclass() says True for it
    if inspect.isclass(value) or inspect.isfunction(value):
        return bool(inspect.getdoc(value))
    return True


@pytest.mark.parametrize("module", ["reka_async", "reka_async.types"])
def test_every_public_class_and_function_has_a_docstring(module: str) -> None:
    mod = importlib.import_module(module)
    undocumented = [name for name in mod.__all__ if not _documented(getattr(mod, name))]
    assert undocumented == []


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/unit/test_public_names.py --update")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    SNAPSHOT.write_text(json.dumps(public_names(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
