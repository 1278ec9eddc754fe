"""A concurrency the open-file limit cannot hold is lowered to what it can, and said: with
``ulimit -n 256`` and ``concurrency=1000`` every item ends ok (the CLI's side, with its
in-process mock, is in ``tests/jobs/test_exactly_once.py``)."""

from __future__ import annotations

import logging
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import API_KEY, FAST_POLICY

from reka_async import AsyncClient, BatchRunner
from reka_async.batch import fds
from reka_async.batch.fds import FD_MARGIN, fit_concurrency
from reka_async.testing import MockRekaServer, MockServerProcess

ROOT = Path(__file__).resolve().parents[2]
OPEN = 10  # descriptors "open now" in the patched cases


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """A soft and hard limit of 256, ``OPEN`` descriptors open; records ``setrlimit`` calls."""
    calls: list[tuple[int, int]] = []
    state = {"limits": (256, 256)}

    def setrlimit(which: int, limits: tuple[int, int]) -> None:
        calls.append(limits)
        state["limits"] = limits

    monkeypatch.setattr(resource, "getrlimit", lambda which: state["limits"])
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    monkeypatch.setattr(fds, "open_fds", lambda: OPEN)
    return calls


def test_a_limit_that_holds_the_concurrency_changes_nothing(limit: list[object]) -> None:
    assert fit_concurrency(256 - OPEN - FD_MARGIN, raise_limit=True) == (182, None)
    assert limit == []


def test_a_short_limit_lowers_the_concurrency_and_says_how_to_run_at_full(
    limit: list[object],
) -> None:
    fitted, note = fit_concurrency(1000)
    assert fitted == 256 - OPEN - FD_MARGIN
    assert note == (
        "the open-file limit (256, hard limit 256) holds about 182 connections, not 1000: "
        "running at concurrency 182; raise the limit (ulimit -n 1074) to run at 1000"
    )


def test_a_server_in_the_process_counts_two_descriptors_per_connection(
    limit: list[object],
) -> None:
    fitted, note = fit_concurrency(1000, per_connection=2, reserve=16)
    assert fitted == (256 - OPEN - FD_MARGIN - 16) // 2
    assert note is not None
    assert "the in-process mock holds a descriptor" in note


def test_a_limit_is_raised_toward_the_hard_one_only_when_asked(
    limit: list[tuple[int, int]],
) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))
    limit.clear()
    fitted, note = fit_concurrency(1000)
    assert fitted == 182
    assert note is not None
    assert "or raise_fd_limit=True" in note
    assert limit == []  # the library never changes the process unless asked
    assert fit_concurrency(1000, raise_limit=True) == (
        1000,
        "raised the open-file limit from 256 to 1074 for this run",
    )
    assert limit == [(1074, 4096)]


async def test_a_runner_lowers_a_concurrency_the_limit_cannot_hold_and_logs_it(
    limit: list[object], server: MockRekaServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="reka_async")
    async with AsyncClient(
        API_KEY, server.base_url, max_connections=1000, retry_policy=FAST_POLICY
    ) as client:
        runner = BatchRunner(client, concurrency=1000)  # no ResourceWarning: it is handled
        assert runner.concurrency == 182
        assert runner.fd_note is not None
        assert "running at concurrency 182" in runner.fd_note
        assert [r.getMessage() for r in caplog.records] == [f"BatchRunner: {runner.fd_note}"]
        results = await runner.run([f"q {i}" for i in range(20)])
    assert all(r.ok for r in results)
    assert server.max_in_flight <= 182


SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from reka_async import AsyncClient, BatchRunner

    async def main():
        async with AsyncClient("k", sys.argv[1], max_connections=1000) as client:
            runner = BatchRunner(client, concurrency=1000)
            results = await runner.run([f"q {i}" for i in range(600)])
        failed = [r for r in results if not r.ok]
        print(len(results), len(failed), failed[0].error if failed else "")

    asyncio.run(main())
    """
)


def test_a_library_run_under_a_low_limit_against_an_external_mock_ends_every_item_ok() -> None:
    def tight_limits() -> None:  # soft and hard: nothing to raise toward
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    # A second of latency: every connection is held while 600 items want one.
    with MockServerProcess("--latency-ms", "1000", "--api-key", "k") as mock:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, mock.base_url],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            preexec_fn=tight_limits,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[:2] == ["600", "0"], proc.stdout
    assert "running at concurrency" in proc.stderr  # the logger's last resort shows it
    assert "Too many open files" not in proc.stderr + proc.stdout
