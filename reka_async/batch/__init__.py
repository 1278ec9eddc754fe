"""Batches: many requests at bounded concurrency, each ending as exactly one result.

``items`` (item -> body, ``BatchOptions``), ``results`` (``BatchResult``, ``BatchStats``),
``limits`` (token buckets, the AIMD gate), ``bound`` (the most a request can be billed),
``cost`` (prices, the ``max_cost`` budget),
``cache`` (the SQLite request cache), ``progress`` (the live display), ``stream`` (the worker
pool) and ``runner`` (``BatchRunner``).
"""

from .._http.budget import RateBudget
from .bound import TokenBound, token_bound
from .breaker import ErrorRateExceededError
from .cache import CacheError, RequestCache
from .cost import (
    DEFAULT_PRICES,
    BudgetExceededError,
    CostBudget,
    MediaTokensNeededError,
    Price,
    PriceTable,
    UnpricedModelError,
    UsageAboveBoundError,
    load_prices,
)
from .items import BatchOptions, Prepare, estimate_tokens, item_custom_id, prepare_item
from .limits import AdaptiveLimit, TokenBucket
from .progress import BatchProgress
from .results import BatchResult, BatchStats, ResultHook
from .runner import BatchRunner
from .stream import BatchStream

__all__ = [
    "DEFAULT_PRICES",
    "AdaptiveLimit",
    "BatchProgress",
    "BudgetExceededError",
    "CacheError",
    "CostBudget",
    "ErrorRateExceededError",
    "MediaTokensNeededError",
    "Price",
    "PriceTable",
    "RateBudget",
    "RequestCache",
    "TokenBound",
    "UnpricedModelError",
    "UsageAboveBoundError",
    "load_prices",
    "token_bound",
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
