"""The circuit breaker's rule: which item errors stop a whole batch, how a 404 is told to
be about the model (so later items naming it are failed without being sent), and the error
rate above which a batch stops whatever its errors are (``max_error_rate``)."""

from __future__ import annotations

import collections
import math
from typing import Any, Final

from .._exceptions import (
    AuthenticationError,
    BatchAbortedError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from .cost import BudgetExceededError

__all__ = [
    "ERROR_RATE_WINDOW",
    "ErrorRate",
    "ErrorRateExceededError",
    "check_max_error_rate",
    "fatal_reason",
    "unknown_model",
]


class ErrorRateExceededError(BatchAbortedError):
    """More than ``max_error_rate`` of the last ``ERROR_RATE_WINDOW`` finished items failed,
    so the batch stopped (the rest were not sent). ``.cause`` is the last item's error, and
    ``.results`` the finished results, as for any ``BatchAbortedError``."""


#: ``max_error_rate`` is judged over this many of the last finished items (input errors not
#: counted), and only once that many have finished: a few early failures in a row are not
#: yet a rate.
ERROR_RATE_WINDOW: Final = 100


def fatal_reason(err: BaseException, *, enabled: bool, max_wait: float) -> str | None:
    """Why ``err`` must stop the whole batch, or ``None``.

    Args:
        err: an item's error.
        enabled: the runner's ``circuit_breaker``.
        max_wait: the client's longest honoured server wait (``max_retry_wait``).
    """
    if not enabled:
        return None
    if isinstance(err, AuthenticationError):
        return f"the API key was refused ({err}); check the key (REKA_API_KEY or api_key=)"
    if isinstance(err, PermissionDeniedError):
        return f"the key may not do this ({err}); check the key's access"
    if isinstance(err, BudgetExceededError):
        return str(err).removeprefix("batch stopped: ")
    if isinstance(err, InsufficientCreditsError):
        return f"the account is out of credits ({err}); top it up and resume"
    wait = err.retry_after if isinstance(err, RateLimitError) else None
    if wait is not None and wait > max_wait:
        return (
            f"the server asks to wait {wait:g} s, more than the {max_wait:g} s the client "
            f"waits (max_retry_wait); run the rest later"
        )
    return None


def unknown_model(error: NotFoundError, model: Any) -> bool:
    """Whether a 404 is about ``model`` (its message names it), not about a path."""
    return isinstance(model, str) and model in str(error)


def check_max_error_rate(value: Any) -> float | None:
    """``max_error_rate`` as a float in ``[0, 1)`` (or ``None``); a ``ValueError`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"max_error_rate: must be a number from 0 to below 1, got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(
            f"max_error_rate: must be from 0 to below 1 (a share of the last "
            f"{ERROR_RATE_WINDOW} items), got {value!r}"
        )
    return float(value)


class ErrorRate:
    """The share of failures among the last ``window`` finished items (``max_error_rate``).

    Args:
        max_rate: stop once more than this share of the window failed.
        window: how many of the last outcomes are judged (``ERROR_RATE_WINDOW``).
    """

    __slots__ = ("_outcomes", "failed", "max_rate", "window")

    def __init__(self, max_rate: float, window: int = ERROR_RATE_WINDOW) -> None:
        self.max_rate = max_rate
        self.window = window
        self._outcomes: collections.deque[bool] = collections.deque(maxlen=window)
        self.failed = 0  # failures in the window

    def __repr__(self) -> str:
        return (
            f"<ErrorRate {self.failed}/{len(self._outcomes)} failed, max {self.max_rate:g} "
            f"of the last {self.window}>"
        )

    def record(self, failed: bool) -> str | None:
        """Count one finished item; returns why the batch must stop, or ``None``."""
        outcomes = self._outcomes
        if len(outcomes) == self.window:
            self.failed -= outcomes[0]
        outcomes.append(failed)
        self.failed += failed
        if len(outcomes) < self.window or self.failed <= self.max_rate * self.window:
            return None
        return (
            f"{self.failed} of the last {self.window} items failed, more than the "
            f"max_error_rate {self.max_rate:g} allows; check the endpoint and the errors in "
            f"the results"
        )
