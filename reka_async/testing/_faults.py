"""The fault catalogue of the mock server: names, canned bodies and ``[[...]]`` directives."""

from __future__ import annotations

import collections
import contextlib
import random
import re
from collections.abc import Iterable, Mapping
from typing import Final

from ._json import dumps

#: Fault names that answer with a fixed HTTP error status.
_STATUS_FAULTS: Final[Mapping[str, tuple[int, str, str]]] = {
    "400": (400, "validation_error", "Invalid request parameters"),
    "401": (401, "authentication_error", "Invalid or missing API key"),
    "403": (403, "permission_error", "You do not have access to this resource"),
    "404": (404, "not_found_error", "Not found"),
    "408": (408, "timeout_error", "Request timed out"),
    "409": (409, "conflict_error", "Conflicting request"),
    "500": (500, "server_error", "Internal server error"),
    "502": (502, "server_error", "Bad gateway"),
    "503": (503, "server_error", "Service temporarily unavailable"),
}

FAULTS: Final[frozenset[str]] = frozenset(
    {
        *_STATUS_FAULTS,
        "422",
        "rate_limit",
        "overloaded",
        "bad_retry_after",
        "nan_retry_after",
        "negative_retry_after_ms",
        "credits",
        "credits_p001",
        "credits_enough",
        "drop",
        "cut",
        "slow_first_byte",
        "html",
        "truncated_json",
        "wrong_shape",
        "error_event",
        "bad_status_line",
        "gzip_bomb",
        "endless",
    }
)
"""Every fault name understood by `MockRekaServer` (``inject``, directives, ``fault_kinds``)."""

DEFAULT_FAULT_KINDS: Final[tuple[str, ...]] = ("500", "502", "503", "rate_limit", "drop")
"""The faults drawn at random when ``fault_rate`` > 0 and no ``fault_kinds`` are given."""


def error_body(error_type: str, message: str) -> bytes:
    """The JSON body of a Reka API error."""
    return dumps({"error": {"type": error_type, "message": message}})


METHOD_NOT_ALLOWED_BODY: Final = dumps({"detail": "Method Not Allowed"})


STATUS_FAULT_BODIES: Final[Mapping[str, tuple[int, bytes]]] = {
    name: (status, error_body(etype, message))
    for name, (status, etype, message) in _STATUS_FAULTS.items()
}
FAULT_422_BODY: Final = dumps(
    {"detail": [{"loc": ["body"], "msg": "Injected validation failure", "type": "value_error"}]}
)
RATE_LIMIT_BODY: Final = error_body("rate_limit_error", "Rate limit exceeded")
#: The out-of-credits 429 in each wording the contract records: today's (``credits``), the
#: FastAPI ``detail`` string with the P001 code, and the "not enough credits" message typed as
#: a rate-limit error (so only the words tell it from one).
CREDITS_BODIES: Final[Mapping[str, bytes]] = {
    "credits": error_body(
        "insufficient_credits", "You have run out of credits. Please top up your account."
    ),
    "credits_p001": dumps({"detail": "P001: Insufficient Balance"}),
    "credits_enough": error_body(
        "rate_limit_error", "Your account does not have enough credits to make this request."
    ),
}
#: Rate-limit 429s (quota not spent) whose delay header is not a usable number.
BAD_DELAY_HEADERS: Final[Mapping[str, Mapping[str, str]]] = {
    "bad_retry_after": {"retry-after": "-5"},
    "nan_retry_after": {"retry-after": "nan"},
    "negative_retry_after_ms": {"retry-after-ms": "-100"},
}
AUTH_BODY: Final = error_body("authentication_error", "Invalid or missing API key")
HTML_BODY: Final = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
WRONG_SHAPE_BODY: Final = dumps({"unexpected": True, "responses": "nope"})
STREAM_ERROR_BODY: Final = error_body("server_error", "Stream failed")

_DIRECTIVE_RE: Final = re.compile(r"\[\[(fault|latency_ms):([^\[\]]*)\]\]")


def check_faults(names: Iterable[str], what: str) -> None:
    """Raise ValueError naming ``what`` when a name is not in `FAULTS`."""
    unknown = sorted(set(names) - FAULTS)
    if unknown:
        raise ValueError(f"unknown {what}: {unknown}; known: {sorted(FAULTS)}")


def parse_directives(text: str, counts: dict[str, int]) -> tuple[str | None, float | None]:
    """Return the fault and the latency override (seconds) the directives in text ask for.

    ``counts`` holds how often each counted directive (``[[fault:NAME*K]]``) has been seen;
    it is updated in place.
    """
    fault: str | None = None
    latency: float | None = None
    if "[[" in text:
        for match in _DIRECTIVE_RE.finditer(text):
            kind, arg = match.group(1), match.group(2).strip()
            if kind == "latency_ms":
                if latency is None:
                    with contextlib.suppress(ValueError):
                        latency = max(float(arg), 0.0) / 1000.0
                continue
            if fault is not None:
                continue
            name, star, times = arg.partition("*")
            if name not in FAULTS:
                continue
            if not star:
                fault = name
                continue
            try:
                limit = int(times)
            except ValueError:
                continue
            directive = match.group(0)
            seen = counts.get(directive, 0) + 1
            counts[directive] = seen
            if seen <= limit:
                fault = name
    return fault, latency


class FaultPicker:
    """Picks each request's fault: its directive, else the injected queue, else a random draw.

    Args:
        rate: Probability of a random fault.
        kinds: The faults drawn at random.
        seed: Seed of the random draw.
    """

    __slots__ = ("_counts", "_injected", "_kinds", "_rate", "_rng")

    def __init__(self, *, rate: float, kinds: Iterable[str], seed: int) -> None:
        self._kinds = tuple(kinds)
        check_faults(self._kinds, "fault kinds")
        if rate > 0 and not self._kinds:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        self._rate = float(rate)
        self._rng = random.Random(seed)
        self._injected: collections.deque[str] = collections.deque()
        self._counts: dict[str, int] = {}

    def inject(self, faults: Iterable[str]) -> None:
        """Queue faults for the following requests, one each (ValueError for unknown ones)."""
        faults = tuple(faults)
        check_faults(faults, "faults")
        self._injected.extend(faults)

    def pick(self, text: str) -> tuple[str | None, float | None]:
        """The fault of a request whose last message is ``text``, and its latency override."""
        fault, latency = parse_directives(text, self._counts)
        if fault is None and self._injected:
            with contextlib.suppress(IndexError):  # another thread may have emptied it
                fault = self._injected.popleft()
        if fault is None and self._rate > 0.0 and self._rng.random() < self._rate:
            fault = self._rng.choice(self._kinds)
        return fault, latency


def format_seconds(seconds: float) -> str:
    """Format a delay as whole seconds when it is whole, else as a short decimal."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
