"""Developer tasks. ``nox`` alone runs lint, typecheck and tests; CI (``.ci/run``) adds docs, ray
and ray_oldest.

Sessions use uv to build their virtualenvs when it is available (``pip install nox uv``).

``tests`` runs the whole suite (both tiers, ``tests/conftest.py``) on nox's own Python and the
default tier on the oldest and newest that the package claims (``requires-python >= 3.10``;
3.13 is the newest released here): ``tests-3.11``, ``tests-3.10``, ``tests-3.13``. The extra
interpreters are taken from pyenv's installed versions, never downloaded; where one is
missing nox skips its session locally and fails it in CI (``CI`` set).
``nox -s tests-3.11 -- tests/unit`` runs a folder on one Python only.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.download_python = "never"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

#: The oldest and the newest supported Pythons, tested beside nox's own.
EXTRA_PYTHONS = ("3.10", "3.13")


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name  # .../versions/3.10.13/bin/python3.10
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def _find_pythons() -> list[str]:
    """The versions ``tests`` runs on: nox's own Python first, then ``EXTRA_PYTHONS``.

    pyenv's shims only run the versions pyenv is told to use, so each interpreter is linked
    from pyenv's newest install of that version into ``.nox/pythons``, which goes first on
    ``PATH``: nox then finds ``python3.10`` there, and nothing is downloaded.
    """
    own = f"{sys.version_info[0]}.{sys.version_info[1]}"
    links = Path(__file__).parent / ".nox" / "pythons"
    links.mkdir(parents=True, exist_ok=True)
    targets = {own: sys.executable}
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for version in EXTRA_PYTHONS:
        found = glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}"))
        if found:
            targets[version] = max(found, key=_version_key)
    for version, target in targets.items():
        link = links / f"python{version}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"
    return list(dict.fromkeys([own, *EXTRA_PYTHONS]))


PYTHONS = _find_pythons()

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


#: Tests that drive third-party clients with large dependency trees (the ``test-full``
#: extra): they run on the first Python only.
THIRD_PARTY_TESTS = (
    "tests/mock/test_official_sdk.py",  # reka-api (and httpx under it)
    "tests/mock/test_openai_dialect.py",  # openai, pydantic
    "tests/mock/test_schema.py",  # jsonschema, pydantic
    "tests/client/test_otel.py",  # opentelemetry-sdk
    "tests/client/test_parse_pydantic.py",  # pydantic
    "tests/mock/test_sdks_list_models.py",  # openai, reka-api
    "tests/cli/test_parquet_output.py",  # pyarrow
)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite: on nox's own Python (the first of ``PYTHONS``) every test, the slow
    tier and the third-party clients included; on the oldest and newest supported Pythons the
    default tier without ``THIRD_PARTY_TESTS`` (the package is the same code on each; what
    differs per Python is the interpreter under it).

    Bytecode is compiled at install (and for the package itself) because many tests start a
    Python subprocess (the CLI, the examples, the mock server process, exit and fork cases):
    where ``PYTHONDONTWRITEBYTECODE`` is set, each of them would otherwise compile aiohttp and
    the package from source again, about half a second apiece.

    The tests run in pytest-xdist worker processes, one per core up to four: much of the
    suite waits on subprocesses and sockets. Each test still owns its servers, ports and
    files; ``nox -s tests-3.11 -- -n 0`` runs in one process. Arguments after ``--`` replace
    the tier's selection (``-- tests/unit`` runs that folder's default tier).
    """
    full = session.python == PYTHONS[0]
    extra = "test-full" if full else "test"
    session.install("-e", f".[{extra}]", env={"UV_COMPILE_BYTECODE": "1"})
    session.run(
        "python", "-m", "compileall", "-q", "reka_async", env={"PYTHONDONTWRITEBYTECODE": ""}
    )
    # Both tiers on the first Python; the default tier without the third-party tests elsewhere.
    selection = ["-m", ""] if full else [f"--ignore={path}" for path in THIRD_PARTY_TESTS]
    session.run(
        "pytest",
        "--numprocesses=auto",
        "--maxprocesses=4",
        *selection,
        *session.posargs,
    )


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example against the embedded mock server."""
    session.install("-e", ".[otel]")
    for path in sorted(glob.glob("examples/*.py")):
        if not os.path.basename(path).startswith("_"):
            session.run("python", path, "--mock")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks vs raw aiohttp, httpx and the official SDK, both dialects (~46 min on 2 cores;
    the estimate is printed first; ``-- --quick``: every measurement at a tiny scale)."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
    # The job layer at 100,000 and 1,000,000 lines (about 15 minutes; --quick: tiny sizes).
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run("python", "-m", "benchmarks.jobscale", *quick)


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
    session.run("pytest", "tests/slow/test_soak.py", "-m", "", "-q", "-s", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site and every snippet in it, once (not per Python, unlike ``tests``).

    ``mkdocs build --strict`` builds ``site/`` from ``docs/`` and ``mkdocs.yml`` (a broken link,
    anchor or reference fails it), with the tools pinned in ``docs/requirements.txt`` (not a
    dependency of the package). Then ``tests/docs``: every Python block of ``docs/`` and the
    README run against the mock server, and every public name of the snapshot found in the
    built site's inventory. ``addopts`` is overridden because the default one ignores
    tests/docs. Open ``site/index.html`` to read the result.
    """
    session.install(
        "-r", "docs/requirements.txt", "-e", ".[test]", env={"UV_COMPILE_BYTECODE": "1"}
    )
    # Material's banner about MkDocs 2.0 on every build; the pins above are what we build with.
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")
    session.run(
        "pytest",
        "tests/docs",
        "-o",
        "addopts=",
        "-ra",
        "--strict-markers",
        "-p",
        "no:cacheprovider",
        "--numprocesses=auto",
        "--maxprocesses=4",
        *session.posargs,
        env={"REKA_DOCS_SITE": "site"},
    )


#: The LiteLLM release ``nox -s litellm`` checks the mock against (pinned: LiteLLM moves fast,
#: and 1.107.0 was a compromised release).
LITELLM = "litellm==1.110.2"


@nox.session
def litellm(session: nox.Session) -> None:
    """LiteLLM against the mock: ``get_valid_models`` with ``api_base``, chat and streaming
    (opt-in, like ``ray``: a large dependency tree, outside ``tests`` and the README's test
    command). ``addopts`` is overridden because the default one ignores tests/with_litellm."""
    session.install("-e", ".[test]", LITELLM)
    session.run(
        "pytest",
        "tests/with_litellm",
        "-o",
        "addopts=",
        # LiteLLM's own TypedDicts use ReadOnly, which pydantic warns about when LiteLLM
        # builds its schemas: a third party's warning, not ours. Every other stays an error.
        "-o",
        "filterwarnings=error\nignore:.*ReadOnly.*:UserWarning",
        "-ra",
        "--strict-markers",
        *session.posargs,
    )


#: The oldest Ray the ``ray`` extra allows (``ray[data]>=2.40`` in pyproject.toml), with the
#: pin it needs: Ray Data before ray-project/ray#60406 fails on pandas 3 (``from_pandas``:
#: ``pandas.errors`` has no ``SettingWithCopyWarning``).
RAY_OLDEST = ("ray[data]==2.40.0", "pandas<3")


def _run_ray_tests(session: nox.Session, *default: str) -> None:
    session.run(
        "pytest",
        "-o",
        "addopts=",
        "-ra",
        "--strict-markers",
        "-p",
        "no:cacheprovider",
        "-s",
        *(session.posargs or default),
    )


@nox.session
def ray(session: nox.Session) -> None:
    """The Ray Data integration on a local 2-CPU Ray cluster (excluded from ``tests``).

    ``-s`` shows the measured throughput. ``addopts`` is overridden because the default one
    ignores tests/ray; its other options are repeated here.
    """
    # Precompiled bytecode: each Ray worker imports ray, pyarrow and pandas afresh, which
    # takes seconds per actor when PYTHONDONTWRITEBYTECODE is set and uv skipped compiling.
    session.install("-e", ".[test,ray]", env={"UV_COMPILE_BYTECODE": "1"})
    _run_ray_tests(session, "tests/ray")


#: What ``ray_oldest`` runs by default: what depends on Ray's version (the mapper under
#: ``map_batches`` with the actors' logs checked for ``Unclosed``, the version check, the
#: engine). The whole of ``tests/ray`` passed on 2.40.0 (25 passed, 157 s, issue 33's note):
#: ``nox -s ray_oldest -- tests/ray`` runs it again; in CI it would add about two minutes.
RAY_OLDEST_TESTS = (
    "tests/ray/test_actor_logs.py",
    "tests/ray/test_ray_version.py",
    "tests/ray/test_mapper_engine.py",
)


@nox.session
def ray_oldest(session: nox.Session) -> None:
    """The Ray tests that depend on Ray's version, on the oldest supported Ray
    (`RAY_OLDEST`; the ``ray`` session runs all of them on the newest). Like ``ray``,
    outside plain ``nox`` and in ``.ci/run``; ``-- tests/ray`` runs the whole folder."""
    session.install("-e", ".[test]", *RAY_OLDEST, env={"UV_COMPILE_BYTECODE": "1"})
    _run_ray_tests(session, *RAY_OLDEST_TESTS)
