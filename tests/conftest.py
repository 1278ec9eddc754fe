"""Shared fixtures (a clean environment, a fast retry policy, the embedded mock server over
real sockets) and the two tiers of the suite. (Tests that need no socket answer attempts
in-process: ``tests/_seam.py``.)

The tiers: ``pytest`` alone runs the default tier, everything but the ``SLOW`` list below
(``addopts`` holds ``-m "not slow"``); ``pytest -m slow`` runs only that list and
``pytest -m ""`` everything. ``nox -s tests`` runs everything on its first Python and the
default tier on the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reka_async import AsyncClient, RetryPolicy
from reka_async.testing import MockRekaServer

API_KEY = "test-key"

#: The slow tier: a node-id prefix (a file, or one test of it), and why it is slow. Everything
#: else is the default tier. ``tests/unit/test_layout.py`` checks that every entry exists.
SLOW: dict[str, str] = {
    "tests/slow/test_soak.py": "the fault soak: 10,000 batch requests and 500 streams",
    "tests/slow/test_benchmark_harness.py": "a whole quick benchmark run, in subprocesses",
    "tests/slow/test_bench_accuracy.py": "a timed benchmark against a mock in its own process",
    "tests/slow/test_examples.py": "every example in both dialects, each a Python subprocess",
    "tests/slow/test_typed_dicts_with_mypy.py": "real mypy runs",
    "tests/slow/test_stream_overloads_with_mypy.py": "a real mypy run",
    "tests/jobs/test_exactly_once.py::test_kills_at_random_points_then_resume_end_with_each"
    "_input_exactly_once": "CLI subprocesses killed and resumed, several times",
    "tests/jobs/test_exactly_once.py::test_a_duplicate_id_never_marks_the_original_done": "a "
    "CLI subprocess killed mid-run, then resumed",
    "tests/jobs/test_exactly_once.py::test_sigterm_is_handled_like_sigint": "a CLI "
    "subprocess stopped by a signal, then resumed",
    "tests/jobs/test_exactly_once.py::test_without_enough_descriptors_a_mock_run_fits_its"
    "_concurrency_and_every_item_ends_ok": "1,000 half-second items through a CLI "
    "subprocess under ulimit -n",
    "tests/batch/test_descriptor_limit.py::test_a_library_run_under_a_low_limit_against_an"
    "_external_mock_ends_every_item_ok": "600 one-second requests in a subprocess under ulimit -n",
    "tests/cli/test_commands.py::test_sigkill_and_resume_gives_each_input_exactly_once": "a "
    "CLI subprocess killed with SIGKILL, then resumed",
    "tests/jobs/test_interrupted_job.py::test_ctrl_c_on_the_cli_writes_every_answer_it"
    "_counted": "CLI subprocesses interrupted with SIGINT, then resumed (3,000 requests each)",
    "tests/cli/test_error_rate_stop.py::test_a_run_that_mostly_fails_stops_with_exit_3_and_says"
    "_how_to_continue": "two CLI subprocesses, a stop after 100 failed requests, then a resume",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the ``SLOW`` entries ``slow`` (the marker's reason is the entry's)."""
    for item in items:
        for prefix, reason in SLOW.items():
            if item.nodeid == prefix or item.nodeid.startswith((prefix + "::", prefix + "[")):
                item.add_marker(pytest.mark.slow(reason=reason))
                break


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on the developer's REKA_* variables."""
    monkeypatch.delenv("REKA_API_KEY", raising=False)
    monkeypatch.delenv("REKA_BASE_URL", raising=False)


#: Backoff in milliseconds; server-requested waits (``retry-after``) are still honoured.
FAST_POLICY = RetryPolicy(base=0.001, cap=0.01)


@pytest.fixture
async def server() -> AsyncIterator[MockRekaServer]:
    """A mock Reka API on a free loopback port, with short server-requested delays."""
    async with MockRekaServer(api_key=API_KEY, retry_after_s=0.05, slow_first_byte_s=5.0) as srv:
        yield srv


@pytest.fixture
async def client(server: MockRekaServer) -> AsyncIterator[AsyncClient]:
    """A client of ``server`` with the default two retries and a fast backoff."""
    async with AsyncClient(API_KEY, server.base_url, retry_policy=FAST_POLICY) as c:
        yield c
