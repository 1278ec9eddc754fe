"""``Pacer``: what an attempt waits for before it is sent, shared by a client's copies.

It holds the client's shared ``Cooldown`` (tripped by a quota 429, so every request of the
client waits), the key's window as the server's ``x-ratelimit-*`` headers describe it
(``Quota``) and the learned send rate. The rule it applies is written once, in
``_http/quota.py``'s docstring. The request loop holds one (composition: ``Transport.pacer``),
and ``BatchStats`` reads it.

One pacer per (key, origin): a client and its ``with_options`` copies share one for each
pair of API key and scheme, host and port they talk to (a copy with another key has its own;
one with another path on the same host, or back to an earlier key, takes the pair's). Two
clients made apart share none, by choice: a pacer's waits belong to one event loop (a sync
``Client`` runs its own), and a process-wide registry would carry one client's pause (or a
test's) into another that never asked for it; the library keeps no state of the process.
To pace every request of a key together, send them through one client or its copies, or
hand a client made later the pacer of an earlier one (``AsyncClient(pacer=...)``, on the
same event loop). Ray's actors, processes of their own, share a pacer's state through their
shared actor (``reka_async/integrations/ray/_limiter.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Mapping
from typing import Any, Final, Literal

from .._exceptions import APIError, APIStatusError, InsufficientCreditsError, RateLimitError
from .quota import PER_MINUTE, Quota, declared_rate, has_rate_headers, quota_spent
from .retry import Cooldown

_OPENAI_LIMIT, _ANTHROPIC_LIMIT = PER_MINUTE  # (observe() looks both up before a call)

__all__ = [
    "CUT_SHARE",
    "MARGIN",
    "MAX_SHARE_WINDOW_S",
    "MIN_ANSWERS",
    "PACED_CUT_SHARE",
    "SHARE_WINDOW_S",
    "Pacer",
    "RateLimitKind",
]

#: The answers the share of 429s is measured over: those of the last this many seconds.
SHARE_WINDOW_S: Final = 2.0
#: The fewest answers in that window for the share to count. A client answered fewer times
#: than this over ``SHARE_WINDOW_S`` (paced below 25 requests a second) has its share read
#: over as many of the answers before as make up ``MIN_ANSWERS``, back at most
#: ``MAX_SHARE_WINDOW_S``.
MIN_ANSWERS: Final = 50
#: The furthest back the share of 429s is read, for a client answered too seldom for
#: ``SHARE_WINDOW_S`` to hold ``MIN_ANSWERS``.
MAX_SHARE_WINDOW_S: Final = 8.0
#: The share of rate-limit 429s above which an unpaced client starts pacing.
CUT_SHARE: Final = 0.10
#: The share above which a paced client cuts its rate again.
PACED_CUT_SHARE: Final = 0.03
#: The share of a declared or measured rate the pacer sends at.
MARGIN: Final = 0.97
_PROBE: Final = 1.02  # a quiet, queued client raises its rate by this factor
_BUCKET_S: Final = 0.25  # answers are counted in buckets this long (no per-answer objects)
_BUCKETS: Final = int(SHARE_WINDOW_S / _BUCKET_S)  # the share window's buckets
_RING: Final = int(MAX_SHARE_WINDOW_S / _BUCKET_S)  # the buckets kept (the longest read-back)
#: A moving window (sliding or bucket) must show at least this many ``remaining`` at its
#: lowest over a probe's interval, and no fall from the interval before, to be probed.
_PROBE_ROOM: Final = 2.0
_MIN_RATE: Final = 0.1
_QUIET_S: Final = 10.0  # no probe for this long after a probe met a 429
#: The first wave's stragglers are awaited at most this share of its first answer's time.
_WAVE_WAIT: Final = 0.5
_COLLECTING, _GATED, _OVER = 0, 1, 2  # the first wave: being sent, being answered, over

#: The kind of a rate-limit 429 (``_http/quota.py``).
RateLimitKind = Literal["quota", "unlabelled", "overload"]


class Pacer:
    """The shared cooldown, the key's window and the learned send rate (see the module
    docstring).

    Args:
        quota: the key's window.
    """

    __slots__ = (
        "_bucket",
        "_ceiling",
        "_changed_at",
        "_checked_at",
        "_counts",
        "_epoch",
        "_first_at",
        "_last_429",
        "_last_spent",
        "_next",
        "_prev_mean",
        "_probed_from",
        "_queued",
        "_quiet_until",
        "_refusals",
        "_refused",
        "_slot",
        "_streak_from",
        "_total",
        "_wave",
        "_wave_answered",
        "_wave_at",
        "_wave_open",
        "_wave_sent",
        "_wave_took",
        "cooldown",
        "cuts",
        "kinds",
        "paced_s",
        "quota",
        "rate",
    )

    def __init__(self, quota: Quota) -> None:
        self.cooldown = Cooldown()
        self.quota = quota
        #: The learned send rate, requests per second (``None``: not paced).
        self.rate: float | None = None
        #: Times the rate was set or cut from the share of 429s.
        self.cuts = 0
        #: Rate-limit 429s by kind.
        self.kinds: dict[str, int] = {"quota": 0, "unlabelled": 0, "overload": 0}
        #: Total seconds requests waited for their send slot.
        self.paced_s = 0.0
        self._ceiling: float | None = None  # a declared rate: never probed above
        self._next = 0.0  # monotonic time of the next free send slot
        self._epoch = 0  # counts rate decreases: a slot taken before one is taken again
        # Answers of the last MAX_SHARE_WINDOW_S, in a ring of _RING counts (answers, and
        # rate-limit 429s among them) indexed by the bucket number of their time; the
        # share is read over its last _BUCKETS (SHARE_WINDOW_S), or further back when those
        # hold fewer than MIN_ANSWERS (``_refusal``).
        self._counts = [0] * _RING
        self._refusals = [0] * _RING
        self._bucket = 0  # the bucket number (monotonic time / _BUCKET_S) of the latest
        self._total = 0  # answers in the share window (the ring's last _BUCKETS)
        self._slot = 0  # its place in the ring (_bucket % _RING)
        self._refused = 0  # rate-limit 429s in the share window
        self._first_at = 0.0  # the time of the ring's oldest answer (0.0: empty)
        self._prev_mean = -math.inf  # the mean remaining of the probe interval before
        self._checked_at = -float("inf")  # the end of the latest probe interval
        # The first wave (requests sent before any answer): once its first answer is in,
        # no request goes out until the rest are (or a while has passed), so that the share
        # of its 429s can set the rate before a second wave goes out unpaced.
        self._wave = _COLLECTING
        self._wave_sent = 0
        self._wave_answered = 0
        self._wave_at = 0.0  # its first send, then its first answer (monotonic)
        self._wave_took = 0.0  # from its first send to its first answer
        self._wave_open: asyncio.Event | None = None
        self._changed_at = -float("inf")
        self._last_429 = -float("inf")
        self._last_spent = -float("inf")
        self._queued = False  # a request waited for its slot since the last probe
        self._probed_from: float | None = None  # the rate before the latest probe
        self._streak_from: float | None = None  # the rate before the probes in a row began
        self._quiet_until = -float("inf")  # no probe before this (a probe was undone)

    def __repr__(self) -> str:
        rate = "unpaced" if self.rate is None else f"rate={self.rate:.2f}/s"
        return f"<Pacer {rate} {self.cooldown!r} {self.quota!r}>"

    @property
    def active(self) -> bool:
        """Whether an attempt must go through ``before_attempt`` (the loop's one check)."""
        return bool(self.cooldown.deadline or self.quota.active or self.rate or self._wave != _OVER)

    async def before_attempt(self) -> None:
        """Wait for the shared cooldown, the attempt's send slot and the key's window."""
        if self._wave != _OVER:
            if self._wave == _COLLECTING:
                if not self._wave_sent:
                    self._wave_at = time.monotonic()
                self._wave_sent += 1
            else:
                await self._wave_gate()
        cooldown = self.cooldown
        if cooldown.deadline:
            await cooldown.wait()
        rate = self.rate
        while rate is not None:
            # One slot per request, 1/rate apart: requests released together (after a
            # pause, or a burst of retries) leave one by one.
            now = time.monotonic()
            slot = self._next if self._next > now else now
            self._next = slot + 1.0 / rate
            if slot <= now:
                break
            self._queued = True
            self.paced_s += slot - now
            epoch = self._epoch
            await asyncio.sleep(slot - now)
            if cooldown.deadline > time.monotonic():
                # Tripped while this one waited for its slot: after the pause, a new slot
                # (the slots after a pause start at its end), or every request that was
                # waiting would leave together at its end.
                await cooldown.wait()
            elif epoch == self._epoch:
                break
            # Or the rate was lowered while it waited: slots taken at the old rate reach
            # as far ahead as the requests queued (C / rate), and would keep sending at the
            # old rate that long; a new slot at the new one.
            rate = self.rate
        # The window's countdown, at the moment of sending (a request counted before its
        # slot's wait would land, uncounted, in the next window). Once a rate is learned,
        # only for windows of the clock (``Quota.fixed``, and no reset that moved within a
        # window): a sliding window released in a burst looks like one for a window or
        # two, and a countdown that expects its whole limit back at each "reset" pauses
        # the client for nothing; the send slots pace sliding windows and buckets.
        quota = self.quota
        if quota.active and (rate is None or (quota.fixed and not quota.moving)):
            pause = quota.before_send()
            if pause:
                cooldown.trip(pause)
                self._next = max(self._next, cooldown.deadline)
                await cooldown.wait()

    async def _wave_gate(self) -> None:
        """Wait until the first wave is answered, at most ``_WAVE_WAIT`` of the time its
        first answer took (a request that never answers does not hold the client)."""
        opened = self._wave_open
        if opened is None:
            opened = self._wave_open = asyncio.Event()
        left = self._wave_at + self._wave_took * _WAVE_WAIT - time.monotonic()
        if left > 0:
            # asyncio.TimeoutError: TimeoutError itself from 3.11 on.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(opened.wait(), left)
        self._end_wave()

    def _end_wave(self) -> None:
        self._wave = _OVER
        if self._wave_open is not None:
            self._wave_open.set()
            self._wave_open = None

    def _wave_answer(self, now: float) -> None:
        if self._wave == _COLLECTING:
            self._wave = _GATED
            self._wave_took = now - self._wave_at
            self._wave_at = now
        self._wave_answered += 1
        if self._wave_answered >= self._wave_sent:
            self._end_wave()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read an answer's rate-limit headers (any status); the loop calls it for each."""
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None:
            quota = self.quota
            quota.observe(remaining, headers)
            if remaining == "0":
                self._last_spent = time.monotonic()
        elif self._ceiling is None:
            # (most answers carry no per-minute limit: two lookups, no call)
            if headers.get(_OPENAI_LIMIT) is not None or headers.get(_ANTHROPIC_LIMIT) is not None:
                declared = declared_rate(headers)
                if declared is not None:
                    self._declare(declared)
        elif quota_spent(headers):  # another shape, seen declaring its rate
            self._last_spent = time.monotonic()

    def _declare(self, rate: float) -> None:
        self._ceiling = rate
        if self.rate is None or self.rate > rate * MARGIN:
            self._set(rate * MARGIN, time.monotonic())

    def _set(self, rate: float, now: float) -> None:
        self._lowered(rate, now)
        self.rate = max(rate, _MIN_RATE)
        self._probed_from = self._streak_from = None
        self._changed_at = now
        counts, refusals = self._counts, self._refusals
        for i in range(_RING):
            counts[i] = refusals[i] = 0
        self._total = self._refused = 0
        self._first_at = 0.0
        self._bucket = -1  # the next answer starts the ring again (and sets _first_at)
        quota = self.quota
        quota.low, quota.seen_n, quota.seen_sum = math.inf, 0, 0.0
        self._prev_mean = -math.inf
        self._checked_at = now

    def _lowered(self, rate: float | None, now: float) -> None:
        """Before the rate becomes ``rate``: when lower, the queued requests take new slots
        from now (or the pause's end) at it (``before_attempt``)."""
        if rate is not None and self.rate is not None and rate < self.rate:
            self._epoch += 1
            self._next = max(now, self.cooldown.deadline)

    def answered(self, refused: bool) -> None:
        """Count one answer (``refused``: a rate-limit 429), and cut or probe the rate by
        the share of 429s (``_http/quota.py``, rule 3). It runs for every answer: an answer
        that is not a 429 costs a clock read and two increments, unless a probe is due."""
        now = time.monotonic()
        if self._wave != _OVER:
            self._wave_answer(now)
        bucket = int(now / _BUCKET_S)
        if bucket != self._bucket:
            self._roll(bucket, now)
        self._counts[self._slot] += 1
        self._total += 1
        if refused:
            self._refusal(self._slot, now)
        elif (
            self.rate is not None
            and now - self._changed_at >= SHARE_WINDOW_S
            and (self._queued or self.quota.moving)
        ):
            self._probe(self.rate, now)

    def _roll(self, bucket: int, now: float) -> None:
        """A new bucket (at most four times a second): empty those that fell out of the
        ring, and count the share window's answers afresh from its last ``_BUCKETS``."""
        counts, refusals = self._counts, self._refusals
        for number in range(max(self._bucket + 1, bucket - _RING + 1), bucket + 1):
            i = number % _RING
            counts[i] = refusals[i] = 0
        self._bucket = bucket
        self._slot = bucket % _RING
        total = refused = 0
        for number in range(bucket - _BUCKETS + 1, bucket + 1):
            total += counts[number % _RING]
            refused += refusals[number % _RING]
        self._total, self._refused = total, refused
        if not any(counts):
            self._first_at = now  # the answer being counted is the ring's first
        elif self._first_at < (bucket - _RING + 1) * _BUCKET_S:
            self._first_at = (bucket - _RING + 1) * _BUCKET_S

    def _refusal(self, i: int, now: float) -> None:
        """A rate-limit 429 counted in bucket ``i``: undo a probe it answers, cut by the share."""
        self._refusals[i] += 1
        self._refused += 1
        self._last_429 = now
        if self._probed_from is not None:
            # The probe went past the limit: back to the rate before it, and no probe
            # for a while (the limit is about here). Without a moving window's headers,
            # back to the rate before the probes in a row began: a bucket's burst hides
            # a rate above its refill for many probes, until it is drained.
            moving = self.quota.moving
            back = self._probed_from if moving else self._streak_from
            self._lowered(back, now)
            self.rate = back
            self._probed_from = self._streak_from = None
            # Against a moving window the headers say where its edge is (``_probe``):
            # a pause of two probe intervals, not of _QUIET_S.
            self._quiet_until = now + (2 * SHARE_WINDOW_S if moving else _QUIET_S)
        if now - self._changed_at < SHARE_WINDOW_S:
            return
        rate = self.rate
        count, refused, start = self._total, self._refused, self._bucket - _BUCKETS + 1
        if count < MIN_ANSWERS:
            # Answered too seldom for the share window (paced below MIN_ANSWERS /
            # SHARE_WINDOW_S): the answers before it, back to MIN_ANSWERS or the ring's end.
            counts, refusals = self._counts, self._refusals
            while count < MIN_ANSWERS and start > self._bucket - _RING + 1:
                start -= 1
                count += counts[start % _RING]
                refused += refusals[start % _RING]
        share = refused / count
        if count >= MIN_ANSWERS and share > (CUT_SHARE if rate is None else PACED_CUT_SHARE):
            self._cut(rate, share, count, max(self._first_at, start * _BUCKET_S), now)

    def _cut(self, rate: float | None, share: float, count: int, since: float, now: float) -> None:
        # The send rate times the share the server admitted of it; unpaced, the answers
        # over the window read (at least a second: the first answers of an unpaced client
        # arrive together, and a burst is admitted at once).
        span = max(now - since, 1.0)
        sent = rate if rate is not None else count / span
        cut = sent * (1.0 - share)
        if rate is None or not self.quota.moving:
            # A moving window's headers lead a paced rate back to its edge (``_probe``):
            # no margin on top of the share there, or cuts at its edge compound.
            cut *= MARGIN
        # Answers counted over a second can span three short windows of the clock and so
        # exceed what the window admits: a cut never sets a rate above the window's own
        # (limit / length, once both are known and fixed).
        window_rate = self.quota.rate
        if window_rate is not None and not self.quota.moving:
            cut = min(cut, window_rate * MARGIN)
        self._set(cut, now)
        self.cuts += 1

    def _probe(self, rate: float, now: float) -> None:
        quota = self.quota
        moving = quota.moving
        if moving:
            # A sliding window or a bucket tells its state in ``remaining``, read over each
            # probe interval (its lowest and its mean): a mean fallen by more than a request
            # since the interval before (a bucket drained by a rate above its refill falls
            # long before it refuses) undoes the probe that caused it, and none follows.
            # With room (a lowest of _PROBE_ROOM or more), a probe; a sliding window at its
            # edge, where remaining = limit - rate * window, is raised toward a mean of one
            # left: rate * (limit - 1) / (limit - mean).
            if now - self._checked_at < SHARE_WINDOW_S:
                return
            self._checked_at = now
            low, count, total = quota.low, quota.seen_n, quota.seen_sum
            quota.low, quota.seen_n, quota.seen_sum = math.inf, 0, 0.0
            if not count:
                return
            mean, previous = total / count, self._prev_mean
            self._prev_mean = mean
            if mean < previous - 1.0 and mean >= _PROBE_ROOM:
                # Fallen from room: a bucket drained by a rate above its refill. (Fallen to
                # its edge, a window is a sliding one, remaining = limit - rate * window,
                # which a probe takes about one off: the 429 at its edge decides.)
                if self._probed_from is not None:
                    self._lowered(self._probed_from, now)
                    self.rate = self._probed_from
                    self._probed_from = self._streak_from = None
                    self._quiet_until = now + _QUIET_S
                return
            limit = quota.limit
            if low >= _PROBE_ROOM:
                raised = rate * _PROBE
            elif limit is not None and mean < limit - 1.0:
                raised = min(rate * (limit - 1.0) / (limit - mean), rate * _PROBE)
            else:
                return
        else:
            raised = rate * _PROBE
        if (
            not self._queued  # the rate is not the bottleneck: nothing to learn by raising it
            or now < self._quiet_until
            or now - self._last_429 < SHARE_WINDOW_S
            or (not moving and now - self._last_spent < SHARE_WINDOW_S)
        ):
            return
        ceiling = self._ceiling
        if ceiling is not None:
            raised = min(raised, ceiling * MARGIN)
        if raised > rate:
            self._probed_from = rate
            if self._streak_from is None:
                self._streak_from = rate
            self.rate = raised
            self._changed_at = now
            self._queued = False

    def adopt(self, rate: float | None, pause_s: float = 0.0) -> None:
        """Take pacing learned elsewhere: the send ``rate`` of another process's pacer for
        the same key and host (``None``: none known), and a pause of ``pause_s`` seconds it
        was asked for. Ray's actors call it with what their shared actor holds
        (``reka_async/integrations/ray/_limiter.py``); nothing on the request path does.

        A rate taken ends the first wave (the limit is known). A lower one starts the share
        of 429s afresh, as a cut here does; a higher one keeps what this pacer reads of a
        moving window (its ``remaining`` over the probe intervals), and one at most a probe
        above (``_PROBE``) counts as a probe here too, so a 429 here (or a window draining)
        undoes it. Either holds this pacer's own probes off for ``SHARE_WINDOW_S``, so that
        the pacers sharing a rate do not probe over each other. The pause holds every
        request of this client and starts the send slots at its end, as a quota 429's does.
        """
        if pause_s > 0.0:
            self.cooldown.trip(pause_s)
            self._next = max(self._next, self.cooldown.deadline)
        if rate is None or rate <= 0.0 or rate == self.rate:
            return
        if self._ceiling is not None:
            rate = min(rate, self._ceiling * MARGIN)
        if self._wave != _OVER:
            self._end_wave()
        before = self.rate
        now = time.monotonic()
        if before is None or rate < before:
            self._set(rate, now)
            return
        self.rate = rate
        self._changed_at = now
        if rate <= before * _PROBE * (1.0 + 1e-9):
            self._probed_from = before
            if self._streak_from is None:
                self._streak_from = before
        else:
            self._probed_from = self._streak_from = None

    def report(self, stats: Any) -> None:
        """Copy what pacing did onto a ``BatchStats``: the learned rate (or, before one, the
        rate of the window the headers describe), cuts and slot waits."""
        stats.pacing_rate = self.rate if self.rate is not None else self.quota.rate
        stats.rate_cuts = self.cuts
        stats.paced_s = self.paced_s

    @staticmethod
    def rate_limited(error: APIError) -> bool:
        """Whether ``error`` is a rate-limit 429 (not the out-of-credits one)."""
        return isinstance(error, RateLimitError) and not isinstance(error, InsufficientCreditsError)

    @staticmethod
    def kind(error: APIError) -> RateLimitKind | None:
        """The kind of a rate-limit 429 (``_http/quota.py``, rule 1), ``None`` for any other
        error."""
        if not isinstance(error, APIStatusError) or not Pacer.rate_limited(error):
            return None
        headers = error.headers
        if quota_spent(headers):
            return "quota"
        return "overload" if has_rate_headers(headers) else "unlabelled"

    @staticmethod
    def spent(error: APIError) -> bool:
        """Whether a rate-limit 429's headers say the key's window is spent."""
        return Pacer.kind(error) == "quota"

    def refused(self, error: APIError, delay: float | None, max_wait: float) -> None:
        """A quota 429 pauses every request of the client for the server's ``retry-after``
        (when no longer than ``max_wait``; a few milliseconds on top, never early): when it
        is retried, for ``delay`` at most. The send slots after the pause start at its end.

        Not for ``delay`` itself: its jitter is the retried request's, and the longest of a
        wave of 429s' jitters (up to 0.25 s each) would hold every request of the client
        that long past the server's word; the slots spread the requests the pause held."""
        wait = error.retry_after if isinstance(error, APIStatusError) else None
        if delay is None:
            if wait is not None and wait <= max_wait:
                self.cooldown.trip(wait)
        elif wait is not None:
            self.cooldown.trip(min(delay, wait + random.uniform(0.001, 0.01)))
        else:
            self.cooldown.trip(delay)
        self._next = max(self._next, self.cooldown.deadline)

    async def wait_retry(self, delay: float, spent: bool) -> None:
        """Sleep before a retry: a spent window waits for the shared cooldown (which another
        429 may extend), anything else for ``delay``."""
        if spent:
            await self.cooldown.wait()
        else:
            await asyncio.sleep(delay)
