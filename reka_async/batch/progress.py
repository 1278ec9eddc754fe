"""``BatchProgress``: the live progress of a batch, redrawn on a clock (never frozen).

A ticker task redraws every ``interval`` seconds from the live ``BatchStats``, whether or not
an item finished since: done/total, rate, ETA, ok/failed, tokens, retries and 429s, the
current concurrency limit, cache hits and the cost so far. On a terminal or in a notebook it
is a ``tqdm.auto`` bar (redrawn every 0.5 s); elsewhere (a pipe, nohup, CI, Slurm) it is one
line on the stream every 5 s. Drawing is driven by ``tick()`` only, never by item
completions, so tqdm's own rate limiting (``miniters``) cannot freeze it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
import time
from collections.abc import Callable
from typing import IO, Any, Final, Literal

from .results import BatchStats

__all__ = ["BatchProgress", "format_cost", "format_progress"]

_BAR_INTERVAL: Final = 0.5
_LINE_INTERVAL: Final = 5.0
_RATE_WINDOW_S: Final = 30.0


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    return str(n)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def format_cost(stats: BatchStats) -> str:
    """``$0.0123``, ``>= $0.01 (3 unpriced)`` or ``unknown`` (no price known)."""
    cost = stats.cost_usd_known
    if stats.unpriced and not cost:
        return "unknown"
    text = f"${cost:.4f}"
    return f">= {text} ({stats.unpriced} unpriced)" if stats.unpriced else text


def format_progress(
    stats: BatchStats,
    *,
    done: int,
    total: int | None,
    rate: float,
    eta_s: float | None,
) -> str:
    """One progress line from the numbers (what the bar's text and the line both show)."""
    head = f"{done}/{total if total is not None else '?'}"
    if total:
        head += f" {100 * done / total:.0f}%"
    eta = _clock(eta_s) if eta_s is not None else "?"
    parts = [
        head,
        f"{rate:.1f} req/s",
        f"ETA {eta}",
        f"ok {stats.ok} failed {stats.failed}",
        f"tokens {_tokens(stats.input_tokens)} in/{_tokens(stats.output_tokens)} out",
        f"retries {stats.retries} 429s {stats.rate_limited}",
        f"limit {stats.concurrency_limit:.0f}",
    ]
    if stats.cache_hits:
        parts.append(f"cached {stats.cache_hits}")
    parts.append(f"cost {format_cost(stats)}")
    return " | ".join(parts)


class BatchProgress:
    """Live progress of a batch, drawn on a clock (see the module docstring).

    Pass ``progress=True`` (or a ``BatchProgress``) to ``BatchRunner`` or ``Client.batch``.

    Args:
        total: the number of items, if known (``len(items)`` is used when it has one).
        file: where to draw (default: ``sys.stderr``).
        mode: ``"bar"`` (tqdm.auto), ``"line"`` (a line every ``interval``) or ``"auto"``:
            a bar on a terminal or in a notebook, lines elsewhere.
        interval: seconds between redraws (default: 0.5 for the bar, 5 for lines).
        done_before: items done before this run (a resumed job's), counted into done/total;
            a number or a callable read at every redraw.
        prefix: text in front of each line (the CLI's ``"reka-async: "``).
    """

    def __init__(
        self,
        *,
        total: int | None = None,
        file: IO[str] | None = None,
        mode: Literal["auto", "bar", "line"] = "auto",
        interval: float | None = None,
        done_before: int | Callable[[], int] = 0,
        prefix: str = "",
    ) -> None:
        if mode not in ("auto", "bar", "line"):
            raise ValueError(f"mode: must be 'auto', 'bar' or 'line', got {mode!r}")
        if interval is not None and not interval > 0:
            raise ValueError(f"interval: must be a positive number of seconds, got {interval!r}")
        self.total = total
        self.file = file
        if mode == "auto":
            mode = "bar" if _interactive(file if file is not None else sys.stderr) else "line"
        self.mode = mode
        self.interval = interval or (_BAR_INTERVAL if mode == "bar" else _LINE_INTERVAL)
        self.done_before = done_before
        self.prefix = prefix
        self.stats: BatchStats | None = None
        self._bar: Any = None
        self._task: asyncio.Task[None] | None = None
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._closed = False

    def __repr__(self) -> str:
        return f"<BatchProgress mode={self.mode} total={self.total} interval={self.interval:g}>"

    def start(self, stats: BatchStats) -> None:
        """Follow ``stats`` and start redrawing (in the running event loop)."""
        self.stats = stats
        self._closed = False
        self._samples.clear()
        if self.mode == "bar" and self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total,
                file=self.file if self.file is not None else sys.stderr,
                dynamic_ncols=True,
                mininterval=0,
                miniters=0,
                bar_format="{bar:20}|",
            )
        self.tick()
        self._task = asyncio.get_running_loop().create_task(self._ticker())

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.tick()

    def _done_before(self) -> int:
        before = self.done_before
        return before() if callable(before) else before

    def text(self, now: float | None = None) -> str:
        """The progress as one line of text (rate over the last 30 s of redraws)."""
        stats = self.stats if self.stats is not None else BatchStats()
        now = time.monotonic() if now is None else now
        samples = self._samples
        samples.append((now, stats.done))
        while len(samples) > 2 and now - samples[0][0] > _RATE_WINDOW_S:
            samples.popleft()
        t0, d0 = samples[0]
        rate = (stats.done - d0) / (now - t0) if now > t0 else 0.0
        if rate <= 0 and stats.done:
            rate = stats.requests_per_s
        done = self._done_before() + stats.done
        total = self.total
        eta = (max(total - done, 0) / rate) if total is not None and rate > 0 else None
        return format_progress(stats, done=done, total=total, rate=rate, eta_s=eta)

    def tick(self) -> None:
        """Redraw now (the ticker calls this every ``interval``)."""
        if self._closed:
            return
        text = self.text()
        bar = self._bar
        if bar is not None:
            done = self._done_before() + (self.stats.done if self.stats is not None else 0)
            if bar.total != self.total:
                bar.total = self.total
            literal = text.replace("{", "{{").replace("}", "}}")
            bar.bar_format = ("{bar:20}| " if self.total else "") + literal
            bar.n = done
            bar.refresh()
        else:
            out = self.file if self.file is not None else sys.stderr
            out.write(f"{self.prefix}progress {text}\n")
            out.flush()

    async def aclose(self) -> None:
        """Stop the ticker and wait for it, then ``close()``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.close()

    def close(self) -> None:
        """A last redraw, then stop (idempotent)."""
        if self._closed:
            return
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        if self.stats is not None:
            self.tick()
        self._closed = True
        bar, self._bar = self._bar, None
        if bar is not None:
            with contextlib.suppress(Exception):
                bar.close()


def _interactive(file: IO[str]) -> bool:
    if "ipykernel" in sys.modules:
        return True  # a notebook: tqdm.auto draws a widget
    isatty = getattr(file, "isatty", None)
    return bool(isatty is not None and isatty())
