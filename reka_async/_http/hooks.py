"""Request hooks: ``on_request`` and ``on_response`` around every HTTP attempt (``on_retry`` is
in ``retry.py``), and the debug log line built on them.

Hooks are the place for metrics and tracing. The transport calls them inline, in the task
that made the call, so a hook sees the caller's context variables (a tracing span's parent);
it must be quick and must not block. An exception raised by a hook propagates to the caller
(a ``BatchRunner`` calls the client's hooks guarded: ``batch/retries.py``).

The request loop pays for hooks only when there are some: ``RequestOptions.hooks`` is ``None``
otherwise, and each attempt checks it once before and once after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from .._exceptions import APIError

__all__ = [
    "Hooks",
    "RequestEvent",
    "RequestHook",
    "ResponseEvent",
    "ResponseHook",
    "debug_log_hook",
]

logger = logging.getLogger("reka_async")

_NO_HEADERS: Final[Mapping[str, str]] = {}


@attrs.frozen(kw_only=True, eq=False)
class RequestEvent:
    """What ``on_request`` receives as an HTTP attempt starts.

    Compared and hashed by identity, so a hook may key its own state (a span, a timer) by the
    event and find it again as ``ResponseEvent.request``.

    Attributes:
        method: the HTTP method (``"POST"``, ``"GET"``).
        path: the endpoint path, e.g. ``"/chat"`` or ``"/chat/completions"``.
        url: the absolute URL, without any credentials.
        attempt: 0 for the first attempt, 1 for the first retry, ...
        stream: whether this opens a server-sent event stream.
        body: the JSON body as sent (it holds the prompt: never log it by accident), or
            ``None``. Request headers are not given: they carry the API key.
        started: ``time.monotonic()`` when the attempt started.
    """

    method: str
    path: str
    url: str
    attempt: int
    stream: bool
    body: bytes | None = attrs.field(repr=False)
    started: float


@attrs.frozen(kw_only=True, eq=False)
class ResponseEvent:
    """What ``on_response`` receives when an HTTP attempt ends: once per ``RequestEvent``.

    An attempt ends with the server's answer (``status_code`` set, a 2xx or an error status)
    or without one (``status_code`` ``None``: a connection error or timeout, in ``error``).
    A cancelled attempt (the caller's task cancelled) gets no ``on_response`` call.

    Attributes:
        request: the ``RequestEvent`` of this attempt.
        status_code: the HTTP status, or ``None`` when no answer came.
        headers: the response headers (empty when no answer came); the rate-limit headers
            (``x-ratelimit-*``, ``retry-after``) are here.
        request_id: the server's ``x-request-id``.
        elapsed_s: seconds from the start of the attempt to its end (for a stream: to the
            response headers).
        response: the parsed result of a 2xx plain request (a ``ChatResponse``, or the
            ``Model`` list); ``None`` for errors and streams.
        content: the raw body of a plain request as received; ``None`` for streams and when
            no answer came.
        error: the error this attempt ended with (a status error, a connection error, a body
            of the wrong shape), or ``None`` on success. Whether it is retried is told by
            ``on_retry``, which follows.
    """

    request: RequestEvent
    status_code: int | None
    headers: Mapping[str, str] = attrs.field(repr=False)
    request_id: str | None
    elapsed_s: float
    response: Any = attrs.field(repr=False)
    content: bytes | None = attrs.field(repr=False)
    error: APIError | None


RequestHook = Callable[[RequestEvent], None]
ResponseHook = Callable[[ResponseEvent], None]


class Hooks:
    """The ``on_request`` and ``on_response`` callables of a request, in call order."""

    __slots__ = ("on_request", "on_response")

    def __init__(
        self,
        on_request: Sequence[RequestHook] = (),
        on_response: Sequence[ResponseHook] = (),
    ) -> None:
        self.on_request: tuple[RequestHook, ...] = tuple(on_request)
        self.on_response: tuple[ResponseHook, ...] = tuple(on_response)

    def __repr__(self) -> str:
        return f"<Hooks on_request={len(self.on_request)} on_response={len(self.on_response)}>"

    def __bool__(self) -> bool:
        return bool(self.on_request or self.on_response)

    def plus(self, other: Hooks | None) -> Hooks:
        """These hooks, then ``other``'s."""
        if not other:
            return self
        return Hooks(self.on_request + other.on_request, self.on_response + other.on_response)

    def started(
        self, method: str, path: str, url: str, attempt: int, body: bytes | None, stream: bool
    ) -> RequestEvent:
        """Call the ``on_request`` hooks for an attempt that starts now; return its event."""
        event = RequestEvent(
            method=method,
            path=path,
            url=url,
            attempt=attempt,
            stream=stream,
            body=body,
            started=time.monotonic(),
        )
        for hook in self.on_request:
            hook(event)
        return event

    def answered(
        self,
        request: RequestEvent,
        *,
        status: int | None,
        headers: Mapping[str, str] | None,
        content: bytes | None = None,
        response: Any = None,
        error: APIError | None = None,
    ) -> None:
        """Call the ``on_response`` hooks for the end of ``request``'s attempt."""
        if not self.on_response:
            return
        headers = _NO_HEADERS if headers is None else headers
        event = ResponseEvent(
            request=request,
            status_code=status,
            headers=headers,
            request_id=headers.get("x-request-id"),
            elapsed_s=time.monotonic() - request.started,
            response=response,
            content=content,
            error=error,
        )
        for hook in self.on_response:
            hook(event)


def debug_log_hook(event: ResponseEvent) -> None:
    """One ``DEBUG`` line per HTTP attempt on the ``reka_async`` logger: method, path, status
    (or the error class when no answer came), request id, attempt and duration. Never a
    header or a body, so never the key or the prompt."""
    request = event.request
    outcome = str(event.status_code) if event.status_code is not None else "no answer"
    if event.status_code is None and event.error is not None:
        outcome = f"no answer ({type(event.error).__name__})"
    logger.debug(
        "%s %s%s -> %s request_id=%s attempt=%d %.3fs",
        request.method,
        request.path,
        " (stream)" if request.stream else "",
        outcome,
        event.request_id,
        request.attempt + 1,
        event.elapsed_s,
    )
