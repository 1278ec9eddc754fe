"""The mock's four limiter kinds on a fake clock: each kind's admission sequence and the truth
of its headers, pinned before any client paces against them (so the two are not tuned to
each other)."""

from __future__ import annotations

import aiohttp
import pytest

from reka_async.testing import MockRekaServer
from reka_async.testing._limiters import LIMITER_KINDS, Limiter, limiter_of

T0 = 1_800_000_000.0  # a window edge of every window length used below


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def admissions(limiter: Limiter, clock: Clock, times: list[float]) -> str:
    """'+' for each request admitted at ``T0 + t``, '-' for each refused."""
    out = []
    for t in times:
        clock.now = T0 + t
        out.append("+" if limiter.admit() else "-")
    return "".join(out)


def test_fixed_windows_admit_n_per_clock_window_and_reset_at_its_end() -> None:
    clock = Clock()
    limiter = limiter_of(None, "5/s", "fixed", clock)
    # 7 at 0.9 s: 5 admitted; at 1.0 a new window, however recent the last admissions.
    assert admissions(limiter, clock, [0.9] * 7 + [1.0] * 6) == "+++++--" + "+++++-"
    headers = limiter.headers("r")
    assert headers["x-ratelimit-remaining"] == "0"
    assert headers["x-ratelimit-reset"] == f"{T0 + 2:.3f}"
    clock.now = T0 + 1.25
    assert float(limiter.refusal("r")["retry-after"]) == pytest.approx(0.75)
    assert (limiter.admitted, limiter.refused) == (10, 3)


def test_a_sliding_window_admits_at_most_n_in_any_trailing_window() -> None:
    clock = Clock()
    limiter = limiter_of(None, "5/s", "sliding", clock)
    # 5 at 0.9 s; at 1.0 the fixed kind would admit 5 more, a sliding window none: the
    # five are still inside [0.0, 1.0]; at 1.9 they leave, all at once.
    assert admissions(limiter, clock, [0.9] * 5 + [1.0, 1.5, 1.89]) == "+++++---"
    clock.now = T0 + 1.5
    headers = limiter.headers("r")
    assert headers["x-ratelimit-remaining"] == "0"
    assert headers["x-ratelimit-reset"] == f"{T0 + 1.9:.3f}"  # when the oldest leaves
    assert float(limiter.refusal("r")["retry-after"]) == pytest.approx(0.4)
    assert admissions(limiter, clock, [1.9] * 6) == "+++++-"
    # Spread admissions: one every 0.2 s is exactly the limit, never refused.
    spread = limiter_of(None, "5/s", "sliding", clock)
    assert admissions(spread, clock, [10 + 0.2 * i for i in range(20)]) == "+" * 20


def test_a_bucket_admits_a_burst_then_refills_continuously() -> None:
    clock = Clock()
    limiter = limiter_of(None, "5/s", "bucket", clock)
    # A burst of 5, then one per 0.2 s (5 a second, refilled continuously, not per window).
    assert admissions(limiter, clock, [0.0] * 6) == "+++++-"
    assert admissions(limiter, clock, [0.1, 0.2, 0.3, 0.4, 0.4]) == "-+-+-"
    clock.now = T0 + 0.5
    headers = limiter.headers("r")
    assert headers["x-ratelimit-limit"] == "300"  # per minute, as OpenAI's headers say
    assert headers["x-ratelimit-remaining"] == "0"  # a fill of 0.5
    assert float(headers["x-ratelimit-reset"]) == pytest.approx(T0 + 0.5 + 4.5 / 5, abs=1e-3)
    assert float(limiter.refusal("r")["retry-after"]) == pytest.approx(0.1)
    # Idle, it refills up to its burst and no further.
    assert admissions(limiter, clock, [100.0] * 6) == "+++++-"


def test_a_bare_bucket_admits_as_the_bucket_and_sends_no_rate_limit_headers() -> None:
    clock, bare_clock = Clock(), Clock()
    bucket = limiter_of(None, "5/s", "bucket", clock)
    bare = limiter_of(None, "5/s", "bare", bare_clock)
    times = [0.0] * 7 + [0.1 * i for i in range(1, 30)]
    assert admissions(bare, bare_clock, times) == admissions(bucket, clock, times)
    assert not [h for h in bare.refusal("r") if h.startswith("x-ratelimit")]
    assert float(bare.refusal("r")["retry-after"]) > 0
    assert not [h for h in bare.headers("r") if h.startswith("x-ratelimit")]


def test_limiter_options_are_checked() -> None:
    with pytest.raises(ValueError, match="fixed, sliding, bucket, bare"):
        MockRekaServer(rate_limit="5/s", rate_limit_kind="leaky")
    with pytest.raises(ValueError, match="needs a limit"):
        MockRekaServer(rate_limit_kind="bucket")
    assert {limiter_of(60, None, kind, Clock()).kind for kind in LIMITER_KINDS} == set(
        LIMITER_KINDS
    )


@pytest.mark.parametrize("kind", LIMITER_KINDS)
async def test_each_kind_answers_429s_over_sockets_and_counts_them(kind: str) -> None:
    clock = Clock(T0 + 0.5)
    async with (
        MockRekaServer(rate_limit="3/s", rate_limit_kind=kind, clock=clock) as server,
        aiohttp.ClientSession() as session,
    ):
        statuses = []
        for _ in range(4):
            async with session.post(
                f"{server.base_url}/chat",
                json={"model": "reka-flash", "messages": [{"role": "user", "content": "hi"}]},
                headers={"X-Api-Key": "k"},
            ) as resp:
                statuses.append(resp.status)
                await resp.read()
                last = resp.headers
    assert statuses == [200, 200, 200, 429]
    assert "retry-after" in last
    assert ("x-ratelimit-remaining" in last) is (kind != "bare")
    assert (server.limiter.admitted, server.limiter.refused) == (3, 1)
    assert [r.fault for r in server.requests].count("rate_limit") == 1
