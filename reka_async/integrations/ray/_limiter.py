"""The shared actor of a job: the job's budget (its buckets, whose permits workers take in
chunks) and the pacing its actors learn from the server, shared by all of them.

**Shared pacing.** Each actor's client has a pacer (``reka_async/_http/pacing.py``) that
learns the send rate the server allows from its headers and its 429s. Ray's actors are
processes of their own, so their pacers cannot be one object; instead each actor's pacer
syncs with the shared actor about every ``SYNC_PERIOD_S`` (``SharedPacing``), and before its
client's first request:

* the learned rate: the shared actor holds the job's rate, requests a second over all its
  actors. A pacer whose rate changed (a cut, a probe, an undo) reports it, and the job's rate
  becomes that rate times the number of actors syncing (those seen in the last
  ``MEMBER_TTL_S``); every other actor then takes its share, the job's rate over that
  number. A client started afresh (Ray's entry point closes it between an actor's batches)
  starts at its share, with no unpaced first wave into a spent limiter;
* the shared cooldown: a pause a pacer takes (a quota 429, a spent window) is reported as a
  Unix time, and every actor pauses until then.

Last report wins: two actors that cut at once each cut from their own rate, so the job's
rate does not compound. An actor whose sync fails (the shared actor restarting) goes on
with its own pacer alone and tries again at the next period.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ...batch import TokenBucket, estimate_tokens
from ._common import check_positive_or_none, require

if TYPE_CHECKING:
    from ..._http.pacing import Pacer
    from ..._models import Usage

__all__ = ["MEMBER_TTL_S", "SYNC_PERIOD_S", "SharedBudget", "SharedPacing", "create_rate_limiter"]

logger = logging.getLogger("reka_async")

#: Seconds between two syncs of an actor's pacer with the shared actor.
SYNC_PERIOD_S: Final = 0.25
#: An actor not synced for this long no longer counts among those sharing the job's rate.
MEMBER_TTL_S: Final = 2.0
_SYNC_TIMEOUT_S: Final = 5.0  # a sync that takes longer is given up (the next one tries)


class _RateLimiter:
    """The limiter actor's class: the job's RPM and TPM token buckets, granted in chunks."""

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        request_chunk: float,
        token_chunk: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rpm = TokenBucket(rpm) if rpm else None
        self._tpm = TokenBucket(tpm) if tpm else None
        self._limits = (rpm, tpm, request_chunk, token_chunk)
        self._granted_requests = 0.0
        self._granted_tokens = 0.0
        self._refunded_tokens = 0.0
        self._calls = 0
        # The shared pacing (the module docstring): the job's rate over every actor, the
        # shared pause (a Unix time), and when each actor last synced.
        self._clock = clock
        self._job_rate: float | None = None
        self._pause_until = 0.0
        self._members: dict[str, float] = {}
        self._reports = 0

    async def limits(self) -> tuple[float | None, float | None, float, float]:
        """``(rpm, tpm, request_chunk, token_chunk)``."""
        return self._limits

    async def acquire(self, requests: float, tokens: float) -> None:
        """Wait until ``requests`` and ``tokens`` are available, then grant them."""
        self._calls += 1
        if requests and self._rpm is not None:
            await self._rpm.acquire(requests)
            self._granted_requests += requests
        if tokens and self._tpm is not None:
            await self._tpm.acquire(tokens)
            self._granted_tokens += tokens

    async def refund(self, requests: float = 0.0, tokens: float = 0.0) -> None:
        """Give back permits a worker will not use."""
        if requests and self._rpm is not None:
            self._rpm.refund(requests)
            self._granted_requests -= requests
        if tokens and self._tpm is not None:
            self._tpm.refund(tokens)
            self._refunded_tokens += tokens

    async def pacing(
        self, member: str, rate: float | None, report: bool, pause_until: float
    ) -> tuple[float | None, float]:
        """One actor's sync (the module docstring): ``member`` names the actor, ``rate`` is
        its pacer's send rate and ``report`` whether it changed there since its last sync;
        ``pause_until`` is the Unix time its pause ends (0.0: none). Returns the actor's
        share of the job's rate (``None``: none learned yet) and the shared pause's end."""
        now = self._clock()
        members = self._members
        members[member] = now
        for other, seen in list(members.items()):
            if now - seen > MEMBER_TTL_S:
                del members[other]
        n = len(members)
        if report and rate is not None and rate > 0.0:
            self._job_rate = rate * n
            self._reports += 1
        if pause_until > self._pause_until:
            self._pause_until = pause_until
        share = None if self._job_rate is None else self._job_rate / n
        return share, self._pause_until

    async def stats(self) -> dict[str, float]:
        """Counters: acquire calls, requests and tokens granted, tokens refunded; the shared
        pacing's job rate (0.0: none learned), its reports and the actors syncing."""
        return {
            "acquire_calls": float(self._calls),
            "granted_requests": self._granted_requests,
            "granted_tokens": self._granted_tokens,
            "refunded_tokens": self._refunded_tokens,
            "pacing_rate": self._job_rate or 0.0,
            "pacing_reports": float(self._reports),
            "pacing_members": float(len(self._members)),
        }


@functools.cache
def _limiter_actor_class() -> Any:
    ray = require("ray")
    # Zero CPUs: it only sleeps on its buckets. An async actor serves many waiters at once.
    return ray.remote(num_cpus=0, max_concurrency=1000, max_restarts=-1)(_RateLimiter)


def create_rate_limiter(
    rpm: float | None = None,
    tpm: float | None = None,
    *,
    request_chunk: float | None = None,
    token_chunk: float | None = None,
    name: str | None = None,
) -> Any:
    """Start the shared actor of a job; pass it as ``limiter=`` to the mappers.

    It holds the job's budget (``rpm``/``tpm``, when given) and the pacing the actors learn
    from the server's headers and 429s (the rate and the pause, shared by every actor: the
    module docstring). With neither ``rpm`` nor ``tpm`` it holds the pacing alone: the
    default of `map_chat` for more than one actor.

    The bound it holds: the actor's buckets are ``RateBudget``'s (a burst of one second's
    worth), so permits are *granted* at most ``rpm * W / 60 + rpm / 60`` in any window of
    ``W`` seconds. Workers take permits in chunks and may hold a chunk unused for a while,
    so requests *sent* in a window can exceed that by at most the permits held by workers:
    ``num_workers * request_chunk`` (a quarter second of budget each by default), tokens
    likewise with ``token_chunk``.

    Args:
        rpm: the job's requests-per-minute budget, or ``None``.
        tpm: the job's tokens-per-minute budget (estimated per request), or ``None``.
        request_chunk: requests a worker takes per round trip (default: a quarter second of
            budget, at least 1).
        token_chunk: tokens a worker takes per round trip (default: a quarter second of
            budget; a request needing more takes what it needs).
        name: a Ray actor name, to find the same limiter from several drivers
            (``get_if_exists``).

    Returns:
        The Ray actor handle.
    """
    check_positive_or_none(rpm=rpm, tpm=tpm)
    if request_chunk is None:
        request_chunk = max(1.0, math.floor(rpm / 240.0)) if rpm else 1.0
    if token_chunk is None:
        token_chunk = max(1.0, tpm / 240.0) if tpm else 0.0
    if rpm is not None:
        request_chunk = min(request_chunk, rpm)
    if tpm is not None:
        token_chunk = min(token_chunk, tpm)
    cls = _limiter_actor_class()
    if name is not None:
        cls = cls.options(name=name, get_if_exists=True)
    return cls.remote(rpm, tpm, float(request_chunk), float(token_chunk))


class SharedBudget:
    """A worker's local balance of permits, topped up from the limiter actor in chunks.

    A ``Budget`` (``reka_async/_http/accounting.py``): the actor's client reserves from it
    before every attempt (one request and the body's token estimate) and settles by the
    attempt's outcome, as it does a ``RateBudget``: refunded when refused or not sent,
    corrected with the usage, kept when unknown.
    """

    def __init__(
        self, limiter: Any, limits: tuple[float | None, float | None, float, float] | None = None
    ) -> None:
        self._limiter = limiter
        self._lock = asyncio.Lock()
        #: ``(rpm, tpm, request_chunk, token_chunk)`` of the limiter (asked on first use
        #: unless given).
        self._limits = limits
        self._requests = 0.0
        self._tokens = 0.0

    @property
    def balance(self) -> tuple[float, float]:
        """The permits this worker holds and has not used: ``(requests, tokens)``."""
        return self._requests, self._tokens

    async def reserve(self, body: Mapping[str, Any] | None) -> float:
        """Take one request and ``body``'s token estimate; returns the tokens taken."""
        return await self.take(float(estimate_tokens(body)) if body is not None else 0.0)

    async def take(self, tokens: float) -> float:
        """Take one request and ``tokens`` tokens; returns the tokens actually taken."""
        async with self._lock:
            if self._limits is None:
                got = await self._limiter.limits.remote()
                self._limits = (got[0], got[1], float(got[2]), float(got[3]))
            rpm, tpm, request_chunk, token_chunk = self._limits
            tokens = min(tokens, tpm) if tpm else 0.0
            need_requests = rpm is not None and self._requests < 1.0
            need_tokens = tpm is not None and self._tokens < tokens
            if need_requests or need_tokens:
                ask_r = request_chunk if need_requests else 0.0
                ask_t = 0.0
                if need_tokens and tpm is not None:
                    ask_t = min(tpm, max(token_chunk, tokens - self._tokens))
                await self._limiter.acquire.remote(ask_r, ask_t)
                self._requests += ask_r
                self._tokens += ask_t
            if rpm is not None:
                self._requests -= 1.0
            self._tokens -= tokens
            return tokens

    def used(self, body: Mapping[str, Any] | None, usage: Usage) -> float:
        """The tokens an answer used: input and output."""
        return float(usage.input_tokens + usage.output_tokens)

    def settle(self, reserved: float, used: float | None) -> None:
        """Correct a token reservation (locally; a surplus goes back to the actor):
        ``0.0`` refunds it, ``None`` (unknown) keeps it."""
        if used is None or not reserved or self._limits is None or self._limits[1] is None:
            return
        self._tokens += reserved - used
        chunk = max(self._limits[3], 1.0)
        if self._tokens > 2 * chunk:
            surplus = self._tokens - chunk
            self._tokens -= surplus
            self._limiter.refund.remote(0.0, surplus)  # fire and forget

    async def give_back(self) -> None:
        """Return the unused balance to the limiter (on close)."""
        requests, tokens = max(self._requests, 0.0), max(self._tokens, 0.0)
        self._requests = self._tokens = 0.0
        if requests or tokens:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._limiter.refund.remote(requests, tokens), 5.0)


class SharedPacing:
    """An actor's link between its client's pacer and the pacing the shared actor holds
    (the module docstring): `run` syncs them every ``SYNC_PERIOD_S`` until cancelled.

    Args:
        limiter: the shared actor (from `create_rate_limiter`).
        member: this actor's name among those sharing the job's rate (the same for every
            client the actor makes, so a client started afresh is not a new member).
    """

    def __init__(self, limiter: Any, member: str) -> None:
        self._limiter = limiter
        self._member = member
        self._known: float | None = None  # the pacer's rate after the last sync
        self._ready: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<SharedPacing member={self._member!r} rate={self._known}>"

    async def sync(self, pacer: Pacer) -> None:
        """Report what ``pacer`` learned since the last sync, and take the job's share and
        pause back."""
        rate = pacer.rate
        report = rate is not None and rate != self._known
        now_unix, now = time.time(), time.monotonic()
        deadline = pacer.cooldown.deadline
        pause_until = now_unix + (deadline - now) if deadline > now else 0.0
        share, until = await self._limiter.pacing.remote(self._member, rate, report, pause_until)
        if pacer.rate != rate:
            self._known = None  # it changed while this sync was out: reported next time
            return
        pause_s = until - time.time()
        if report or share is None or share == rate:
            pacer.adopt(None, pause_s)
        else:
            pacer.adopt(share, pause_s)
        self._known = pacer.rate

    async def ready(self) -> None:
        """Wait for the first sync to be over (done or given up): before the client's first
        request, so that a client started afresh starts at its share."""
        if self._ready is None:
            self._ready = asyncio.Event()
        await self._ready.wait()

    async def run(self, pacer: Pacer) -> None:
        """Sync every ``SYNC_PERIOD_S`` until cancelled; a failed sync is logged at debug
        level and tried again at the next period."""
        if self._ready is None:
            self._ready = asyncio.Event()
        while True:
            # asyncio.wait, not wait_for: on 3.10 and 3.11 wait_for swallows a cancellation
            # that comes as the sync finishes, and this loop would never end.
            sync = asyncio.ensure_future(self.sync(pacer))
            try:
                done, _ = await asyncio.wait({sync}, timeout=_SYNC_TIMEOUT_S)
            except asyncio.CancelledError:
                sync.cancel()
                raise
            if not done:
                sync.cancel()
                logger.debug("shared pacing: no answer to a sync in %g s", _SYNC_TIMEOUT_S)
            elif sync.exception() is not None:  # the shared actor restarting, or gone
                logger.debug("shared pacing: sync failed (%s); trying again", sync.exception())
            self._ready.set()
            await asyncio.sleep(SYNC_PERIOD_S)
