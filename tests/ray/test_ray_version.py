"""A Ray older than the ``ray`` extra's floor (2.40) is refused with the floor in the error,
before any actor starts: its ``map_batches`` refuses (before 2.32) or can hang on (2.32 to
2.39) the mapper's async generator. ``nox -s ray_oldest`` runs tests/ray on 2.40 itself."""

from __future__ import annotations

import importlib.metadata

import pytest

pytest.importorskip("ray")

from reka_async.integrations.ray import RekaChatMapper, map_chat

API_KEY = "sk-version-test"


def installed_ray(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    """Make the installed ``ray`` distribution report ``version`` (others are untouched)."""
    real = importlib.metadata.version

    def fake(name: str) -> str:
        return version if name == "ray" else real(name)

    monkeypatch.setattr(importlib.metadata, "version", fake)


@pytest.mark.parametrize("version", ["2.9.3", "2.31.0", "2.39.0"])
def test_a_ray_older_than_2_40_is_refused_with_the_floor(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    installed_ray(monkeypatch, version)
    message = rf"needs Ray 2\.40 or newer, and Ray {version} is installed"
    with pytest.raises(ImportError, match=message):
        RekaChatMapper(api_key=API_KEY)
    # map_chat refuses before it looks at the dataset or starts a limiter actor.
    with pytest.raises(ImportError, match=message):
        map_chat(object(), api_key=API_KEY, rpm=600)


@pytest.mark.parametrize("version", ["2.40.0", "2.60.0", "3.0.0.dev0", "nightly"])
def test_ray_2_40_and_newer_or_an_unparsed_version_is_accepted(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    installed_ray(monkeypatch, version)
    assert API_KEY not in repr(RekaChatMapper(api_key=API_KEY))
