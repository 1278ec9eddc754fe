"""The errors of input lines that cannot become requests (their type names go into OUTPUT)."""

from __future__ import annotations

from .._exceptions import InvalidRequestError

__all__ = ["DuplicateCustomId", "InvalidInputLine"]


class InvalidInputLine(InvalidRequestError):
    """A line of the batch input that cannot become a request (bad JSON, bad fields...)."""


class DuplicateCustomId(InvalidRequestError):
    """A batch input line reuses a ``custom_id`` seen earlier in the same input."""
