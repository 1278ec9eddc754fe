"""What a batch hands back: one ``BatchResult`` per item, and live ``BatchStats``."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any, Final

import attrs

from .._models import ChatResponse
from .._serial import Serializable

__all__ = ["BatchResult", "BatchStats", "ResultHook"]

_RESERVOIR: Final = 16384


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@attrs.frozen(kw_only=True)
class BatchResult(Serializable):
    """The outcome of one batch item: a response or an error, never both.

    Attributes:
        index: position of the item in the input (0-based).
        custom_id: the item's ``custom_id``, or ``str(index)`` when it had none.
        request: the JSON body that was (or would have been) sent; ``None`` if the item was
            invalid before a body could be built.
        response: the ``ChatResponse`` on success.
        error: the exception on failure (a ``RekaError`` subclass for API and input errors).
        attempts: HTTP attempts made (0 when nothing was sent).
        latency_s: seconds from getting a slot to the final outcome, retries included.
        cached: the response came from the request cache (nothing was sent).
        cost_usd: what the response cost (0.0 when cached; ``None`` when its model has no
            known price, or it failed).
        metadata: the item's ``metadata`` (never sent), echoed back.
        charged_usd: under ``max_cost``, what the budget charged the item: every attempt
            that may have been billed, at its cost or (its fate unknown) its bound; a
            job's spend adds these up. ``None`` without a cost budget.
    """

    index: int
    custom_id: str
    request: dict[str, Any] | None
    response: ChatResponse | None = None
    error: BaseException | None = None
    attempts: int = 0
    latency_s: float = 0.0
    cached: bool = False
    cost_usd: float | None = None
    metadata: Any = None
    charged_usd: float | None = None

    @property
    def ok(self) -> bool:
        """True when the item has a response."""
        return self.response is not None

    @property
    def text(self) -> str:
        """The response text ("" on failure)."""
        return self.response.text if self.response is not None else ""

    def __repr__(self) -> str:
        # Short on purpose: the request and the response can be long (see to_dict()).
        if self.response is not None:
            outcome = f"ok text={_short(self.text)!r}"
        else:
            outcome = f"error={type(self.error).__name__}({_short(str(self.error), 60)!r})"
        return (
            f"<BatchResult index={self.index} custom_id={_short(self.custom_id)!r} {outcome} "
            f"attempts={self.attempts} latency_s={self.latency_s:.3f}>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data: ``index``, ``custom_id``, ``ok``, ``request``,
        ``response`` (its ``to_dict()``) or ``error`` (``type``, ``message``, ``status``,
        ``request_id``), ``attempts``, ``latency_s``."""
        out: dict[str, Any] = {
            "index": self.index,
            "custom_id": self.custom_id,
            "ok": self.ok,
            "request": self.request,
        }
        if self.response is not None:
            out["response"] = self.response.to_dict()
        else:
            error = self.error
            out["error"] = {
                "type": type(error).__name__,
                "message": str(error),
                "status": getattr(error, "status_code", None),
                "request_id": getattr(error, "request_id", None),
            }
        out["attempts"] = self.attempts
        out["latency_s"] = self.latency_s
        if self.cached:
            out["cached"] = True
        if self.response is not None:
            out["cost_usd"] = self.cost_usd
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@attrs.define(kw_only=True)
class BatchStats(Serializable):
    """Live counters of a batch; percentiles come from a bounded reservoir of latencies."""

    ok: int = 0
    failed: int = 0
    retried: int = 0
    retries: int = 0
    #: Retries after an attempt the server may have received: each may be billed twice.
    may_bill_twice: int = 0
    rate_limited: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    started_at: float = attrs.field(factory=time.monotonic)
    finished_at: float | None = None
    concurrency_limit: float = 0.0
    #: Rate-limit 429s that said the key's quota was spent (each paused the whole client).
    quota_pauses: int = 0
    #: The client's learned send rate, requests per second (``None``: not paced), from the
    #: headers or the share of 429s (``_http/quota.py``).
    pacing_rate: float | None = None
    #: Rate-limit 429s with no rate-limit header, only ``retry-after`` (no retry spent).
    unlabelled_429s: int = 0
    #: Rate-limit 429s whose headers say quota remains (an overload answer; a retry spent).
    overload_429s: int = 0
    #: Times the client's send rate was set or cut from the share of 429s (the client's
    #: count, over every run through it).
    rate_cuts: int = 0
    #: Seconds requests of the client waited for their send slot (the client's total).
    paced_s: float = 0.0
    #: Items answered from the request cache (not sent, not billed).
    cache_hits: int = 0
    #: The cost of the priced responses, USD (``cost_usd`` is ``None`` when some are unpriced).
    cost_usd_known: float = 0.0
    #: Responses whose model has no known price.
    unpriced: int = 0
    #: Failed items by error type (``{"RateLimitError": 3, ...}``).
    errors: dict[str, int] = attrs.field(factory=dict)
    #: Exceptions raised by the client's hooks during the run, by hook (``{"on_response":
    #: 3}``); each was logged once per kind and never failed an item.
    hook_errors: dict[str, int] = attrs.field(factory=dict)
    _latencies: list[float] = attrs.field(factory=list, repr=False, alias="_latencies")
    _seen: int = attrs.field(default=0, repr=False, alias="_seen")

    @property
    def done(self) -> int:
        """Items finished (ok + failed)."""
        return self.ok + self.failed

    @property
    def cost_usd(self) -> float | None:
        """USD spent on responses, or ``None`` when a response's model has no known price."""
        return None if self.unpriced else self.cost_usd_known

    @property
    def wall_s(self) -> float:
        """Seconds since the batch started (until it finished, once it has)."""
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return end - self.started_at

    @property
    def requests_per_s(self) -> float:
        """Finished items per second of wall time."""
        wall = self.wall_s
        return self.done / wall if wall > 0 else 0.0

    def latency_percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of item latency in seconds (0.0 when empty)."""
        if not self._latencies:
            return 0.0
        data = sorted(self._latencies)
        k = min(len(data) - 1, max(0, math.ceil(q / 100.0 * len(data)) - 1))
        return data[k]

    @property
    def p50(self) -> float:
        """Median latency in seconds."""
        return self.latency_percentile(50)

    @property
    def p95(self) -> float:
        """95th percentile latency in seconds."""
        return self.latency_percentile(95)

    @property
    def p99(self) -> float:
        """99th percentile latency in seconds."""
        return self.latency_percentile(99)

    def record(self, result: BatchResult) -> None:
        """Count one finished item (the runner calls this once per item)."""
        if result.ok:
            self.ok += 1
            assert result.response is not None
            usage = result.response.usage
            if result.cached:
                self.cache_hits += 1
            else:
                self.input_tokens += usage.input_tokens
                self.output_tokens += usage.output_tokens
                if result.cost_usd is None:
                    self.unpriced += 1
                else:
                    self.cost_usd_known += result.cost_usd
        else:
            self.failed += 1
            name = type(result.error).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
        if result.attempts > 1:
            self.retried += 1
        if result.attempts:
            self._seen += 1
            if len(self._latencies) < _RESERVOIR:
                self._latencies.append(result.latency_s)
            else:  # reservoir sampling keeps memory flat on huge batches
                j = random.randrange(self._seen)
                if j < _RESERVOIR:
                    self._latencies[j] = result.latency_s

    def summary(self) -> str:
        """A one-paragraph human summary."""
        cost = self.cost_usd
        if cost is not None:
            cost_text = f"cost ${cost:.4f}"
        elif self.cost_usd_known:
            cost_text = f"cost >= ${self.cost_usd_known:.4f} ({self.unpriced} unpriced)"
        else:
            cost_text = "cost unknown (no price for the model)"
        errors = ", ".join(f"{n} {k}" for k, n in sorted(self.errors.items(), key=lambda e: -e[1]))
        return (
            f"{self.done} done: {self.ok} ok, {self.failed} failed"
            + (f" ({errors})" if errors else "")
            + f", {self.retried} retried"
            + (f", {self.cache_hits} from the cache" if self.cache_hits else "")
            + (f", {sum(self.hook_errors.values())} hook errors" if self.hook_errors else "")
            + f"; tokens in/out {self.input_tokens}/{self.output_tokens}; {cost_text}; "
            f"{self.wall_s:.2f} s, {self.requests_per_s:.1f} req/s; "
            f"latency p50 {self.p50 * 1000:.0f} ms, p95 {self.p95 * 1000:.0f} ms, "
            f"p99 {self.p99 * 1000:.0f} ms"
        )

    def to_dict(self) -> dict[str, Any]:
        """The stats as plain JSON data (the same as ``as_dict()``)."""
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        """The stats as plain JSON-able data."""
        return {
            "done": self.done,
            "ok": self.ok,
            "failed": self.failed,
            "retried": self.retried,
            "retries": self.retries,
            "may_bill_twice": self.may_bill_twice,
            "rate_limited": self.rate_limited,
            "quota_pauses": self.quota_pauses,
            "concurrency_limit": round(self.concurrency_limit, 1),
            "pacing_rate": None if self.pacing_rate is None else round(self.pacing_rate, 2),
            "unlabelled_429s": self.unlabelled_429s,
            "overload_429s": self.overload_429s,
            "rate_cuts": self.rate_cuts,
            "paced_s": round(self.paced_s, 3),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_hits": self.cache_hits,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "cost_usd_known": round(self.cost_usd_known, 6),
            "unpriced": self.unpriced,
            "errors": dict(self.errors),
            "hook_errors": dict(self.hook_errors),
            "wall_s": round(self.wall_s, 3),
            "requests_per_s": round(self.requests_per_s, 2),
            "latency_p50_s": round(self.p50, 4),
            "latency_p95_s": round(self.p95, 4),
            "latency_p99_s": round(self.p99, 4),
        }


ResultHook = Callable[[BatchResult, BatchStats], None]
