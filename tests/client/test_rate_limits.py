"""TokenBucket and AdaptiveLimit on a fake clock: no test waits for real time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from reka_async._http import budget as _budget
from reka_async.batch import AdaptiveLimit, RateBudget, TokenBucket
from reka_async.batch import limits as _ratelimit


class FakeClock:
    """A clock that only moves when told to (or when a patched sleep advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.hold: asyncio.Event | None = None  # when set, sleeps wait for it first

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake clock; ``asyncio.sleep`` as seen by ``_ratelimit`` advances it instead of waiting."""
    fake = FakeClock()
    real_sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        fake.sleeps.append(delay)
        if fake.hold is not None:
            await fake.hold.wait()
        fake.advance(delay)
        await real_sleep(0)  # still a suspension point, as a real sleep is

    monkeypatch.setattr(_ratelimit, "asyncio", _AsyncioWithSleep(fake_sleep))
    monkeypatch.setattr(_budget, "asyncio", _AsyncioWithSleep(fake_sleep))
    return fake


class _AsyncioWithSleep:
    """The asyncio module as ``_ratelimit`` sees it, with ``sleep`` replaced (and nothing else)."""

    def __init__(self, sleep: Callable[[float], Coroutine[Any, Any, None]]) -> None:
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


async def _yield_until(predicate: Callable[[], bool], rounds: int = 100) -> None:
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


# --- TokenBucket ------------------------------------------------------------------------------


def test_bucket_starts_full_and_rejects_non_positive_rates() -> None:
    bucket = TokenBucket(60, clock=FakeClock(), capacity=60)
    assert bucket.level == 60.0
    assert bucket.capacity == 60.0
    assert bucket.per_second == pytest.approx(1.0)
    # The default burst is one second's worth, and at least one unit.
    assert TokenBucket(600, clock=FakeClock()).capacity == 10.0
    assert TokenBucket(6, clock=FakeClock()).capacity == 1.0
    with pytest.raises(ValueError, match="capacity"):
        TokenBucket(10, capacity=0)
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(10, period=0)


async def test_acquire_within_burst_does_not_wait(clock: FakeClock) -> None:
    bucket = TokenBucket(60, clock=clock, capacity=60)  # 60 per minute, burst 60
    for _ in range(60):
        await bucket.acquire()
    assert clock.sleeps == []
    assert bucket.level == pytest.approx(0.0)


async def test_rpm_acquire_beyond_burst_waits_for_refill(clock: FakeClock) -> None:
    bucket = TokenBucket(60, clock=clock, capacity=5)  # one per second, burst of 5
    start = clock.now
    for _ in range(5):
        await bucket.acquire()
    assert clock.sleeps == []
    await bucket.acquire()
    # The sixth request waits exactly one refill interval (1 s at 60 rpm).
    assert clock.now - start == pytest.approx(1.0)
    assert sum(clock.sleeps) == pytest.approx(1.0)
    for _ in range(3):
        await bucket.acquire()
    assert clock.now - start == pytest.approx(4.0)
    assert bucket.level == pytest.approx(0.0, abs=1e-9)


async def test_refill_is_continuous_and_capped(clock: FakeClock) -> None:
    bucket = TokenBucket(120, clock=clock, capacity=120)  # 2 per second, burst 120
    await bucket.acquire(100)
    assert bucket.level == pytest.approx(20.0)
    clock.advance(10)
    assert bucket.level == pytest.approx(40.0)
    clock.advance(3600)
    assert bucket.level == pytest.approx(120.0)  # never above capacity


async def test_acquire_waits_only_for_the_missing_part(clock: FakeClock) -> None:
    bucket = TokenBucket(600, clock=clock, capacity=600)  # 10 per second
    await bucket.acquire(595)
    await bucket.acquire(25)  # 5 available, 20 missing -> 2 s
    assert sum(clock.sleeps) == pytest.approx(2.0)
    assert bucket.level == pytest.approx(0.0, abs=1e-9)


async def test_refund_returns_units_but_caps_at_capacity(clock: FakeClock) -> None:
    bucket = TokenBucket(1000, clock=clock, capacity=1000)
    await bucket.acquire(800)
    bucket.refund(300)
    assert bucket.level == pytest.approx(500.0)
    bucket.refund(10_000)
    assert bucket.level == pytest.approx(1000.0)
    bucket.refund(0)
    bucket.refund(-50)  # nothing to give back: ignored, not a hidden consume
    assert bucket.level == pytest.approx(1000.0)


async def test_refund_lets_a_waiting_acquire_through_sooner(clock: FakeClock) -> None:
    bucket = TokenBucket(60, clock=clock, capacity=10)  # 1 per second
    await bucket.acquire(10)
    bucket.refund(4)
    await bucket.acquire(5)  # 4 refunded + 1 s of refill
    assert sum(clock.sleeps) == pytest.approx(1.0)


async def test_consume_goes_negative_and_later_acquires_wait_it_off(clock: FakeClock) -> None:
    bucket = TokenBucket(60, clock=clock, capacity=10)  # 1 per second
    bucket.consume(15)
    assert bucket.level == pytest.approx(-5.0)
    assert clock.sleeps == []  # consume never waits
    await bucket.acquire(1)
    assert sum(clock.sleeps) == pytest.approx(6.0)  # 5 of debt + the unit itself


async def test_amount_above_capacity_waits_for_a_full_bucket_not_forever(
    clock: FakeClock,
) -> None:
    bucket = TokenBucket(60, clock=clock, capacity=10)
    await bucket.acquire(4)
    await asyncio.wait_for(bucket.acquire(50), timeout=5)  # would spin forever if not capped
    assert sum(clock.sleeps) == pytest.approx(4.0)  # refill from 6 to the full 10
    # It took all 50: the bucket is in debt, and the next unit waits the 40 off first.
    assert bucket.level == pytest.approx(-40.0)
    await bucket.acquire(1)
    assert sum(clock.sleeps) == pytest.approx(4.0 + 41.0)


async def test_acquire_is_first_come_first_served(clock: FakeClock) -> None:
    bucket = TokenBucket(60, clock=clock, capacity=1)
    await bucket.acquire()
    order: list[int] = []

    async def take(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    await asyncio.gather(*(take(i) for i in range(5)))
    assert order == [0, 1, 2, 3, 4]
    assert sum(clock.sleeps) == pytest.approx(5.0)


async def test_cancelled_acquire_takes_nothing_and_frees_the_lock(clock: FakeClock) -> None:
    bucket = TokenBucket(60, clock=clock, capacity=10)  # 1 per second
    await bucket.acquire(10)
    clock.hold = asyncio.Event()
    task = asyncio.create_task(bucket.acquire(5))
    await _yield_until(lambda: bool(clock.sleeps))  # it is waiting for refill
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    clock.hold = None
    assert bucket.level == 0.0  # the cancelled call took nothing
    clock.advance(5)
    await asyncio.wait_for(bucket.acquire(5), timeout=5)  # the lock is free again
    assert len(clock.sleeps) == 1  # and the 5 refilled units were there to take
    assert bucket.level == pytest.approx(0.0, abs=1e-9)


def test_bucket_repr_shows_live_state() -> None:
    bucket = TokenBucket(60, clock=FakeClock(), capacity=60)
    bucket.consume(20)
    assert repr(bucket) == "<TokenBucket level=40.0/60 rate=60/min>"


@pytest.mark.parametrize(("rpm", "burst"), [(600, None), (120, None), (600, 25.0), (30, None)])
async def test_no_window_ever_sees_more_than_rate_times_w_plus_burst(
    clock: FakeClock, rpm: float, burst: float | None
) -> None:
    """The budget's promise: in any window of W s, at most rpm*W/60 + burst requests."""
    budget = RateBudget(rpm=rpm, request_burst=burst, clock=clock)
    assert budget.requests is not None
    cap = budget.requests.capacity
    assert cap == (burst if burst is not None else max(1.0, rpm / 60))
    sent: list[float] = []
    for _ in range(200):  # as fast as the budget allows
        await budget.requests.acquire()
        sent.append(clock.now)
    for i, start in enumerate(sent):
        for width in (0.0, 0.5, 1.0, 3.0, 10.0):
            inside = sum(1 for t in sent[i:] if t <= start + width)
            assert inside <= rpm * width / 60 + cap + 1e-9
    # ...and it is not stingy: the long-run rate is the budget's.
    assert (len(sent) - cap) / (sent[-1] - sent[0]) == pytest.approx(rpm / 60, rel=1e-6)


def test_rate_budget_checks_its_numbers() -> None:
    with pytest.raises(ValueError, match="rpm"):
        RateBudget(rpm=0)
    with pytest.raises(ValueError, match="token_burst"):
        RateBudget(tpm=10, token_burst=-1)
    budget = RateBudget(rpm=120, tpm=6000)
    assert (budget.rpm, budget.tpm) == (pytest.approx(120), pytest.approx(6000))
    assert RateBudget().requests is None


# --- AdaptiveLimit ----------------------------------------------------------------------------


def test_limit_starts_at_maximum() -> None:
    limit = AdaptiveLimit(8, clock=FakeClock())
    assert limit.limit == 8.0
    assert limit.min_seen == 8.0
    assert limit.in_use == 0


def test_overload_halves_at_most_once_per_interval() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(16, decrease_interval=1.0, clock=clock)
    limit.on_overload()
    assert limit.limit == 8.0
    limit.on_overload()  # same burst of 429s: one signal
    clock.advance(0.999)
    limit.on_overload()
    assert limit.limit == 8.0
    clock.advance(0.001)
    limit.on_overload()
    assert limit.limit == 4.0
    assert limit.min_seen == 4.0


def test_overload_never_goes_below_one() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(4, clock=clock)
    for _ in range(10):
        limit.on_overload()
        clock.advance(5)
    assert limit.limit == 1.0
    assert limit.min_seen == 1.0


def test_success_grows_by_about_one_per_window() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(16, clock=clock)
    limit.on_overload()
    assert limit.limit == 8.0
    seen = [limit.limit]
    for _ in range(8):  # one window of successes at limit 8: +1/limit each
        limit.on_success()
        seen.append(limit.limit)
    assert seen == sorted(seen)
    assert 8.9 < limit.limit < 9.0
    for _ in range(9):  # the next window is one success longer
        limit.on_success()
    assert 9.85 < limit.limit < 10.0
    assert limit.min_seen == 8.0  # growth does not rewrite history


def test_success_never_exceeds_maximum() -> None:
    limit = AdaptiveLimit(3, clock=FakeClock())
    for _ in range(1000):
        limit.on_success()
    assert limit.limit == 3.0
    limit.on_overload()
    for _ in range(1000):
        limit.on_success()
    assert limit.limit == 3.0


async def test_gate_hands_slots_over_first_come_first_served() -> None:
    limit = AdaptiveLimit(1, clock=FakeClock())
    await limit.acquire()
    order: list[int] = []

    async def take(i: int) -> None:
        await limit.acquire()
        order.append(i)

    waiters = [asyncio.create_task(take(i)) for i in range(3)]
    await asyncio.sleep(0)
    for _ in range(3):
        limit.release_nowait()
        for _ in range(5):
            await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]
    assert limit.in_use == 1


async def test_a_cancelled_waiter_loses_no_slot() -> None:
    limit = AdaptiveLimit(1, clock=FakeClock())
    await limit.acquire()
    cancelled = asyncio.create_task(limit.acquire())
    woken_then_cancelled = asyncio.create_task(limit.acquire())
    last = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()  # cancelled while waiting: skipped when a slot frees
    await asyncio.sleep(0)
    limit.release_nowait()  # goes to the second waiter...
    woken_then_cancelled.cancel()  # ...which is cancelled before it runs: it passes it on
    await asyncio.wait_for(last, timeout=5)
    for task in (cancelled, woken_then_cancelled):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert limit.in_use == 1


async def test_growth_admits_waiters_without_a_release() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(2, clock=clock)
    limit.on_overload()  # limit 1
    await limit.acquire()
    waiter = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    limit.on_success()  # 1 + 1/1 = 2 slots
    await asyncio.wait_for(waiter, timeout=5)
    assert limit.in_use == 2


async def test_gate_blocks_at_limit_and_release_admits_the_next() -> None:
    limit = AdaptiveLimit(2, clock=FakeClock())
    await limit.acquire()
    await limit.acquire()
    assert limit.in_use == 2
    waiter = asyncio.create_task(limit.acquire())
    for _ in range(20):  # give it every chance to (wrongly) get through
        await asyncio.sleep(0)
    assert not waiter.done()
    assert limit.in_use == 2
    await limit.release()
    await asyncio.wait_for(waiter, timeout=5)
    assert limit.in_use == 2


async def test_gate_follows_a_lowered_limit() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(4, clock=clock)
    for _ in range(4):
        await limit.acquire()
    limit.on_overload()  # 4 -> 2 while 4 are in use
    waiter = asyncio.create_task(limit.acquire())
    await limit.release()
    await limit.release()  # in use: 2 = the new limit, still no room
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiter.done()
    await limit.release()  # in use 1 < 2: the waiter gets in
    await asyncio.wait_for(waiter, timeout=5)
    assert limit.in_use == 2


async def test_cancelled_waiter_does_not_take_a_slot() -> None:
    limit = AdaptiveLimit(1, clock=FakeClock())
    await limit.acquire()
    waiter = asyncio.create_task(limit.acquire())
    for _ in range(5):
        await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await limit.release()
    assert limit.in_use == 0
    await asyncio.wait_for(limit.acquire(), timeout=5)
    assert limit.in_use == 1
