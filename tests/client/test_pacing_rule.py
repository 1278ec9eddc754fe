"""The rate-limit rule of ``_http/quota.py`` on a fake clock: every header shape, the three
kinds of 429, the learned send rate (cut by the share of 429s, never by one), and the
spreading of requests released together. No test waits for real time."""

from __future__ import annotations

import asyncio
import email.utils
import heapq
import itertools
import math
import time
from typing import Any

import pytest

from reka_async import RateLimitError
from reka_async._http import pacing as _pacing
from reka_async._http import quota as _quota
from reka_async._http import retry as _retry
from reka_async._http.pacing import MARGIN, Pacer
from reka_async._http.quota import (
    Quota,
    declared_rate,
    has_rate_headers,
    parse_duration,
    quota_spent,
    spent_reset,
)
from reka_async._http.retry import parse_retry_after

NOW = 1_800_000_000.0


class FakeTime:
    """``time`` as ``pacing`` sees it: ``monotonic`` only moves when told (or slept)."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class FakeAsyncio:
    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock
        self.sleeps: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(round(delay, 6))
        await asyncio.sleep(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(_pacing, "time", fake)
    return fake


def pacer() -> Pacer:
    return Pacer(Quota(slack=64, max_wait=120.0))


def error_429(headers: dict[str, str]) -> RateLimitError:
    return RateLimitError("429", status_code=429, headers=headers, body="{}", request_id=None)


# --- the header shapes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5)],
)
def test_openai_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5x", "1s garbage", "-3", "nan"])
def test_an_unparsable_duration_is_no_information(text: str | None) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("headers", "reset"),
    [
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": f"{NOW + 1.25:.3f}"}, 1.25),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "3"}, 3.0),  # seconds from now
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20ms"}, 0.02),
        (
            {
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:02Z",
            },
            None,  # computed below from the RFC 3339 time
        ),
    ],
    ids=["unix", "seconds", "openai-requests", "openai-tokens", "anthropic"],
)
def test_a_spent_window_in_any_shape_is_a_quota_and_says_when_it_resets(
    headers: dict[str, str], reset: float | None
) -> None:
    assert quota_spent(headers)
    assert has_rate_headers(headers)
    now = NOW
    if reset is None:
        now = email.utils.parsedate_to_datetime("Fri, 15 Jan 2027 08:00:00 GMT").timestamp()
        reset = 2.0
    assert spent_reset(headers, now) == pytest.approx(reset)
    assert parse_retry_after(headers, now) == pytest.approx(reset)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-ratelimit-remaining": "lots"},
        {"x-ratelimit-remaining": ""},
        {"x-ratelimit-remaining-requests": "nan"},
        {"anthropic-ratelimit-requests-remaining": "12"},
    ],
)
def test_a_missing_or_unparsable_remaining_is_never_a_zero(headers: dict[str, str]) -> None:
    assert not quota_spent(headers)
    assert spent_reset(headers, NOW) is None


def test_retry_after_ms_and_an_http_date_are_read() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}, NOW) == pytest.approx(0.25)
    date = email.utils.formatdate(NOW + 7, usegmt=True)
    assert parse_retry_after({"retry-after": date}, NOW) == pytest.approx(7, abs=1)


def test_per_minute_request_limits_declare_a_rate() -> None:
    assert declared_rate({"x-ratelimit-limit-requests": "3000"}) == pytest.approx(50.0)
    assert declared_rate({"anthropic-ratelimit-requests-limit": "600"}) == pytest.approx(10.0)
    assert declared_rate({"x-ratelimit-limit-requests": "many"}) is None
    assert declared_rate({"x-ratelimit-limit-requests": "0"}) is None
    assert declared_rate({"x-ratelimit-limit": "50"}) is None  # a window's, of unknown length


# --- the three kinds of 429 -------------------------------------------------------------------


def test_the_three_kinds_of_rate_limit_429() -> None:
    assert Pacer.kind(error_429({"x-ratelimit-remaining": "0"})) == "quota"
    assert Pacer.kind(error_429({"x-ratelimit-remaining-tokens": "0"})) == "quota"
    assert Pacer.kind(error_429({"retry-after": "1"})) == "unlabelled"
    assert Pacer.kind(error_429({"retry-after": "1", "x-ratelimit-remaining": "9"})) == "overload"


# --- the learned send rate --------------------------------------------------------------------


def feed(p: Pacer, clock: FakeTime, answers: int, every: int, step: float) -> None:
    """``answers`` answers ``step`` s apart, one in ``every`` a rate-limit 429."""
    for i in range(answers):
        clock.now += step
        p.answered(i % every == every - 1)


def test_a_single_429_or_one_percent_of_them_never_paces(clock: FakeTime) -> None:
    p = pacer()
    feed(p, clock, 1, 1, 0.01)  # the very first answer is a 429
    feed(p, clock, 4000, 100, 0.005)  # then 1 % of 4,000 at 200 answers a second
    assert p.rate is None
    assert p.cuts == 0


def test_a_share_of_429s_above_the_threshold_sets_the_rate_in_proportion(
    clock: FakeTime,
) -> None:
    # An unpaced client's first wave: 64 answers together, 50 admitted, 14 refused. The
    # rate is what the server admitted over the window, taken as at least a second long.
    p = pacer()
    for i in range(64):
        p.answered(i >= 50)
    assert p.rate == pytest.approx(50 * MARGIN)
    assert p.cuts == 1


def test_a_paced_client_cuts_again_above_the_paced_share_and_probes_when_quiet(
    clock: FakeTime,
) -> None:
    p = pacer()
    p._set(100.0, clock.now)  # paced at 100/s, the server admitting 90 % of it
    feed(p, clock, 300, 10, 0.01)
    assert p.rate == pytest.approx(100 * 0.9 * MARGIN, rel=0.01)
    cut = p.rate
    p._queued = True  # requests wait for their slots: the rate is the bottleneck
    feed(p, clock, 300, 10**9, 0.01)  # 3 s without a 429
    assert cut < p.rate <= cut * 1.02 + 1e-9


async def test_requests_released_together_leave_one_by_one(
    clock: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAsyncio(clock)
    monkeypatch.setattr(_pacing, "asyncio", fake)
    p = pacer()
    p._set(10.0, clock.now)
    await asyncio.gather(*(p.before_attempt() for _ in range(5)))
    assert sorted(fake.sleeps) == [0.1, 0.2, 0.3, 0.4]  # the first goes at once


def test_a_quota_pause_starts_the_send_slots_at_its_end(clock: FakeTime) -> None:
    p = pacer()
    p._set(10.0, clock.now)
    error = error_429({"x-ratelimit-remaining": "0", "retry-after": "2"})
    p.refused(error, 2.0, 120.0)
    assert p._next >= time.monotonic() + 1.9  # the cooldown's own clock


def test_openai_headers_declare_the_rate_and_cap_probing(clock: FakeTime) -> None:
    p = pacer()
    p.observe({"x-ratelimit-limit-requests": "3000", "x-ratelimit-remaining-requests": "40"})
    assert p.rate == pytest.approx(50 * MARGIN)
    p._queued = True
    feed(p, clock, 1000, 10**9, 0.01)
    assert p.rate == pytest.approx(50 * MARGIN)  # never probed above the declared rate


def test_a_cut_never_sets_a_rate_above_a_fixed_windows_own(clock: FakeTime) -> None:
    # Answers counted over a second can cover three 0.4 s windows of 10 and so look like
    # 30 admitted a second; the window itself admits 25 a second, and the cut says so.
    p = pacer()
    p.quota.limit, p.quota.window_s = 10, 0.4
    for i in range(64):
        p.answered(i >= 30)
    assert p.cuts == 1
    assert p.rate == pytest.approx(25.0 * MARGIN)
    q = pacer()
    q.quota.limit, q.quota.window_s, q.quota.moving = 10, 0.4, True  # a sliding window
    for i in range(64):
        q.answered(i >= 30)
    assert q.rate == pytest.approx(30 * MARGIN)  # a moving window's rate is not capped


class FakeUnixTime:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_the_predicted_window_end_follows_the_servers_and_never_drifts_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fixed windows of 10 per 0.4 s; the first reset header is rounded up a millisecond (as
    # a float's error, rounded never early, gives), so the window's length is learned as
    # 0.399 s. Each window's answers arrive while the next request waits for its end: the
    # client has already rolled over to a predicted window by then. Predictions summed
    # from 0.399 would be a millisecond earlier every window, and after ten windows the
    # requests released at the predicted end would reach the server before its turn.
    clock = FakeUnixTime(NOW + 0.05)
    monkeypatch.setattr(_quota, "time", clock)
    quota = Quota(slack=64, max_wait=120.0)
    admitted: dict[int, int] = {}

    def send() -> tuple[str, dict[str, str]]:
        window = math.floor(clock.now / 0.4)
        admitted[window] = admitted.get(window, 0) + 1
        end = (window + 1) * 0.4 + (0.001 if not admitted.keys() - {window} else 0.0)
        remaining = max(10 - admitted[window], 0)
        return str(remaining), {"x-ratelimit-limit": "10", "x-ratelimit-reset": f"{end:.3f}"}

    answers: list[tuple[float, tuple[str, dict[str, str]]]] = []  # (arrival, answer)

    def arrive(until: float) -> None:
        while answers and answers[0][0] <= until:
            quota.observe(*answers.pop(0)[1])

    quota.observe(*send())
    for _ in range(400):  # 40 windows
        arrive(clock.now)
        pause = quota.before_send()
        arrive(clock.now + pause)  # the window's answers come in while this one waits
        clock.now += pause
        answers.append((clock.now + 0.002, send()))
        clock.now += 0.0001
    windows = sorted(admitted)
    assert max(admitted[w] for w in windows[2:]) <= 10, admitted
    assert len(windows) >= 38


def sent_per_window(
    monkeypatch: pytest.MonkeyPatch, quota: Quota, busy: list[tuple[float, float]]
) -> dict[int, int]:
    """Requests a client sends, one every 20 ms through ``busy`` spans (seconds from a
    window edge), against fixed windows of 10 per second whose answers carry only
    ``x-ratelimit-limit``/``reset`` beside ``remaining`` (answered at once). The quota is
    asked before each request while it is active, as the pacer does. Returns the requests
    sent in each window."""
    clock = FakeUnixTime(NOW)
    monkeypatch.setattr(_quota, "time", clock)
    sent: dict[int, int] = {}
    for start, end in busy:
        clock.now = NOW + start
        while clock.now < NOW + end:
            if quota.active:
                clock.now += quota.before_send()
            window = math.floor(clock.now - NOW)
            sent[window] = sent.get(window, 0) + 1
            reset = f"{NOW + window + 1:.3f}"
            quota.observe(
                str(max(10 - sent[window], 0)),
                {"x-ratelimit-limit": "10", "x-ratelimit-reset": reset},
            )
            clock.now += 0.02
    return sent


def test_a_window_length_seen_across_an_idle_window_is_put_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One request, a window with none, then a steady stream: the two resets seen first are
    # two windows apart. Taken as the window's length, the countdown paused the client
    # through every other window, forever (10 requests in two seconds, not twenty).
    quota = Quota(slack=64, max_wait=120.0)
    sent = sent_per_window(monkeypatch, quota, [(0.05, 0.06), (2.05, 9.0)])
    assert quota.window_s == pytest.approx(1.0, abs=2e-3)
    assert not quota.moving
    assert [sent.get(w, 0) for w in range(3, 9)] == [10] * 6


def test_idle_windows_between_two_resets_do_not_make_a_fixed_window_moving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A window's length known, a pause rolls the count over to a predicted window, and the
    # client goes quiet: the next reset it reads is three windows after the predicted one.
    # That is windows of the clock, not a window that moves (which turned the countdown
    # off, and took three seconds for the window's length).
    quota = Quota(slack=4, max_wait=120.0)
    sent = sent_per_window(monkeypatch, quota, [(0.05, 3.03), (6.05, 10.0)])
    assert quota.window_s == pytest.approx(1.0, abs=2e-3)
    assert not quota.moving
    assert max(sent.values()) == 10  # never more than a window admits
    assert [sent.get(w, 0) for w in range(7, 10)] == [10] * 3


# --- issue 27, every limiter kind: the first wave, pauses, moving windows ---------------------


def test_answers_older_than_the_share_window_fall_out_of_the_share(clock: FakeTime) -> None:
    # 40 refusals, then 3 s of admissions only: the refusals are out of the window when the
    # 60th answer comes, so the share is 0 and nothing is cut.
    p = pacer()
    feed(p, clock, 40, 1, 0.001)
    clock.now += 3.0
    feed(p, clock, 60, 10**9, 0.001)
    assert p.rate is None
    assert p._total == 60
    assert p._refused == 0


def test_a_client_paced_below_25_a_second_reads_its_share_further_back_and_cuts(
    clock: FakeTime,
) -> None:
    # Paced at 20/s against a limiter admitting half of it: 40 answers in the share window,
    # too few to count, so the share is read back to 50 answers; the rate is cut to what
    # was admitted. Before the read-back it was never cut at all.
    p = pacer()
    p._set(20.0, clock.now)
    feed(p, clock, 60, 2, 0.05)  # 3 s at 20 answers a second, every other one a 429
    assert p.cuts == 1
    assert p.rate == pytest.approx(20 * 0.5 * MARGIN, rel=0.05)


def test_the_read_back_never_reaches_past_the_ring(clock: FakeTime) -> None:
    # 45 refusals long ago (older than MAX_SHARE_WINDOW_S), then 10 answers a second with
    # no 429 but one: 1 in about 50 read back is under the paced share, so nothing is cut.
    p = pacer()
    p._set(10.0, clock.now)
    feed(p, clock, 45, 1, 0.001)
    clock.now += _pacing.MAX_SHARE_WINDOW_S + 1.0
    feed(p, clock, 49, 10**9, 0.1)
    p.answered(True)
    assert p.rate == 10.0
    assert p.cuts == 0


class VirtualClock:
    """``time`` and ``asyncio`` for ``pacing`` and ``retry``: ``sleep`` waits until ``run``
    moves the clock to its end, the earliest first (a loop's virtual time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(delay, 0.0), id(future), future))
        await future

    async def wait_for(self, awaitable: Any, timeout: float) -> Any:
        task = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.sleep(timeout))
        done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        timer.cancel()
        if task in done:
            return task.result()
        task.cancel()
        raise asyncio.TimeoutError

    async def run(self, *coros: Any) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(10):
                await asyncio.sleep(0)
            if self._sleepers:
                end, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, end)
                if not future.done():
                    future.set_result(None)
            elif not all(t.done() for t in tasks):
                for t in tasks:
                    t.cancel()
                raise AssertionError("blocked with no sleeper: nothing would wake it")
        return [t.result() for t in tasks]

    def __getattr__(self, name: str) -> Any:
        return getattr(time if hasattr(time, name) else asyncio, name)


async def test_requests_waiting_for_their_slots_through_a_pause_leave_one_by_one_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    virtual = VirtualClock()
    for module in (_pacing, _retry):
        monkeypatch.setattr(module, "time", virtual)
        monkeypatch.setattr(module, "asyncio", virtual)
    p = pacer()
    p._set(10.0, virtual.now)
    sent: list[float] = []

    async def attempt() -> None:
        await p.before_attempt()
        sent.append(virtual.now)

    async def quota_429() -> None:
        await asyncio.sleep(0)  # once the five have taken their slots
        p.refused(error_429({"x-ratelimit-remaining": "0"}), 1.0, 120.0)

    await virtual.run(*(attempt() for _ in range(5)), quota_429())
    # The first went before the pause; the four that waited for slots inside it leave a
    # slot apart from its end, not together at it.
    assert sent[0] == pytest.approx(100.0)
    assert sent[1:] == pytest.approx([101.0, 101.1, 101.2, 101.3])


def moving_answers(
    p: Pacer, clock: FakeTime, remaining: list[int | tuple[int, int]], limit: int = 3000
) -> None:
    """Answers of a bucket or a sliding window (its reset moves with each), one per 10 ms,
    one ``remaining`` (or a pair, alternating) a probe interval (2.1 s) each."""
    p.quota.moving = True
    for value in remaining:
        pair = value if isinstance(value, tuple) else (value, value)
        for i in range(210):
            clock.now += 0.01
            headers = {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(pair[i % 2])}
            p.observe(headers)
            p.answered(False)


def test_a_moving_window_is_not_probed_while_its_remaining_falls(clock: FakeTime) -> None:
    # A bucket drained by a rate above its refill: no 429 yet, but remaining falls from
    # interval to interval. The probe that began the fall is undone, and none follows.
    p = pacer()
    p._set(48.0, clock.now)
    p._queued = True
    moving_answers(p, clock, [40, 40])
    probed = p.rate
    assert probed == pytest.approx(48.0 * 1.02)  # room, and no fall: probed
    p._queued = True
    moving_answers(p, clock, [40, 30, 20, 10])
    assert p.rate is not None
    assert p.rate < probed * 1.02  # the fall undid the next probe
    p._queued = True
    moving_answers(p, clock, [10, 10])
    assert p.rate is not None
    assert p.rate < probed * 1.02  # and none followed for a while


def test_a_moving_window_without_room_is_not_probed(clock: FakeTime) -> None:
    # A sliding window at its edge: remaining stays at 1 (no 429, no fall): not raised.
    p = pacer()
    p._set(48.0, clock.now)
    p._queued = True
    moving_answers(p, clock, [1, 1, 1, 1])
    assert p.rate == pytest.approx(48.0)


def test_a_sliding_window_at_its_edge_is_raised_toward_one_left_and_held_there(
    clock: FakeTime,
) -> None:
    # 50 in any second, paced at 48.5/s: the log holds 48.5, remaining is 1 or 2 (mean
    # 1.5). A sliding window's remaining is limit - rate * window, so the rate that leaves
    # one is rate * 49 / 48.5 = 49; there it is held (a probe would meet the limit).
    p = pacer()
    p._set(48.5, clock.now)
    p._queued = True
    moving_answers(p, clock, [(1, 2)], limit=50)
    assert p.rate == pytest.approx(49.0)
    for _ in range(3):
        p._queued = True
        moving_answers(p, clock, [1, 1], limit=50)
        assert p.rate == pytest.approx(49.0, rel=0.005)


def test_a_probe_that_leaves_a_sliding_window_at_its_edge_stands_until_a_429(
    clock: FakeTime,
) -> None:
    # A probe from room (3 left: 47/s against 50) to 48/s takes about one off remaining:
    # remaining = limit - rate * window. That is no bucket draining (which falls from room):
    # the raise stands (and the edge's own raise toward one left follows); the 429 at the
    # edge, if it comes, undoes the latest raise.
    p = pacer()
    p._set(47.0, clock.now)
    p._queued = True
    moving_answers(p, clock, [3, 3], limit=50)
    raised = p.rate
    assert raised == pytest.approx(47.0 * 1.02)
    p._queued = True
    moving_answers(p, clock, [(1, 2), (1, 2)], limit=50)  # a mean of 1.5: fell by 1.5
    assert p.rate is not None
    assert p.rate >= raised
    before = p.rate
    p.answered(True)
    assert p.rate < before


def test_a_sliding_window_released_in_bursts_is_told_from_a_fixed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A sliding log whose requests went out together (released at a pause's end) reports
    # one reset for the whole burst, as a fixed window does; but its next "window" starts
    # when the next burst is admitted, not a window's length after the last: the quota
    # sees that and stops predicting resets for it.
    clock = FakeUnixTime(NOW)
    monkeypatch.setattr(_quota, "time", clock)
    quota = Quota(slack=64, max_wait=120.0)

    def answer(remaining: int, reset: float) -> None:
        quota.observe(
            str(remaining), {"x-ratelimit-limit": "50", "x-ratelimit-reset": f"{reset:.3f}"}
        )

    admitted_at = NOW
    for burst in range(4):
        clock.now = admitted_at + 0.3
        answer(0, admitted_at + 1.0)
        admitted_at += 1.0 + 0.05 * (burst + 1)  # each burst a little after the reset
    assert quota.moving
    assert not quota.fixed
    fixed = Quota(slack=64, max_wait=120.0)
    for window in range(4):  # windows of the clock: a window's length apart
        clock.now = NOW + window + 0.3
        fixed.observe(
            "0", {"x-ratelimit-limit": "50", "x-ratelimit-reset": f"{NOW + window + 1:.3f}"}
        )
    assert fixed.fixed
    assert not fixed.moving


async def test_the_first_waves_429s_set_the_rate_before_a_second_wave_goes_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 64 requests before any answer; 50 admitted, 14 refused, the refusals answered last
    # (the server refused the last to arrive). The workers freed by the first 50 answers
    # must not send unpaced before the 429s are in: they would meet an empty bucket.
    virtual = VirtualClock()
    for module in (_pacing, _retry):
        monkeypatch.setattr(module, "time", virtual)
        monkeypatch.setattr(module, "asyncio", virtual)
    p = pacer()
    for _ in range(64):
        await p.before_attempt()
    rates: list[float | None] = []

    async def second_wave() -> None:
        await p.before_attempt()
        rates.append(p.rate)

    async def answers() -> None:
        virtual.now += 0.3
        workers = []
        for i in range(64):
            p.answered(i >= 50)
            if i < 50:  # a worker freed by an admission sends its next request
                workers.append(asyncio.ensure_future(second_wave()))
            await virtual.sleep(0)  # the worker runs before the next answer
        await asyncio.gather(*workers)

    await virtual.run(answers())
    assert rates == [pytest.approx(50 * MARGIN)] * 50
    assert not p.active or p.rate is not None


async def test_a_first_wave_that_never_finishes_holds_the_client_only_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    virtual = VirtualClock()
    for module in (_pacing, _retry):
        monkeypatch.setattr(module, "time", virtual)
        monkeypatch.setattr(module, "asyncio", virtual)
    p = pacer()
    for _ in range(4):
        await p.before_attempt()
    virtual.now += 0.4
    p.answered(False)  # one answer in 0.4 s; three never come (their connections broke)
    sent: list[float] = []

    async def next_request() -> None:
        await p.before_attempt()
        sent.append(virtual.now)

    await virtual.run(next_request(), next_request())
    assert sent == [pytest.approx(100.6)] * 2  # half the first answer's time, then on
    assert not p.active


def test_without_headers_a_429_after_probes_in_a_row_undoes_them_all(clock: FakeTime) -> None:
    # A bucket behind a gateway (no headers): its burst hides a rate above its refill for
    # probe after probe, until it is drained. The 429 that ends the streak takes the rate
    # back to where the streak began, not one probe down.
    p = pacer()
    p._set(48.5, clock.now)
    for _ in range(5):
        p._queued = True
        feed(p, clock, 210, 10**9, 0.01)
    assert p.rate is not None
    assert p.rate > 48.5 * 1.02**3
    p.answered(True)
    assert p.rate == pytest.approx(48.5)


async def test_requests_queued_at_a_rate_take_new_slots_when_it_is_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Five queued at 10/s hold slots up to 0.4 s ahead; the rate is then cut to 2/s. Slots
    # kept from before would go on sending at 10/s for as long as requests were queued (a
    # second wave of cuts at C=256, each against the old rate still in the queue).
    virtual = VirtualClock()
    for module in (_pacing, _retry):
        monkeypatch.setattr(module, "time", virtual)
        monkeypatch.setattr(module, "asyncio", virtual)
    p = pacer()
    p._set(10.0, virtual.now)
    sent: list[float] = []

    async def attempt() -> None:
        await p.before_attempt()
        sent.append(virtual.now)

    async def cut() -> None:
        await asyncio.sleep(0)  # once the five have taken their slots
        p._set(2.0, virtual.now)

    await virtual.run(*(attempt() for _ in range(5)), cut())
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(sent[1:])]
    assert sent[0] == pytest.approx(100.0)
    assert gaps == [0.5, 0.5, 0.5]


# --- pacing learned elsewhere (Ray's actors) ------------------------------------------------


def test_a_rate_learned_elsewhere_ends_the_first_wave_and_a_pause_holds_the_client(
    clock: FakeTime,
) -> None:
    p = pacer()
    p.adopt(24.0, 0.5)
    assert p.rate == pytest.approx(24.0)
    assert p.active
    assert p._wave == _pacing._OVER  # nothing to learn from a wave: the rate is known
    assert p.cooldown.deadline > 0  # the pause another pacer took
    assert p._next >= p.cooldown.deadline  # the slots after it start at its end
    p.adopt(None, 0.0)
    assert p.rate == pytest.approx(24.0)  # no rate known elsewhere changes nothing here


def test_a_probe_learned_elsewhere_is_undone_by_a_429_here(clock: FakeTime) -> None:
    p = pacer()
    p._set(25.0, clock.now)
    clock.now += 3.0
    p.adopt(25.5, 0.0)  # another actor's probe of 2 %
    assert p.rate == pytest.approx(25.5)
    p.answered(True)
    assert p.rate == pytest.approx(25.0)  # the first 429 after a probe undoes it
    p.adopt(50.0, 0.0)  # a larger share (an actor left): no probe, not undone
    p.answered(True)
    assert p.rate == pytest.approx(50.0)
    p.adopt(20.0, 0.0)  # a cut elsewhere: the share of 429s here starts afresh
    assert (p.rate, p._total) == (pytest.approx(20.0), 0)


def test_a_quota_429s_pause_is_the_servers_word_not_the_retrys_jitter() -> None:
    # A retried quota 429 waits its delay (the server's 0.5 s and up to 0.1 s of jitter);
    # the whole client pauses for the server's 0.5 s and a few milliseconds: the longest of
    # a wave of 429s' jitters would hold every request that long past the window's reset.
    p = pacer()
    headers = {"x-ratelimit-remaining": "0", "retry-after": "0.5"}
    error = RateLimitError(
        "429", status_code=429, headers=headers, body="{}", request_id=None, retry_after=0.5
    )
    p.refused(error, 0.6, 120.0)
    assert 0.45 < p.cooldown.remaining() <= 0.511


def test_a_reset_that_moves_later_within_its_window_is_a_moving_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A sliding window paced at its edge: one left, its reset (when the oldest leaves) a
    # little later with every answer. Its length is never seen between two resets; that
    # its reset moved while the window had most of a second to go says what it is.
    clock = FakeUnixTime(NOW)
    monkeypatch.setattr(_quota, "time", clock)
    sliding, fixed = Quota(slack=64, max_wait=120.0), Quota(slack=64, max_wait=120.0)
    for i in range(20):
        clock.now = NOW + 0.02 * i
        sliding.observe(
            "1", {"x-ratelimit-limit": "50", "x-ratelimit-reset": f"{clock.now + 0.98:.3f}"}
        )
        fixed.observe("1", {"x-ratelimit-limit": "50", "x-ratelimit-reset": f"{NOW + 1:.3f}"})
    assert sliding.moving
    assert not fixed.moving
