"""The one error hierarchy of reka_async.

::

    RekaError
    ├── InvalidRequestError (also a ValueError)   bad arguments, caught before anything is sent
    ├── MissingAPIKeyError                         no key given and REKA_API_KEY unset
    ├── BatchAbortedError                          a batch stopped early (breaker, input, hook)
    └── APIError                                   anything that happened talking to the API
        ├── APIStatusError                         the server answered with a 4xx/5xx status
        │   ├── BadRequestError                    400
        │   ├── AuthenticationError                401
        │   ├── PermissionDeniedError              403
        │   ├── NotFoundError                      404
        │   ├── MethodNotAllowedError              405 (a wrong path or method for this API)
        │   ├── RequestTimeoutError                408
        │   ├── ConflictError                      409
        │   ├── UnprocessableEntityError           422 (``detail`` parsed)
        │   ├── RateLimitError                     429, rate limit (retried after its delay)
        │   │   └── InsufficientCreditsError       429, out of credits (never retried)
        │   └── InternalServerError                >= 500
        ├── APIResponseValidationError             a 2xx body that is not the documented shape
        ├── ResponseTooLargeError                  a body or stream event over max_response_bytes
        ├── StreamError                            an error event, or the stream broke mid-way
        └── APIConnectionError                     the request never got a complete answer
            └── APITimeoutError                    connect, read or total timeout

Third-party exceptions (aiohttp, asyncio timeouts, JSON errors) are translated into these once,
in ``_http/errors.py`` and ``_stream.py``; nothing else in the package catches them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchAbortedError",
    "ConflictError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RekaError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "StreamError",
    "UnprocessableEntityError",
]

_SNIPPET_CHARS = 200


def body_snippet(body: bytes | str | None, limit: int = _SNIPPET_CHARS) -> str:
    """Return a short printable excerpt of a response body for error messages."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _rebuild(cls: type[RekaError], args: tuple[Any, ...]) -> RekaError:
    exc = cls.__new__(cls)
    exc.args = args
    return exc


class RekaError(Exception):
    """Root of every exception raised by reka_async.

    Every subclass pickles (``__reduce__`` rebuilds it from its attributes, whatever its
    ``__init__`` takes), so a failed result can cross a process pool or a Ray task.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # The state goes third, so pickle restores it after memoizing the object: an error
        # whose attributes lead back to it (a result holding it) pickles too.
        return (_rebuild, (type(self), self.args), self.__dict__)


class InvalidRequestError(RekaError, ValueError):
    """The arguments of a call are invalid; raised before anything is sent."""


class MissingAPIKeyError(RekaError):
    """No API key was passed and ``REKA_API_KEY`` is not set."""


class BatchAbortedError(RekaError):
    """A batch stopped before finishing: the circuit breaker (a refused key, no credits, a
    server wait above the cap), or the input iterator or the ``on_result`` hook raised.

    Attributes:
        cause: the error that stopped the batch.
        results: the results finished before it stopped (filled in by ``BatchRunner.run``).
    """

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.results: list[Any] = []


class APIError(RekaError):
    """Something went wrong talking to the API.

    Attributes:
        message: human-readable description.
        request_id: the server's ``x-request-id``, when there was a response.
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id: {self.request_id})"
        return self.message


class APIConnectionError(APIError):
    """The request did not get a complete response (refused, reset, dropped).

    Attributes:
        may_have_reached_server: false only when the request cannot have been read by the
            server (DNS, connection refused, a connect timeout, a TLS handshake error); true
            after a read timeout or a drop once the request was written, and whenever it is
            unknown. A retry after such a failure may be generated and billed twice.
    """

    def __init__(
        self, message: str, *, request_id: str | None = None, may_have_reached_server: bool = True
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.may_have_reached_server = may_have_reached_server


class APITimeoutError(APIConnectionError):
    """A connect, read (gap between bytes) or total timeout expired."""


class ResponseTooLargeError(APIError):
    """A response body, or one event of a stream, is larger than ``max_response_bytes``.

    Raised as soon as the limit is passed (the connection is dropped, the rest is not read)
    and never retried: the same request would get the same answer.

    Attributes:
        limit: the client's ``max_response_bytes``.
    """

    def __init__(self, message: str, *, limit: int, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.limit = limit


class StreamError(APIError):
    """A stream ended with an error event or broke after it had started.

    Attributes:
        partial_text: the assembled text received before the failure.
    """

    def __init__(
        self, message: str, *, request_id: str | None = None, partial_text: str = ""
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.partial_text = partial_text


class APIResponseValidationError(APIError):
    """A successful (2xx) response whose body is not valid JSON of the documented shape.

    Attributes:
        status_code: the HTTP status.
        body: the raw body text.
    """

    def __init__(
        self, message: str, *, status_code: int, body: str, request_id: str | None = None
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.body = body


class APIStatusError(APIError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status.
        body: the parsed JSON body, or the raw text when it was not JSON.
        headers: the response headers (lower-cased names).
        error_type: the ``error.type`` field, when the body has one.
        retry_after: the delay in seconds the server asked for, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})
        self.error_type = error_type
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: missing or invalid parameters."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, invalid or disabled."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: unknown path or model."""


class MethodNotAllowedError(APIStatusError):
    """405: the path does not take this method (often a base URL or dialect mix-up)."""


class RequestTimeoutError(APIStatusError):
    """408: the server timed out waiting for the request (retried)."""


class ConflictError(APIStatusError):
    """409: conflict (retried)."""


class UnprocessableEntityError(APIStatusError):
    """422: validation failed.

    Attributes:
        detail: the list of ``{"loc", "msg", "type"}`` items the server sent (may be empty).
    """

    @property
    def detail(self) -> list[dict[str, Any]]:
        """The parsed ``detail`` list of the FastAPI-style validation body."""
        if isinstance(self.body, dict):
            detail = self.body.get("detail")
            if isinstance(detail, list):
                return [d for d in detail if isinstance(d, dict)]
        return []


class RateLimitError(APIStatusError):
    """429: rate limit exceeded; retried after the delay the server gives."""


class InsufficientCreditsError(RateLimitError):
    """429: the account is out of credits or quota. Retrying cannot help, so it never is."""


class InternalServerError(APIStatusError):
    """5xx: the server (or a proxy in front of it) failed; retried."""


_STATUS_TO_ERROR: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    408: RequestTimeoutError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

#: Words of the out-of-credits 429 in every wording seen ("P001: Insufficient Balance",
#: "... does not have enough credits", "quota exceeded", billing/payment errors).
#: ("insufficient" alone is not one: "insufficient capacity" is an overload, worth a retry.)
_CREDIT_WORDS = ("credit", "quota", "billing", "balance", "payment", "p001")
_CREDIT_KEYS = ("type", "message", "code", "detail", "error")


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    """Extract (type, message) from any of the documented error body shapes."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            etype = err.get("type")
            emsg = err.get("message")
            return (
                etype if isinstance(etype, str) else None,
                emsg if isinstance(emsg, str) else None,
            )
        if isinstance(err, str):
            return None, err
        detail = body.get("detail")
        if isinstance(detail, list):
            msgs = []
            for item in detail:
                if isinstance(item, dict):
                    raw_loc = item.get("loc")
                    parts = raw_loc if isinstance(raw_loc, list) else []
                    loc = ".".join(str(p) for p in parts if p != "body")
                    msg = str(item.get("msg", ""))
                    msgs.append(f"{loc}: {msg}" if loc else msg)
            return "validation_error", "; ".join(msgs) or None
        if isinstance(detail, str):
            return None, detail
        top_message = body.get("message")
        if isinstance(top_message, str):
            return None, top_message
    return None, None


def _body_words(body: Any) -> str:
    """The strings of an error body's usual fields, one level deep (``error.code``,
    ``detail.message``, ...), whatever shape it has."""
    if not isinstance(body, dict):
        return ""
    words = []
    for key in _CREDIT_KEYS:
        value = body.get(key)
        if isinstance(value, str):
            words.append(value)
        elif isinstance(value, dict):
            words.extend(v for k in _CREDIT_KEYS if isinstance(v := value.get(k), str))
    return " ".join(words)


def is_credits_exhausted(error_type: str | None, message: str | None, body: Any = None) -> bool:
    """Tell the out-of-credits 429 from a rate-limit 429 by what the body says."""
    text = f"{error_type or ''} {message or ''} {_body_words(body)}".lower()
    return any(word in text for word in _CREDIT_WORDS)


def make_status_error(
    status: int,
    raw_body: bytes,
    headers: Mapping[str, str],
    *,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the right ``APIStatusError`` subclass for a non-2xx response.

    This is the one place that maps a status (and, for 429, the body) to an exception class.
    Any body is accepted: JSON of any shape, HTML, garbage, or nothing.
    """
    text = raw_body.decode("utf-8", "replace")
    body: Any
    try:
        body = json.loads(text) if text else None
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: kept as text
        body = text
    error_type, message = _error_fields(body)
    request_id = headers.get("x-request-id")
    cls: type[APIStatusError]
    cls = InternalServerError if status >= 500 else _STATUS_TO_ERROR.get(status, APIStatusError)
    if status == 429 and is_credits_exhausted(error_type, message, body):
        cls = InsufficientCreditsError
    if message is None:
        snippet = body_snippet(text)
        message = f"unexpected body: {snippet!r}" if snippet else "empty body"
    summary = f"HTTP {status}"
    if error_type:
        summary += f" {error_type}"
    summary += f": {message}"
    if cls is InsufficientCreditsError:
        summary += " (out of credits: top up the account; this is not retried)"
    elif retry_after is not None and cls is RateLimitError:
        summary += f" (server asked to wait {retry_after:g} s)"
    return cls(
        summary,
        status_code=status,
        body=body,
        headers=headers,
        request_id=request_id,
        error_type=error_type,
        retry_after=retry_after,
    )
