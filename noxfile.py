"""Developer tasks. ``nox`` alone runs what CI runs: lint, typecheck, tests.

Sessions use uv to build their virtualenvs when it is available (``pip install nox uv``).
"""

from __future__ import annotations

import glob
import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

LINT_PATHS = ["reka_async", "tests", "examples", "benchmarks", "noxfile.py"]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[lint]")
    session.run("mypy", "--strict", "reka_async")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (unit, integration against the mock server, CLI subprocesses, examples)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example against the embedded mock server."""
    session.install("-e", ".")
    for path in sorted(glob.glob("examples/*.py")):
        if not os.path.basename(path).startswith("_"):
            session.run("python", path, "--mock")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks vs raw aiohttp, httpx and the official SDK (``-- --quick``: smoke run)."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks.run", *session.posargs)


@nox.session
def accuracy(session: nox.Session) -> None:
    """How accurately ``reka-async bench`` measures the mock's generation model (~3.5 min)."""
    session.install("-e", ".[speed]")  # uvloop and orjson, as the committed results had
    session.run("python", "-m", "benchmarks.accuracy", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The fault soak at a larger scale (bounded: 50,000 batch requests and 5,000 streams)."""
    session.install("-e", ".[test]")
    session.env["REKA_SOAK_N"] = os.environ.get("REKA_SOAK_N", "50000")
    session.env["REKA_SOAK_STREAMS"] = os.environ.get("REKA_SOAK_STREAMS", "5000")
    session.run("pytest", "tests/test_soak.py", "-q", "-s", *session.posargs)


@nox.session
def ray(session: nox.Session) -> None:
    """The Ray Data integration on a local 2-CPU Ray cluster (excluded from ``tests``).

    ``-s`` shows the measured throughput. ``addopts`` is overridden because the default one
    ignores tests/ray; its other options are repeated here.
    """
    # Precompiled bytecode: each Ray worker imports ray, pyarrow and pandas afresh, which
    # takes seconds per actor when PYTHONDONTWRITEBYTECODE is set and uv skipped compiling.
    session.install("-e", ".[test,ray]", env={"UV_COMPILE_BYTECODE": "1"})
    session.run(
        "pytest",
        "tests/ray",
        "-o",
        "addopts=",
        "-ra",
        "--strict-markers",
        "-p",
        "no:cacheprovider",
        "-s",
        *session.posargs,
    )
