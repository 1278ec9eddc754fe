"""The circuit breaker's rule: which item errors stop a whole batch, and how a 404 is told to
be about the model (so later items naming it are failed without being sent)."""

from __future__ import annotations

from typing import Any

from .._exceptions import (
    AuthenticationError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from .cost import BudgetExceededError

__all__ = ["fatal_reason", "unknown_model"]


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
