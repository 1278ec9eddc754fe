"""The one rule for rate limits: how the server's headers and its 429s pace a client, and
``Quota``, the key's window as the ``x-ratelimit-*`` headers describe it.

The header shapes (``/work/shared/reka-chat-api.md``, "Errors and rate limits"), all read here:
``x-ratelimit-limit|remaining|reset`` (reset a Unix time, maybe fractional, or seconds from
now when small); OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (resets
as durations: ``"1s"``, ``"6m0s"``, ``"20ms"``); Anthropic's
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``
(resets as RFC 3339 times); ``retry-after`` (seconds or an HTTP date) and ``retry-after-ms``.
A missing or unparsable header is no information, never a zero.

The rule (``Pacer`` in ``pacing.py`` applies it; the request loop calls it):

1. **Three kinds of rate-limit 429** (the out-of-credits 429 is not one of them: it is never
   retried). A *quota* 429 has a ``remaining`` of 0 in some shape: the key's window is
   spent, so the whole client pauses (the shared ``Cooldown``) for the server's delay (a
   few milliseconds on top, not the retried request's jitter, the longest of which over a
   wave of 429s would hold every request past the window's reset). An
   *unlabelled* 429 carries no ``x-ratelimit-*``/``anthropic-ratelimit-*`` header at all,
   only ``retry-after``: a spent quota behind a header-less limiter and an overload answer
   look the same on the wire, so it delays its own request and counts in the share below.
   An *overload* 429 carries rate-limit headers that say quota remains: it delays its own
   request. 5xx, 408 and 409 are retried as before and play no part in pacing.
2. **Rate limiting alone never fails a request.** A quota or unlabelled 429 spends none of
   the request's ``max_retries``; instead its waits add up, per request, to at most
   ``RetryPolicy.max_rate_limit_wait`` seconds (default 300; each wait is still capped by
   ``max_server_wait``, ``max_retry_wait=`` on the client). ``max_retries=0`` still means
   no retry at all. An overload 429 spends a retry as any other retryable error does.
3. **A learned send rate.** The pacer sends at most ``rate`` requests a second, each at its
   own slot ``1/rate`` after the previous one, so requests released after a pause are spread
   over the interval, never released together (a request whose slot falls inside a pause
   takes a new one after it, and so does one queued when the rate is lowered: slots taken
   at the old rate reach as far ahead as requests are queued). The rate is unknown (no
   pacing) until one of:

   * the headers declare it: OpenAI's and Anthropic's request limits are per minute
     (``rate = limit / 60``); the pacer then sends at ``MARGIN`` (97 %) of it and never
     probes above it (a bare ``x-ratelimit-limit`` is a window's allowance, the window's
     length unknown: it declares no rate, and ``Quota`` below paces against it);
   * the share of rate-limit 429s (of any kind) among the answers of the last
     ``SHARE_WINDOW_S`` (2 s, counted in quarter-second buckets; a client answered fewer
     than ``MIN_ANSWERS`` (50) times in it, one paced below 25 requests a second, reads
     back over as many answers before as make up 50, at most ``MAX_SHARE_WINDOW_S``, 8 s),
     once at least ``MIN_ANSWERS`` are in, exceeds ``CUT_SHARE`` (10 %) while the client is not
     paced yet, or ``PACED_CUT_SHARE`` (3 %) once it is: the rate becomes the send rate
     times ``1 - share`` (what the server admitted; unpaced, the answers per second over
     the window, taken as at least a second long) times ``MARGIN`` (not for a paced client
     against a moving window, rule 3's probes, whose headers lead it back), at most once per
     ``SHARE_WINDOW_S``, and never above ``MARGIN`` of a fixed window's rate the headers
     describe (``Quota.rate``). A single 429 never cuts the rate; 1 % of random overload
     429s never does either.

   **The first wave.** Against a limit not known yet, the requests sent before the first
   answer are a wave: once its first answer is in, no request is sent until the rest of
   the wave has answered (at most half the time its first answer took), so its share of
   429s sets the rate before a second wave goes out unpaced into a spent limiter.

   **Learned elsewhere.** Pacers in other processes for the same key and host (Ray's
   actors, through their shared actor) hand each other their rates and pauses
   (``Pacer.adopt``): a rate taken ends the first wave; a lower one starts the share of
   429s afresh, as a cut here does; one a probe above counts as a probe here too.

   **Probes.** A paced client whose requests are queued at the rate (a rate that is not
   the bottleneck is not raised) probes upward, 2 % at a time, after ``SHARE_WINDOW_S``
   without a rate-limit 429. The first 429 after a probe undoes it, and no probe follows
   for 10 s: the limit is about there. Without a moving window's headers it undoes every
   probe of the streak it ends (a bucket's burst hides a rate above its refill for probe
   after probe, until it is drained). Against a window of the clock, a ``remaining`` of 0
   also holds probes off for ``SHARE_WINDOW_S``. Against a *moving* window (a sliding
   window or a bucket: its reset moves from answer to answer, or moves later while the
   window it replaces has more than 50 ms to go), the pacer reads ``remaining`` over each
   probe interval instead, its lowest and its mean: a mean that fell by more than one
   request since the interval before, to 2 or more, undoes the probe before it (a bucket
   drained by a rate above its refill falls long before it refuses) and starts the 10 s
   without probes (a fall to below 2 is a sliding window's edge, which a probe takes about
   one off: the 429 there decides); a lowest of 2 or more allows a probe; a sliding window
   at its edge (``remaining = limit - rate * window``) is raised toward a mean of one left,
   ``rate * (limit - 1) / (limit - mean)``, at most 2 % a step; a 429 after such a raise
   undoes it and holds probes off for two intervals (not 10 s: the headers say where the
   edge is).
4. ``Quota``: a window that the headers say is nearly spent is counted down locally and
   paused at its end (below), before the send slot of rule 3 is taken. Once a rate is
   learned, the countdown serves windows of the clock only (``Quota.fixed``: a window that
   followed the one before by the known window length, and no reset that moved within a
   window). A sliding window whose requests went out together reports one reset for all
   of them, as a fixed window does, for a window or two; a countdown that expects the whole
   limit back at each such "reset" would pause the client for nothing, so it stands aside
   and the send slots pace sliding windows and buckets.

Clocks: the reset time is the server's; a client clock that is behind waits a little longer,
one that is ahead may see a 429, which is then honoured as above.

``Quota`` in detail: while plenty remains, reading the headers costs one lookup and one
``int()``. Once the remaining count is within ``slack`` requests of zero the quota becomes
*active*: each request sent counts down a local copy of the remaining count (the server's
answers lag behind the requests in flight), each answer corrects it (the lower of the two
wins, so other users of the key are accounted for), and when it reaches zero the client
pauses (the shared ``Cooldown``) until the window resets. After a reset the window's
``limit`` is available again; the next reset is predicted from the window length seen
between two resets. Two resets with idle windows between them are a whole number of windows
apart: that number of a known length is no new length (and no moving window), and a length
learned from such a pair is put right by the next window that ends before its prediction.
"""

from __future__ import annotations

import datetime
import math
import random
import re
import time
from collections.abc import Mapping
from typing import Final

import attrs

from .._serial import Serializable

__all__ = [
    "Quota",
    "RateLimit",
    "declared_rate",
    "has_rate_headers",
    "parse_duration",
    "quota_spent",
    "spent_reset",
]

_EPOCH_THRESHOLD = 1e9  # an x-ratelimit-reset above this is Unix time, else seconds from now
#: A reset that moves later this long before the window it replaces ends is a moving window's.
_MOVED_BEFORE_END_S = 0.05


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


#: (remaining, reset, reset format) of every shape; a ``remaining`` of 0 in any says spent.
_SHAPES: Final = (
    ("x-ratelimit-remaining", "x-ratelimit-reset", "unix"),
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "duration"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "duration"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", "rfc3339"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset", "rfc3339"),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
        "rfc3339",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
        "rfc3339",
    ),
)
#: Request limits documented per minute (OpenAI's and Anthropic's shapes).
PER_MINUTE: Final = ("x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit")
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | None) -> float | None:
    """A Go-style duration (``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``) in seconds; a
    bare number is seconds; ``None`` for anything else."""
    if not value:
        return None
    text = value.strip()
    number = _number(text)
    if number is not None:
        return number if number >= 0 else None
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _rfc3339(value: str | None, now: float) -> float | None:
    """Seconds from ``now`` until an RFC 3339 time (``None`` if unparsable)."""
    if not value:
        return None
    try:
        when = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - now)


def _reset_in(value: str | None, form: str, now: float) -> float | None:
    if form == "duration":
        return parse_duration(value)
    if form == "rfc3339":
        return _rfc3339(value, now)
    reset = _number(value)
    if reset is None or reset < 0:
        return None
    return max(0.0, reset - now) if reset >= _EPOCH_THRESHOLD else reset


def quota_spent(headers: Mapping[str, str]) -> bool:
    """Whether an answer's headers say the key's window is spent: a ``remaining`` of 0 (or
    less) in any shape, for requests or for tokens."""
    for remaining, _, _ in _SHAPES:
        value = _number(headers.get(remaining))
        if value is not None and value <= 0:
            return True
    return False


def spent_reset(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until a spent window resets, by the reset header of the shape that is spent
    (the longest, when several are); ``None`` when none is spent or says when."""
    longest = None
    for remaining, reset, form in _SHAPES:
        value = _number(headers.get(remaining))
        if value is not None and value <= 0:
            wait = _reset_in(headers.get(reset), form, now)
            if wait is not None and (longest is None or wait > longest):
                longest = wait
    return longest


def has_rate_headers(headers: Mapping[str, str]) -> bool:
    """Whether an answer carries any rate-limit header (``x-ratelimit-*`` or
    ``anthropic-ratelimit-*``): without one, a 429 is unlabelled (see the module docstring)."""
    return any(k.lower().startswith(("x-ratelimit-", "anthropic-ratelimit-")) for k in headers)


def declared_rate(headers: Mapping[str, str]) -> float | None:
    """Requests per second a per-minute request limit of OpenAI's or Anthropic's shape
    declares (``None`` when neither is there, or either is unparsable or not positive)."""
    for name in PER_MINUTE:
        limit = _number(headers.get(name))
        if limit is not None and limit > 0:
            return limit / 60.0
    return None


class Quota:
    """The key's rate-limit window as the server's headers describe it.

    Args:
        slack: how close to zero ``remaining`` must come before requests are counted
            (the most requests that can be in flight, e.g. the connection pool size).
        max_wait: the longest pause taken on the headers' word; a longer window is left to
            the server's 429 (and the retry policy's cap on waits).
    """

    __slots__ = (
        "_counting",
        "_previous_reset",
        "active",
        "fixed",
        "high",
        "limit",
        "low",
        "max_wait",
        "moving",
        "paused_s",
        "remaining",
        "reset_at",
        "seen",
        "seen_n",
        "seen_sum",
        "slack",
        "window_s",
    )

    def __init__(self, *, slack: int, max_wait: float) -> None:
        self.slack = slack
        self.max_wait = max_wait
        #: True while requests are counted against a nearly spent window.
        self.active = False
        self.limit: float | None = None
        self.remaining = 0.0
        #: ``time.time()`` when the current window ends (0.0: unknown).
        self.reset_at = 0.0
        #: Seconds between two window resets, once two have been seen (0.0: unknown).
        self.window_s = 0.0
        #: Whether the reset moved within one window (a sliding window or a bucket, whose
        #: reset follows each request, rather than windows of the clock).
        self.moving = False
        #: Whether a window rolled over a known window's length after the one before (to
        #: the header's rounding): windows of the clock, whose countdown can be trusted.
        self.fixed = False
        #: Total seconds of pauses the headers asked for.
        self.paused_s = 0.0
        #: The lowest ``remaining`` the headers said since the pacer last looked, their
        #: number and their sum (the pacer reads a moving window's state from them).
        self.low = math.inf
        self.seen_n = 0
        self.seen_sum = 0.0
        self._previous_reset = 0.0
        self._counting = False  # remaining is our own count (a window whose end is unknown)

    def __repr__(self) -> str:
        state = f"remaining={self.remaining:g}" if self.active else "idle"
        return f"<Quota {state} limit={self.limit} window={self.window_s:g}s>"

    @property
    def rate(self) -> float | None:
        """Requests per second the window allows, once its limit and length are known."""
        if self.limit is None or not self.window_s:
            return None
        return self.limit / self.window_s

    def observe(self, remaining_header: str, headers: Mapping[str, str]) -> None:
        """Read an answer's headers (``remaining_header`` is its ``x-ratelimit-remaining``)."""
        try:
            remaining = float(int(remaining_header))
        except ValueError:
            parsed = _number(remaining_header)
            if parsed is None:
                return
            remaining = parsed
        if remaining < self.low:
            self.low = remaining
        self.seen_n += 1
        self.seen_sum += remaining
        if remaining > self.slack and not self.active:
            return  # the common case: plenty left, nothing to track
        now = time.time()
        reset = _number(headers.get("x-ratelimit-reset"))
        if reset is not None and reset < _EPOCH_THRESHOLD:
            reset += now
        limit = _number(headers.get("x-ratelimit-limit"))
        if limit is not None and limit > 0:
            self.limit = limit
        if reset is None:
            return  # no window end: nothing to pace against
        if not self.reset_at:  # the current window's end is not known yet: now it is
            previous = self._previous_reset
            if previous and reset > previous + 1e-3:
                self._learn(reset - previous)
            self.reset_at = reset
            self.remaining = min(self.remaining, remaining) if self._counting else remaining
        elif abs(reset - self.reset_at) < max(1e-3, self.window_s / 4):
            # The same window: the lower count wins, and the server's reset time replaces
            # a predicted one (a prediction drifts by the header's rounding every window).
            if not self._counting and abs(reset - self.reset_at) > 2e-3:
                self.moving = True
            self.remaining = min(self.remaining, remaining)
            self.reset_at = reset
        elif reset > self.reset_at:  # a later window than the one we count
            if now >= self.reset_at - 1e-3:
                self._learn(reset - self.reset_at)  # a window rolled over
            elif now < self.reset_at - _MOVED_BEFORE_END_S and not self._counting:
                # A reset that moved later while the window it replaces had a while to go:
                # a sliding window's (its oldest request left) or a bucket's (when full),
                # never a window of the clock's, whose next reset comes when it ends (to a
                # client clock this far behind the server's). A sliding window paced at its
                # edge shows nothing else: its length is never seen between two resets.
                self.moving = True
            self._previous_reset = self.reset_at
            self.reset_at = reset
            self.remaining = remaining
        else:
            # An answer from an earlier window, arriving late. One from the window just
            # before the counted one (which a pause rolled over to on a prediction) says
            # where that window really ended: the prediction of the counted one's end moves
            # by as much, or it would drift by the header's rounding every window until
            # requests go out before the server's window has turned.
            previous = self._previous_reset
            if not previous or self.moving:
                return
            if abs(reset - previous) < self.window_s / 4:
                self.reset_at += reset - previous
                self._previous_reset = reset
                return
            if reset < previous:
                return
            # Or the server's window ends before the predicted one: the length learned was
            # several windows (idle ones between the two resets it came from). This is the
            # window being counted, its length the gap from the one before.
            self._learn(reset - previous)
            self.reset_at = reset
            self.remaining = min(self.remaining, remaining)
        self._counting = False
        self.active = self.remaining <= self.slack

    def _learn(self, gap: float) -> None:
        """A window rolled over ``gap`` seconds after the one before: learn the window's
        length from it (``window_s``), and whether windows follow the clock (``fixed``) or
        move (``moving``).

        Windows of the clock follow each other a whole number of windows apart (idle windows
        between two answers), to the header's rounding; a gap that is a whole fraction of
        the length learned says that length spanned idle windows, and puts it right. A gap
        that is neither is no fixed window but a sliding one whose oldest request left (its
        requests went out together, as released at the end of a pause, so its reset did not
        move within the window). The length follows the latest gap of one window (the
        prediction follows the server's rounding).
        """
        known = self.window_s
        if not known:
            self.window_s = gap
            return
        windows = round(gap / known)
        if windows >= 1 and abs(gap - windows * known) <= 2e-3 * windows:
            self.fixed = True
            if windows == 1:
                self.window_s = gap
            return
        fraction = round(known / gap)
        if 2 <= fraction <= 16 and abs(known - fraction * gap) <= 2e-3 * fraction:
            self.fixed = True
        else:
            self.moving = True
        self.window_s = gap

    def before_send(self) -> float:
        """Count one request about to be sent; returns the seconds to pause first (or 0.0)."""
        now = time.time()
        if self.reset_at and now >= self.reset_at:
            self._rolled(now)
            if not self.active:
                return 0.0
        if self.remaining > 0:
            self.remaining -= 1
            return 0.0
        if not self.reset_at:
            return 0.0  # spent, but when the window ends is unknown: the server's 429 says
        wait = self.reset_at - now
        if wait > self.max_wait:
            return 0.0  # too long to take on trust: the server's 429 decides
        self.paused_s += wait
        # The pause ends at the reset; the request is counted in the next window.
        self._rolled(self.reset_at)
        self.remaining -= 1
        return wait + random.uniform(0.001, 0.01)

    def _rolled(self, now: float) -> None:
        """The window ended at or before ``now``: its limit is available again."""
        self._previous_reset = self.reset_at
        if self.limit is None:
            self.active = False  # nothing known to count against: wait for the server's word
            self.remaining = 0.0
            self.reset_at = 0.0
            return
        self.remaining = self.limit
        if self.window_s:
            while self.reset_at <= now:
                self.reset_at += self.window_s
        else:
            self.reset_at = 0.0  # a window of the same size whose end the next answer tells
            self._counting = True
        self.active = self.remaining <= self.slack


@attrs.frozen(kw_only=True)
class RateLimit(Serializable):
    """The rate-limit headers of the latest answer of a client (any status).

    Attributes:
        limit: ``x-ratelimit-limit``: requests allowed in the window.
        remaining: ``x-ratelimit-remaining``: requests left in it.
        reset: ``x-ratelimit-reset``: when the window resets (Unix time, as sent).
        retry_after: ``retry-after`` in seconds, when the answer asked for a wait.
        request_id: the answer's ``x-request-id``.
    """

    limit: float | None = None
    remaining: float | None = None
    reset: float | None = None
    retry_after: float | None = None
    request_id: str | None = None

    @property
    def reset_in(self) -> float | None:
        """Seconds until ``reset`` (0 when past; a small ``reset`` is taken as seconds)."""
        if self.reset is None:
            return None
        return max(0.0, self.reset - time.time()) if self.reset > 1e9 else max(0.0, self.reset)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        """The rate-limit state an answer's headers describe."""
        return cls(
            limit=_number(headers.get("x-ratelimit-limit")),
            remaining=_number(headers.get("x-ratelimit-remaining")),
            reset=_number(headers.get("x-ratelimit-reset")),
            retry_after=_number(headers.get("retry-after")),
            request_id=headers.get("x-request-id"),
        )
