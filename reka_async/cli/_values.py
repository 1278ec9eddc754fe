"""Argument types of the ``reka-async`` parser: bounded numbers, probabilities, and lists of
them, each failing with a message that names what was expected."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, TypeVar

from .._exceptions import InvalidRequestError
from .._wire.request import check_range

__all__ = [
    "non_negative_float",
    "non_negative_int",
    "error_rate",
    "numbers",
    "positive_float",
    "positive_usd",
    "positive_int",
    "probability",
    "sampling",
]

T = TypeVar("T", int, float)


def bounded(kind: Callable[[str], T], *, strict: bool, what: str) -> Callable[[str], T]:
    """An argparse type: ``kind`` parsed from the text, above 0 (``strict``) or at least 0."""

    def parse(text: str) -> T:
        try:
            value: Any = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > 0 if strict else value >= 0):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value  # type: ignore[no-any-return]

    return parse


positive_int = bounded(int, strict=True, what="a positive integer")
non_negative_int = bounded(int, strict=False, what="an integer >= 0")
positive_float = bounded(float, strict=True, what="a positive number")
non_negative_float = bounded(float, strict=False, what="a number >= 0")


def positive_usd(text: str) -> float:
    """An argparse type: a finite amount of USD above 0 (``inf`` would be no budget at all,
    and ``nan`` compares false with every cost)."""
    value = positive_float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite amount of USD, got {text!r}")
    return value


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def error_rate(text: str) -> float:
    """An argparse type: a share from 0 to below 1 (``--max-error-rate``)."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(
            f"expected a share from 0 to below 1 (0.5: more than half failed), got {text!r}"
        )
    return value


def sampling(name: str, kind: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type for the chat parameter ``name``: ``kind`` parsed from the text, in the
    range the client itself checks (``check_range``), so flags and API calls agree."""

    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        try:
            check_range(name, value)
        except InvalidRequestError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[1]) from None
        return value

    return parse


def numbers(kind: Callable[[str], T], what: str) -> Callable[[str], list[T]]:
    """An argparse type: comma-separated values of ``kind``; an empty entry (``1,,2``, a
    trailing comma) is refused rather than skipped, as it is most likely a typo."""

    def parse(text: str) -> list[T]:
        parts = text.split(",")
        if any(not part.strip() for part in parts):
            raise argparse.ArgumentTypeError(
                f"expected {what}, got {text!r}: remove the empty entry between the commas"
            )
        return [kind(part) for part in parts]

    return parse
