"""Batches: many requests at bounded concurrency, each ending as exactly one result.

``items`` (item -> body, ``BatchOptions``), ``results`` (``BatchResult``, ``BatchStats``),
``limits`` (token buckets, the AIMD gate), ``stream`` (the worker pool) and ``runner``
(``BatchRunner``).
"""

from .items import BatchOptions, Prepare, estimate_tokens, item_custom_id, prepare_item
from .limits import AdaptiveLimit, TokenBucket
from .results import BatchResult, BatchStats, ResultHook
from .runner import BatchRunner
from .stream import BatchStream

__all__ = [
    "AdaptiveLimit",
    "BatchOptions",
    "BatchResult",
    "BatchRunner",
    "BatchStats",
    "BatchStream",
    "Prepare",
    "ResultHook",
    "TokenBucket",
    "estimate_tokens",
    "item_custom_id",
    "prepare_item",
]
