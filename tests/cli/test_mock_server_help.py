"""``reka-async mock-server --help`` names every flag of ``python -m reka_async.testing`` (the
options it passes through included), both as real subprocesses."""

from __future__ import annotations

import re
import subprocess
import sys


def _help(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", *args, "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def _long_options(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", help_text))


def test_mock_server_help_names_every_option_of_the_mock() -> None:
    own = _long_options(_help("reka_async.testing")) - {"--help"}
    cli = _long_options(_help("reka_async", "mock-server"))
    assert len(own) > 20  # the parse found the mock's options
    assert own - cli == set()
