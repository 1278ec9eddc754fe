"""The fault catalogue of the mock server: names, canned bodies and ``[[...]]`` directives."""

from __future__ import annotations

import contextlib
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
        "credits",
        "drop",
        "cut",
        "slow_first_byte",
        "html",
        "truncated_json",
        "wrong_shape",
        "error_event",
    }
)
"""Every fault name understood by `MockRekaServer` (``inject``, directives, ``fault_kinds``)."""

DEFAULT_FAULT_KINDS: Final[tuple[str, ...]] = ("500", "502", "503", "rate_limit", "drop")
"""The faults drawn at random when ``fault_rate`` > 0 and no ``fault_kinds`` are given."""


def error_body(error_type: str, message: str) -> bytes:
    """The JSON body of a Reka API error."""
    return dumps({"error": {"type": error_type, "message": message}})


STATUS_FAULT_BODIES: Final[Mapping[str, tuple[int, bytes]]] = {
    name: (status, error_body(etype, message))
    for name, (status, etype, message) in _STATUS_FAULTS.items()
}
FAULT_422_BODY: Final = dumps(
    {"detail": [{"loc": ["body"], "msg": "Injected validation failure", "type": "value_error"}]}
)
RATE_LIMIT_BODY: Final = error_body("rate_limit_error", "Rate limit exceeded")
CREDITS_BODY: Final = error_body(
    "insufficient_credits", "You have run out of credits. Please top up your account."
)
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


def format_seconds(seconds: float) -> str:
    """Format a delay as whole seconds when it is whole, else as a short decimal."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
