"""Tests of the blocking facade ``reka_async.Client`` against the mock server in a thread."""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import contextlib
import gc
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from reka_async import (
    AuthenticationError,
    BatchResult,
    ChatResponse,
    Client,
    InvalidRequestError,
    MissingAPIKeyError,
)
from reka_async._sync import _calls
from reka_async._sync._bridge import LoopThread
from reka_async.testing import MockRekaServer

KEY = "test-key"
MODEL = "reka-flash"
SLOW = "[[latency_ms:20000]]"  # a request the server holds for 20 s


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (bounded, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def portal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "reka-async-portal"]


@pytest.fixture(scope="module")
def server() -> Iterator[MockRekaServer]:
    with MockRekaServer.in_thread() as srv:
        yield srv


@pytest.fixture
def client(server: MockRekaServer) -> Iterator[Client]:
    with Client(KEY, server.base_url) as c:
        yield c
    assert server.in_flight == 0 or wait_until(lambda: server.in_flight == 0)


# --------------------------------------------------------------------------- basic calls


def test_create(client: Client) -> None:
    response = client.chat.create(messages=msgs("hello there"), model=MODEL, max_tokens=50)
    assert isinstance(response, ChatResponse)
    assert response.text == "Mock reply to: hello there"
    assert response.finish_reason == "stop"
    assert response.usage.output_tokens == 5


def test_create_errors_propagate(client: Client) -> None:
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        client.chat.create(messages=msgs("x"), model=MODEL, max_tokens=0)
    with pytest.raises(AuthenticationError):
        client.chat.create(messages=msgs("[[fault:401]]"), model=MODEL)
    # The client is still usable afterwards.
    assert client.chat.create(messages=msgs("again"), model=MODEL).text == "Mock reply to: again"


def test_missing_key_leaves_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REKA_API_KEY", raising=False)
    before = set(threading.enumerate())
    with pytest.raises(MissingAPIKeyError, match="REKA_API_KEY"):
        Client()
    assert set(threading.enumerate()) <= before


def test_stream(client: Client) -> None:
    with client.chat.create_stream(messages=msgs("one two three four"), model=MODEL) as stream:
        chunks = list(stream)
    assert len(chunks) > 1
    assert "".join(c.delta for c in chunks) == "Mock reply to: one two three four"
    assert chunks[-1].finish_reason == "stop"
    assert stream.text == "Mock reply to: one two three four"
    # A bare iterator works too, and final_response() assembles the reply.
    stream2 = client.chat.create_stream(messages=msgs("abc"), model=MODEL)
    assert stream2.final_response().text == "Mock reply to: abc"


def test_stream_invalid_arguments_raise_at_once(client: Client) -> None:
    with pytest.raises(InvalidRequestError, match="temperature"):
        client.chat.create_stream(messages=msgs("x"), model=MODEL, temperature="hot")  # type: ignore[arg-type]


def test_leaving_a_stream_early_releases_it(client: Client, server: MockRekaServer) -> None:
    words = " ".join(f"w{i}" for i in range(50))
    server.set_latency(chunk_latency_s=0.02)
    try:
        with client.chat.create_stream(messages=msgs(words), model=MODEL) as stream:
            first = next(stream)
            assert first.delta
            assert server.in_flight == 1
        assert wait_until(lambda: server.in_flight == 0)
        # The client is fine afterwards.
        assert client.chat.create(messages=msgs("next"), model=MODEL).text == "Mock reply to: next"

        # A bare ``for ... break`` without ``with``: closed when the stream is collected.
        for _chunk in client.chat.create_stream(messages=msgs(words), model=MODEL):
            break
        gc.collect()
        assert wait_until(lambda: server.in_flight == 0)
        assert client.chat.create(messages=msgs("more"), model=MODEL).text == "Mock reply to: more"
    finally:
        server.set_latency(chunk_latency_s=0.0)


def test_models(client: Client) -> None:
    ids = [m.id for m in client.models.list()]
    assert "reka-flash" in ids
    assert [m.id for m in client.models.get()] == ids


# --------------------------------------------------------------------------- batches


def test_batch(client: Client) -> None:
    items = [
        "first",
        {"custom_id": "b", "prompt": "second"},
        {"custom_id": "c", "messages": msgs("third"), "max_tokens": 1},
        {"custom_id": "bad", "prompt": "x", "max_tokens": 0},
    ]
    seen: list[BatchResult] = []
    results = client.batch(
        iter(items), concurrency=3, on_result=lambda r, s: seen.append(r), temperature=0
    )
    assert [r.custom_id for r in results] == ["0", "b", "c", "bad"]
    assert [r.ok for r in results] == [True, True, True, False]
    assert results[0].text == "Mock reply to: first"
    assert results[2].response is not None
    assert results[2].response.finish_reason == "length"
    assert isinstance(results[3].error, InvalidRequestError)
    assert len(seen) == 4


def test_batch_invalid_options(client: Client) -> None:
    with pytest.raises(InvalidRequestError, match="concurrency"):
        client.batch(["x"], concurrency=0)


def test_batch_stream(client: Client) -> None:
    prompts = [f"p{i}" for i in range(30)]
    with client.batch_stream(prompts, concurrency=5) as results:
        got = {r.custom_id: r.text for r in results}
    assert got == {str(i): f"Mock reply to: p{i}" for i in range(30)}
    assert results.stats.ok == 30

    with client.batch_stream(prompts, concurrency=4, ordered=True) as ordered:
        assert [r.index for r in ordered] == list(range(30))


def test_batch_stream_leaving_early_cancels(client: Client, server: MockRekaServer) -> None:
    items = ["fast"] + [f"{SLOW} slow {i}" for i in range(8)]
    with client.batch_stream(items, concurrency=9) as results:
        first = next(results)
        assert first.text == "Mock reply to: fast"
        assert wait_until(lambda: server.in_flight == 8)
    # Leaving the block cancelled the 8 slow requests at once (they would take 20 s).
    assert wait_until(lambda: server.in_flight == 0, timeout=5)
    assert client.chat.create(messages=msgs("after"), model=MODEL).text == "Mock reply to: after"


# --------------------------------------------------------------------------- environments


def test_works_inside_a_running_event_loop(client: Client) -> None:
    async def notebook_cell() -> list[str]:
        # Blocking calls from inside a running loop (as in a Jupyter cell): they run in the
        # client's own loop thread, so they do not deadlock this one.
        asyncio.get_running_loop()
        texts = [client.chat.create(messages=msgs("in loop"), model=MODEL).text]
        with client.chat.create_stream(messages=msgs("streamed"), model=MODEL) as stream:
            texts.append("".join(c.delta for c in stream))
        texts.extend(r.text for r in client.batch(["a", "b"]))
        return texts

    assert asyncio.run(notebook_cell()) == [
        "Mock reply to: in loop",
        "Mock reply to: streamed",
        "Mock reply to: a",
        "Mock reply to: b",
    ]


def test_client_created_inside_a_running_loop(server: MockRekaServer) -> None:
    async def cell() -> str:
        with Client(KEY, server.base_url) as c:
            return c.chat.create(messages=msgs("x"), model=MODEL).text

    assert asyncio.run(cell()) == "Mock reply to: x"


def test_eight_threads_share_one_client(client: Client) -> None:
    def work(worker: int) -> list[tuple[str, str]]:
        out = []
        for i in range(10):
            prompt = f"thread {worker} call {i}"
            if i % 3 == 0:
                with client.chat.create_stream(messages=msgs(prompt), model=MODEL) as s:
                    text = "".join(c.delta for c in s)
            else:
                text = client.chat.create(messages=msgs(prompt), model=MODEL).text
            out.append((prompt, text))
        return out

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    pairs = [pair for chunk in results for pair in chunk]
    assert len(pairs) == 80
    for prompt, text in pairs:
        assert text == f"Mock reply to: {prompt}"


# --------------------------------------------------------------------------- lifecycle


def test_close_stops_the_loop_thread(server: MockRekaServer) -> None:
    before = set(threading.enumerate())
    c = Client(KEY, server.base_url)
    assert len(set(threading.enumerate()) - before) == 1
    assert c.chat.create(messages=msgs("x"), model=MODEL).text == "Mock reply to: x"
    c.close()
    assert c.is_closed
    assert set(threading.enumerate()) - before == set()
    assert not portal_threads()
    with pytest.raises(RuntimeError, match="closed"):
        c.chat.create(messages=msgs("x"), model=MODEL)
    with pytest.raises(RuntimeError, match="closed"):
        c.chat.create_stream(messages=msgs("x"), model=MODEL)
    with pytest.raises(RuntimeError, match="closed"):
        c.models.list()
    with pytest.raises(RuntimeError, match="closed"):
        c.batch(["x"])
    c.close()  # idempotent


def test_context_manager(server: MockRekaServer) -> None:
    before = set(threading.enumerate())
    with Client(KEY, server.base_url, max_retries=0) as c:
        assert c.max_retries == 0
        assert c.base_url == server.base_url
        assert "open" in repr(c)
        assert c.chat.create(messages=msgs("cm"), model=MODEL).text == "Mock reply to: cm"
    assert c.is_closed
    assert "closed" in repr(c)
    assert set(threading.enumerate()) - before == set()


def test_close_cancels_calls_in_flight_in_other_threads(server: MockRekaServer) -> None:
    c = Client(KEY, server.base_url)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(c.chat.create, messages=msgs(f"{SLOW} hold"), model=MODEL)
        assert wait_until(lambda: server.in_flight == 1)
        c.close()
        with pytest.raises(RuntimeError, match="closed"):
            fut.result(timeout=10)
    assert wait_until(lambda: server.in_flight == 0)
    assert not portal_threads()


def test_unclosed_client_warns(server: MockRekaServer) -> None:
    c = Client(KEY, server.base_url)
    with pytest.warns(ResourceWarning, match="never closed"):
        del c  # no reference cycles: collected here, and its loop thread stops with it
    gc.collect()
    assert wait_until(lambda: not portal_threads())


# --------------------------------------------------------------------------- Ctrl-C


def test_keyboard_interrupt_cancels_the_request(client: Client, server: MockRekaServer) -> None:
    # The call blocks the main thread; a helper thread waits until the request has reached
    # the server, then raises KeyboardInterrupt in the main thread as Ctrl-C would.
    assert threading.current_thread() is threading.main_thread()
    arrived = threading.Event()

    def interrupter() -> None:
        if wait_until(lambda: server.in_flight >= 1, timeout=10):
            arrived.set()
            _thread.interrupt_main()

    helper = threading.Thread(target=interrupter)
    helper.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            client.chat.create(messages=msgs(f"{SLOW} interrupted"), model=MODEL)
    finally:
        helper.join(timeout=15)
    assert arrived.is_set()
    assert time.monotonic() - started < 10  # not the 20 s the server would take
    # The request was cancelled: the server sees the connection go away.
    assert wait_until(lambda: server.in_flight == 0, timeout=5)
    assert client.chat.create(messages=msgs("still ok"), model=MODEL).text == (
        "Mock reply to: still ok"
    )


# --------------------------------------------------------------------------- the loop thread


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    """A bare ``LoopThread`` (no client)."""
    bridge = LoopThread(name="test-loop-thread")
    try:
        yield bridge
    finally:
        bridge.close()


def in_frame(thread_id: int, filename: str, function: str | None = None) -> Callable[[], bool]:
    """Whether ``thread_id`` is running (blocked in) ``function`` of ``filename`` right now:
    how a test knows, without sleeping, that a thread has reached the point where it waits."""

    def check() -> bool:
        frame = sys._current_frames().get(thread_id)
        if frame is None or frame.f_code.co_filename != filename:
            return False
        return function is None or frame.f_code.co_name == function

    return check


def waiting_for_the_loop(thread_id: int) -> Callable[[], bool]:
    return in_frame(thread_id, _calls.__file__, "wait")


def interrupt_main_once(ready: Callable[[], bool]) -> threading.Thread:
    """Ctrl-C in the main thread, from a helper thread, once ``ready()`` holds."""

    def interrupter() -> None:
        if wait_until(ready):
            _thread.interrupt_main()

    helper = threading.Thread(target=interrupter)
    helper.start()
    return helper


@contextlib.contextmanager
def loop_blocked(bridge: LoopThread) -> Iterator[threading.Event]:
    """Hold the loop thread in a blocking wait (nothing else runs there) until the yielded
    event is set, or the block is left: callbacks handed to the loop meanwhile queue up."""
    blocked, release = threading.Event(), threading.Event()

    async def blocker() -> None:
        blocked.set()
        release.wait(10)  # deliberately blocks the loop thread

    bridge.start_background(blocker())
    assert blocked.wait(10)
    try:
        yield release
    finally:
        release.set()


async def answer() -> int:
    return 42


def test_interrupt_while_waiting_cancels_the_call(loop_thread: LoopThread) -> None:
    assert threading.current_thread() is threading.main_thread()
    entered, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = waiting_for_the_loop(threading.get_ident())
    helper = interrupt_main_once(lambda: entered.is_set() and waiting())
    try:
        with pytest.raises(KeyboardInterrupt):
            loop_thread.run(forever())
    finally:
        helper.join(15)
    assert cancelled.wait(10)
    assert loop_thread.in_flight == 0
    # The cancelled call's wake-up byte, left for this thread, does not confuse the next call.
    assert [loop_thread.run(answer()) for _ in range(3)] == [42, 42, 42]


def test_a_call_cancelled_before_it_starts_never_starts(loop_thread: LoopThread) -> None:
    started = False

    async def never() -> None:
        nonlocal started
        started = True

    with loop_blocked(loop_thread) as release:
        helper = interrupt_main_once(waiting_for_the_loop(threading.get_ident()))
        try:
            with pytest.raises(KeyboardInterrupt):
                loop_thread.run(never())
        finally:
            helper.join(15)
        release.set()  # the loop now runs the start, then the cancel queued behind it
    assert loop_thread.run(answer()) == 42  # a round trip behind both
    assert not started
    assert loop_thread.in_flight == 0


def test_run_returns_a_coroutine_timeout_error_as_is(loop_thread: LoopThread) -> None:
    async def times_out() -> None:
        raise TimeoutError("from the coroutine")

    with pytest.raises(TimeoutError, match="from the coroutine"):
        loop_thread.run(times_out())
    assert loop_thread.in_flight == 0


def test_run_returns_the_result_and_forgets_the_call(loop_thread: LoopThread) -> None:
    assert [loop_thread.run(answer()) for _ in range(3)] == [42, 42, 42]
    assert loop_thread.in_flight == 0
    assert repr(loop_thread) == "<LoopThread open, 0 call(s) in flight>"


def run_in_thread(
    bridge: LoopThread, coro: Coroutine[Any, Any, Any]
) -> tuple[threading.Thread, list[BaseException]]:
    """Call ``bridge.run(coro)`` in a new thread; the list receives what it raised."""
    outcome: list[BaseException] = []

    def caller() -> None:
        try:
            bridge.run(coro)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller, daemon=True)  # daemon: a hang fails, not blocks
    thread.start()
    return thread, outcome


def test_close_cancels_a_call_in_flight(loop_thread: LoopThread) -> None:
    entered = threading.Event()

    async def forever() -> None:
        entered.set()
        await asyncio.Event().wait()

    thread, outcome = run_in_thread(loop_thread, forever())
    assert entered.wait(10)
    loop_thread.close()
    thread.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError)
    assert "closed while this call was running" in str(outcome[0])
    assert loop_thread.closed
    assert repr(loop_thread) == "<LoopThread closed, 0 call(s) in flight>"
    with pytest.raises(RuntimeError, match="closed"):
        loop_thread.run(forever())
    loop_thread.close()  # idempotent


def test_close_cancels_a_call_that_has_not_started(loop_thread: LoopThread) -> None:
    # The cancel reaches the loop right behind the call's start, before its task's first step:
    # the caller is still woken (and the coroutine never runs).
    started = False

    async def never() -> None:
        nonlocal started
        started = True

    with loop_blocked(loop_thread) as release:
        thread, outcome = run_in_thread(loop_thread, never())
        assert thread.ident is not None
        assert wait_until(waiting_for_the_loop(thread.ident))
        closer = threading.Thread(target=loop_thread.close)
        closer.start()
        assert closer.ident is not None
        # Once close() waits in threading.py (for the portal) its cancels are queued.
        assert wait_until(in_frame(closer.ident, threading.__file__))
        release.set()
        closer.join(10)
        thread.join(10)
    assert not closer.is_alive()
    assert len(outcome) == 1
    assert "closed while this call was running" in str(outcome[0])
    assert not started


def test_background_work_runs_without_waiting_and_is_dropped_once_closed(
    loop_thread: LoopThread,
) -> None:
    done = threading.Event()

    async def work() -> None:
        done.set()

    loop_thread.start_background(work())
    assert done.wait(10)
    loop_thread.close()
    loop_thread.start_background(work())  # closed unrun: no "never awaited" warning


def test_close_is_refused_in_the_loop_thread(loop_thread: LoopThread) -> None:
    async def close_here() -> None:
        loop_thread.close()

    with pytest.raises(RuntimeError, match="own event loop thread"):
        loop_thread.run(close_here())
    assert not loop_thread.closed


def test_calling_from_the_loop_thread_is_refused(client: Client) -> None:
    errors: list[BaseException] = []

    def hook(result: BatchResult, stats: object) -> None:
        try:
            client.chat.create(messages=msgs("nested"), model=MODEL)
        except RuntimeError as exc:
            errors.append(exc)

    client.batch(["x"], on_result=hook)
    assert len(errors) == 1
    assert "own event loop thread" in str(errors[0])
