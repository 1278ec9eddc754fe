"""The honest client: it watches its own event loop and CPU while it measures.

A benchmark client that is itself overloaded reports its own delays as the server's: an
event that arrives while the loop is busy is timestamped late, a request due while it is
busy leaves late. So during every step a probe task sleeps ``PROBE_INTERVAL_S`` at a time
and records how late each wake-up came (the event-loop lag), and the process CPU time
(``time.process_time``, every thread) is compared with the wall time. A step is flagged as
client-bound when

* the process used at least ``CPU_LIMIT_PERCENT`` of one core (the event loop runs on one),
* or the loop lag's p99 reached ``LAG_LIMIT_MS``,
* or, in an open loop, the schedule lag's p99 reached ``LAG_LIMIT_MS``;

its latencies then include the client's own delay, and the report says so with the load at
which it first happened. The baseline lag is not zero: a selector wakes up to a millisecond
late (it rounds its timeout up to whole milliseconds).
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import attrs

from ._stats import Summary, summarize

__all__ = ["CPU_LIMIT_PERCENT", "LAG_LIMIT_MS", "ClientLoad", "LoopProbe", "client_reasons"]

PROBE_INTERVAL_S: Final = 0.01
CPU_LIMIT_PERCENT: Final = 90.0
LAG_LIMIT_MS: Final = 10.0


@attrs.frozen(kw_only=True)
class ClientLoad:
    """How busy the benchmark client was during a step.

    Attributes:
        cpu_percent: Process CPU time over wall time, in percent of one core.
        loop_lag_ms: How late the probe's wake-ups were, in milliseconds.
        reasons: Why the step is client-bound (empty: it is not).
    """

    cpu_percent: float
    loop_lag_ms: Summary | None
    reasons: tuple[str, ...] = ()

    @property
    def bottleneck(self) -> bool:
        """Whether the client, not the server, may have limited this step."""
        return bool(self.reasons)


def client_reasons(
    cpu_percent: float, loop_lag_ms: Summary | None, schedule_lag_ms: Summary | None
) -> tuple[str, ...]:
    """Why a step is client-bound, by the rules of the module docstring (empty: it is not)."""
    reasons = []
    if cpu_percent >= CPU_LIMIT_PERCENT:
        reasons.append(f"the client used {cpu_percent:.0f} % of a CPU core")
    if loop_lag_ms is not None and loop_lag_ms.p99 >= LAG_LIMIT_MS:
        reasons.append(f"its event loop ran {loop_lag_ms.p99:.1f} ms late (p99)")
    if schedule_lag_ms is not None and schedule_lag_ms.p99 >= LAG_LIMIT_MS:
        reasons.append(f"sending fell {schedule_lag_ms.p99:.1f} ms behind the schedule (p99)")
    return tuple(reasons)


class LoopProbe:
    """Measures the event-loop lag and the CPU use between `start` and `stop`."""

    __slots__ = ("_cpu0", "_lags", "_task", "_wall0")

    def __init__(self) -> None:
        self._lags: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = 0.0
        self._wall0 = 0.0

    def start(self) -> None:
        """Start probing (on the running loop)."""
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        lags = self._lags
        while True:
            due = time.perf_counter() + PROBE_INTERVAL_S
            await asyncio.sleep(PROBE_INTERVAL_S)
            lags.append(max(0.0, time.perf_counter() - due) * 1000.0)

    async def stop(self) -> tuple[float, Summary | None]:
        """Stop probing; returns the CPU percentage and the lag summary (ms)."""
        cpu = time.process_time() - self._cpu0
        wall = time.perf_counter() - self._wall0
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # its end, without swallowing a cancellation of ours
        percent = 100.0 * cpu / wall if wall > 0 else 0.0
        return percent, summarize(self._lags)
