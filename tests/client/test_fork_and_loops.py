"""No hang at interpreter exit or after ``fork()``, in real subprocesses.

Each test runs a small script with a fresh interpreter against the mock server in another
process. A hang fails the test through the subprocess timeout (the code before this fix hung
forever in each of the exit cases, and in the fork cases the child blocked forever).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from reka_async.testing import MockServerProcess

KEY = "test-key"
#: Far above what any of these scripts needs (well under a second each); a hang hits it.
HANG_S = 60

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

PRELUDE = """
import os, threading, warnings
from reka_async import AsyncClient, Client
M = "reka-flash"
MSGS = [{"role": "user", "content": "hi"}]
SLOW = [{"role": "user", "content": "[[latency_ms:20000]] hold"}]
# fork() with threads running warns on Python 3.12+; what the child does is the test here.
warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
"""


@pytest.fixture(scope="module")
def server() -> Iterator[MockServerProcess]:
    with MockServerProcess("--api-key", KEY) as srv:
        yield srv


def run_script(server: MockServerProcess, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter; on a hang, kill its whole process group (a forked
    child that hangs would otherwise outlive the test) and fail."""
    code = PRELUDE + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REKA_")}
    env["REKA_API_KEY"] = KEY
    env["REKA_BASE_URL"] = server.base_url
    with subprocess.Popen(
        [sys.executable, "-W", "always::ResourceWarning", "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"hung for {HANG_S} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def assert_clean_exit(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr
    assert "Unclosed" not in proc.stderr, proc.stderr  # aiohttp's warning: the pool was closed


# --------------------------------------------------------------------------- exit

EXIT_CASES = {
    "never-used": "client = Client()\n",
    "after-a-call": "client = Client()\nprint(client.chat.create(messages=MSGS, model=M).text)\n",
    "stream-left-open": (
        "client = Client()\nstream = client.chat.create_stream(messages=MSGS, model=M)\n"
        "print(next(stream).delta)\n"
    ),
    "batch-stream-left-open": (
        "client = Client()\nresults = client.batch_stream(['a', 'b', 'c'], model=M,"
        " concurrency=1)\nprint(next(results).ok)\n"
    ),
    "daemon-thread-in-a-call": (
        "client = Client()\nstarted = threading.Event()\n"
        "def call():\n    started.set()\n    try:\n"
        "        client.chat.create(messages=SLOW, model=M)\n"
        "    except RuntimeError:\n        pass  # cancelled by the exit hook\n"
        "threading.Thread(target=call, daemon=True).start()\nstarted.wait()\n"
    ),
}


@pytest.mark.parametrize("body", EXIT_CASES.values(), ids=EXIT_CASES.keys())
def test_an_unclosed_client_does_not_block_exit(server: MockServerProcess, body: str) -> None:
    proc = run_script(server, body)
    assert_clean_exit(proc)
    assert "ResourceWarning: a reka_async Client was never closed" in proc.stderr, proc.stderr
    assert "closed at interpreter exit" in proc.stderr


def test_a_thread_still_using_the_client_at_exit_finishes_first(
    server: MockServerProcess,
) -> None:
    # The exit hook runs after the interpreter has joined the program's own threads.
    proc = run_script(
        server,
        """
        client = Client()
        gate = threading.Event()
        def late_call():
            gate.wait()
            print("late:", client.chat.create(messages=MSGS, model=M).text, flush=True)
        threading.Thread(target=late_call).start()
        gate.set()  # the main thread ends now; the call has not been sent yet
        """,
    )
    assert_clean_exit(proc)
    assert "late: Mock reply to: hi" in proc.stdout


def test_a_closed_client_exits_silently(server: MockServerProcess) -> None:
    proc = run_script(
        server,
        """
        with Client() as client:
            client.chat.create(messages=MSGS, model=M)
        """,
    )
    assert_clean_exit(proc)
    assert "ResourceWarning" not in proc.stderr


# --------------------------------------------------------------------------- fork


def test_a_client_used_in_a_forked_child_raises_at_once(server: MockServerProcess) -> None:
    proc = run_script(
        server,
        """
        client = Client(timeout=5)
        print("parent:", client.chat.create(messages=MSGS, model=M).text, flush=True)
        stream = client.chat.create_stream(messages=MSGS, model=M)
        pid = os.fork()
        if pid == 0:
            outcomes = []
            for attempt in (
                lambda: client.chat.create(messages=MSGS, model=M),
                lambda: client.models.list(),
                lambda: client.chat.create_stream(messages=MSGS, model=M),
                lambda: next(stream),
                lambda: client.batch(["x"]),
            ):
                try:
                    attempt()
                    outcomes.append("no error")
                except RuntimeError as exc:
                    outcomes.append("fork()" in str(exc) and "child" in str(exc))
            client.close()  # returns at once: the loop belongs to the parent
            assert client.is_closed
            print("child:", outcomes, flush=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child status:", os.waitstatus_to_exitcode(status))
        stream.close()
        print("parent again:", client.chat.create(messages=MSGS, model=M).text)
        client.close()
        """,
    )
    assert_clean_exit(proc)
    assert "child: [True, True, True, True, True]" in proc.stdout, proc.stdout
    assert "child status: 0" in proc.stdout
    assert "parent again: Mock reply to: hi" in proc.stdout


def test_a_multiprocessing_fork_worker_gets_a_clear_error(server: MockServerProcess) -> None:
    proc = run_script(
        server,
        """
        import multiprocessing
        client = Client()
        client.chat.create(messages=MSGS, model=M)

        def work(queue):
            try:
                client.chat.create(messages=MSGS, model=M)
                queue.put("no error")
            except RuntimeError as exc:
                queue.put(str(exc))

        if __name__ == "__main__":
            ctx = multiprocessing.get_context("fork")
            queue = ctx.Queue()
            worker = ctx.Process(target=work, args=(queue,))
            worker.start()
            print("worker:", queue.get(timeout=30), flush=True)
            worker.join(30)
            print("exitcode:", worker.exitcode)
            client.close()
        """,
    )
    assert_clean_exit(proc)
    assert "worker: this Client was created before fork()" in proc.stdout, proc.stdout
    assert "exitcode: 0" in proc.stdout


def test_an_async_client_opened_before_fork_raises_in_the_child(
    server: MockServerProcess,
) -> None:
    proc = run_script(
        server,
        """
        import asyncio
        async def call(client):
            return (await client.chat.create(messages=MSGS, model=M)).text

        opened = AsyncClient()
        print("parent:", asyncio.run(call(opened)), flush=True)  # its pool is open now
        unopened = AsyncClient()  # no connection yet: nothing is shared with a child
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(call(opened))
                print("child opened: no error", flush=True)
            except RuntimeError as exc:
                print("child opened:", "fork()" in str(exc), flush=True)
            print("child unopened:", asyncio.run(call(unopened)), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert "child opened: True" in proc.stdout, proc.stdout
    assert "child unopened: Mock reply to: hi" in proc.stdout, proc.stdout
