"""The garbage collector while a large batch runs: its youngest generation collected less often.

Why: with thousands of requests in flight, each request's objects (its coroutine frames,
aiohttp's request and response, the body) live for the request's whole latency. They survive
the young collections, which run every 700 new container objects by default (several times
per request), get promoted, and are walked again and again, finally by full collections of a
heap of hundreds of thousands of objects, each of which stalls the event loop. Measured with
``BatchRunner`` at C=4,096 against a 2 s mock (an ad-hoc 20 s closed loop timing
``gc.callbacks``, set up like the benchmark's ``batchscale``): the
collector took about a third of the client's CPU (130-200 µs of 400-500 µs per request, ten
full collections), and with the first threshold at 20,000 it took 11 µs of 289 µs, with no
full collection, and the throughput rose from 64-75 % to 82 % of Little's law.

What: while at least one ``BatchStream`` with ``concurrency >= GC_CONCURRENCY`` runs, the
first threshold is at least ``GC_THRESHOLD`` (the others are left as they are). The change is
process-wide and counted: the last such stream to finish puts back the thresholds it found,
unless something else changed them meanwhile (then they are left alone). Garbage that forms
cycles lives a little longer (up to 20,000 new objects); nothing is frozen or disabled.
Only when asked: ``BatchRunner(gc_tuning=True)`` (the ``reka-async`` CLI, an application,
asks, and says so in its log); by default a library run leaves the collector alone.
"""

from __future__ import annotations

import gc
import threading
from typing import Final

__all__ = ["GC_CONCURRENCY", "GC_THRESHOLD", "GcRelief"]

#: The concurrency from which a batch raises the first threshold.
GC_CONCURRENCY: Final = 256
#: The first threshold while such a batch runs.
GC_THRESHOLD: Final = 20_000


class GcRelief:
    """The process-wide count of running batches that want the first threshold raised."""

    _lock = threading.Lock()  # streams run on several loops (the sync facade's threads)
    _holders = 0
    _found: tuple[int, ...] | None = None  # the thresholds before the first holder
    _set: tuple[int, ...] | None = None  # what the first holder set

    @classmethod
    def acquire(cls) -> None:
        """One more batch running: raise the first threshold (if it is lower)."""
        with cls._lock:
            cls._holders += 1
            if cls._holders == 1:
                found = gc.get_threshold()
                cls._found = found
                if found[0] and found[0] < GC_THRESHOLD:  # 0: collection disabled, leave it
                    gc.set_threshold(GC_THRESHOLD, *found[1:])
                cls._set = gc.get_threshold()

    @classmethod
    def release(cls) -> None:
        """One batch finished: the last one puts the thresholds back (if still ours)."""
        with cls._lock:
            if cls._holders == 0:
                return
            cls._holders -= 1
            if cls._holders == 0:
                if cls._found is not None and gc.get_threshold() == cls._set:
                    gc.set_threshold(*cls._found)
                cls._found = cls._set = None

    @classmethod
    def holders(cls) -> int:
        """How many batches hold the raised threshold (for tests and inspection)."""
        return cls._holders
