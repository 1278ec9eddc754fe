"""The mock's four limiter kinds on a fake clock: each kind's admission sequence and the truth
of its headers, pinned before any client paces against them (so the two are not tuned to
each other)."""

from __future__ import annotations

import aiohttp
import pytest
from multidict import CIMultiDict

from reka_async.testing import MockRekaServer
from reka_async.testing._limiters import LIMITER_KINDS, Limiter, limiter_of, token_limiter_of

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


# --- token limits: the same four kinds, counted in the tokens the mock bills -----------------
#
# A token limiter admits a request while its window has a token left; the request's tokens
# (the usage billed, input and output) are charged when it is billed, so requests in flight
# can overdraw a window, which then refuses until it is back above zero. ``charged`` below
# charges each admitted request at once, as an answer with no latency would be.


def charged(limiter: Limiter, clock: Clock, steps: list[tuple[float, int]]) -> str:
    """'+' for each request admitted at ``T0 + t`` (then charged its tokens), '-' for each
    refused (nothing charged)."""
    out = []
    for t, tokens in steps:
        clock.now = T0 + t
        if limiter.allows():
            limiter.charge(tokens)
            out.append("+")
        else:
            out.append("-")
    return "".join(out)


def test_a_fixed_token_window_admits_until_spent_and_resets_at_its_end() -> None:
    clock = Clock()
    tokens = token_limiter_of("20/s", "fixed", clock)
    # 7 tokens a request: the third overdraws the window (21 of 20), the fourth is refused.
    assert charged(tokens, clock, [(0.1, 7), (0.2, 7), (0.3, 7), (0.4, 7)]) == "+++-"
    state = tokens.state()
    assert state == {
        "x-ratelimit-limit-tokens": "20",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "600ms",  # a duration, OpenAI's form, to the window's end
    }
    assert tokens.retry_in() == pytest.approx(0.6, abs=1e-6)
    # The next window starts afresh, whatever the last one's overdraft.
    assert charged(tokens, clock, [(1.0, 19), (1.5, 7), (1.6, 7)]) == "++-"
    assert tokens.state()["x-ratelimit-reset-tokens"] == "400ms"
    assert (tokens.admitted, tokens.refused, tokens.charged) == (5, 2, 47)


def test_requests_in_flight_overdraw_a_token_window_and_are_charged_when_billed() -> None:
    clock = Clock()
    tokens = token_limiter_of("20/s", "fixed", clock)
    clock.now = T0 + 0.1
    assert [tokens.allows() for _ in range(5)] == [True] * 5  # nothing billed yet
    for _ in range(5):
        tokens.charge(7)  # their answers, billed a latency later
    assert tokens.state()["x-ratelimit-remaining-tokens"] == "0"  # 35 of 20: never negative
    assert not tokens.allows()


def test_a_sliding_token_window_admits_while_its_trailing_window_has_a_token_left() -> None:
    clock = Clock()
    tokens = token_limiter_of("20/s", "sliding", clock)
    steps = [(0.0, 7), (0.2, 7), (0.4, 7), (0.5, 7), (1.05, 7), (1.1, 7), (1.25, 7)]
    # By 1.05 the tokens charged at 0.0 have left (14 in the window): admitted; at 1.1
    # none is left (the 0.2 charge leaves at 1.2); at 1.25 it has.
    assert charged(tokens, clock, steps) == "+++-+-+"
    clock.now = T0 + 1.3
    state = tokens.state()
    assert state["x-ratelimit-remaining-tokens"] == "0"
    assert state["x-ratelimit-reset-tokens"] == "100ms"  # when the oldest (0.4) leaves
    assert tokens.retry_in() == pytest.approx(0.1, abs=1e-6)


def test_a_sliding_token_window_says_when_enough_tokens_have_left_to_admit_again() -> None:
    clock = Clock()
    tokens = token_limiter_of("20/s", "sliding", clock)
    assert charged(tokens, clock, [(0.0, 1), (0.1, 30), (0.5, 1)]) == "++-"
    # The oldest charge (1 token) leaves at 1.0, and 30 are still in the window: the next
    # admission is when the 30 leave, at 1.1; the reset header names the oldest's leaving.
    assert tokens.state()["x-ratelimit-reset-tokens"] == "500ms"
    assert tokens.retry_in() == pytest.approx(0.6, abs=1e-6)
    assert charged(tokens, clock, [(1.05, 1), (1.15, 1)]) == "-+"


def test_a_token_bucket_refills_continuously_and_an_overdraft_is_paid_off_first() -> None:
    clock = Clock()
    tokens = token_limiter_of("20/s", "bucket", clock)
    # A burst of 20 tokens: the third request overdraws it to -1, the fourth is refused.
    assert charged(tokens, clock, [(0.0, 7)] * 4) == "+++-"
    # At 0.11, 2.2 tokens refilled: a fill of 1.2, admitted (and overdrawn to -5.8); at
    # 0.2, -4.
    assert charged(tokens, clock, [(0.11, 7), (0.2, 7)]) == "+-"
    state = tokens.state()
    assert state["x-ratelimit-limit-tokens"] == "1200"  # per minute, as OpenAI's headers say
    assert state["x-ratelimit-remaining-tokens"] == "0"
    assert state["x-ratelimit-reset-tokens"] == "1.2s"  # until full: 24 tokens at 20 a second
    assert tokens.retry_in() == pytest.approx(0.25, abs=1e-6)  # to a fill of 1
    assert charged(tokens, clock, [(0.44, 1), (0.46, 1)]) == "-+"
    assert charged(tokens, clock, [(100.0, 20), (100.0, 1)]) == "+-"  # full again, no more


def test_a_bare_token_bucket_admits_as_the_bucket_and_sends_no_header() -> None:
    clock, bare_clock = Clock(), Clock()
    bucket = token_limiter_of("20/s", "bucket", clock)
    bare = token_limiter_of("20/s", "bare", bare_clock)
    steps = [(0.0, 7)] * 5 + [(0.05 * i, 3) for i in range(1, 40)]
    assert charged(bare, bare_clock, steps) == charged(bucket, clock, steps)
    assert bare.state() == {}
    assert bare.retry_in() > 0


def test_the_token_limit_is_checked() -> None:
    with pytest.raises(ValueError, match="token limit 'lots'"):
        MockRekaServer(token_limit="lots")
    with pytest.raises(ValueError, match="TOKENS/WINDOW"):
        token_limiter_of("0/s", "fixed", Clock())
    # A token limit alone is a limit: a kind other than fixed needs no request limit then.
    server = MockRekaServer(token_limit="1000/s", rate_limit_kind="bucket")
    assert server.token_limiter is not None
    assert server.token_limiter.kind == "bucket"
    assert server.limiter.kind == "bucket"  # the requests' own, never reached


async def post(session: aiohttp.ClientSession, url: str, text: str) -> tuple[int, CIMultiDict[str]]:
    async with session.post(
        f"{url}/chat",
        json={"model": "reka-flash", "messages": [{"role": "user", "content": text}]},
        headers={"X-Api-Key": "k"},
    ) as resp:
        await resp.read()
        return resp.status, CIMultiDict(resp.headers)


@pytest.mark.parametrize("kind", LIMITER_KINDS)
async def test_each_kind_limits_the_tokens_it_bills_over_sockets(kind: str) -> None:
    # "item 1" is billed 7 tokens (2 in, 5 out): 15 tokens admit three requests (the third
    # overdraws), then the fourth is refused; the request limit is far away.
    clock = Clock(T0 + 0.5)
    async with (
        MockRekaServer(
            rate_limit="100/s", token_limit="15/s", rate_limit_kind=kind, clock=clock
        ) as server,
        aiohttp.ClientSession() as session,
    ):
        answers = [await post(session, server.base_url, "item 1") for _ in range(4)]
    assert [status for status, _ in answers] == [200, 200, 200, 429]
    assert server.billed == [("reka-flash", 2, 5)] * 3
    tokens = server.token_limiter
    assert tokens is not None
    assert (tokens.admitted, tokens.refused, tokens.charged) == (3, 1, 21)
    # The token refusal took no request slot; the request limiter admitted three.
    assert (server.limiter.admitted, server.limiter.refused) == (3, 0)
    refusal = answers[-1][1]
    assert "retry-after" in refusal
    if kind == "bare":
        assert not [h for h in refusal if h.lower().startswith("x-ratelimit")]
    else:
        # Each answer's headers tell the state after its own charge; the 429 says spent.
        assert [h.get("x-ratelimit-remaining-tokens") for _, h in answers] == ["8", "1", "0", "0"]
        assert refusal["x-ratelimit-remaining"] != "0"  # requests remain: tokens are spent
