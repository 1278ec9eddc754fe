"""``RawResponse``: the HTTP answer of a ``with_raw_response`` call around its parsed result,
and ``Capture``, the ``on_response`` hook that records it (``client.chat`` and
``client.models`` share both)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs

from ._http import ResponseEvent
from ._wire import loads

__all__ = ["Capture", "RawResponse"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RawResponse(Generic[T]):
    """The HTTP answer of a call of ``with_raw_response``, around its parsed result.

    Attributes:
        status_code: the HTTP status (2xx: an error status raises as usual).
        headers: the response headers (case-insensitive), rate limits
            (``x-ratelimit-limit``, ``x-ratelimit-remaining``, ``x-ratelimit-reset``) included.
        content: the body as received, in the dialect that answered.
        request_id: the server's ``x-request-id``.
        elapsed_s: seconds the successful attempt took.
        retries_taken: attempts before the successful one.
    """

    status_code: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    content: bytes = attrs.field(repr=False)
    request_id: str | None
    elapsed_s: float
    retries_taken: int
    _parsed: T = attrs.field(repr=False, alias="parsed")

    def parse(self) -> T:
        """The parsed result (what the plain call returns: a ``ChatResponse``, ...)."""
        return self._parsed

    def json(self) -> Any:
        """The body decoded as JSON, in the layout of the dialect that answered."""
        return loads(self.content)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", "replace")


class Capture:
    """Keeps the ``ResponseEvent`` of each attempt of one call, for ``RawResponse``."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[ResponseEvent] = []

    def __call__(self, event: ResponseEvent) -> None:
        self.events.append(event)

    def raw(self, parsed: T) -> RawResponse[T]:
        last = self.events[-1]
        return RawResponse(
            status_code=last.status_code or 0,
            headers=last.headers,
            content=last.content or b"",
            request_id=last.request_id,
            elapsed_s=last.elapsed_s,
            retries_taken=len(self.events) - 1,
            parsed=parsed,
        )
