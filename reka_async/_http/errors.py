"""The one translation point from aiohttp and asyncio errors to ours.

``map_errors(what)`` is a context manager in the style of httpx's ``map_httpcore_exceptions``:
whatever aiohttp, asyncio timeouts or the socket raise inside it leaves as an
``APIConnectionError`` (``APITimeoutError`` for timeouts), ``raise ... from exc``. Plain
requests and streams both read through it, so nothing above ``_http/`` sees an aiohttp type.
``status_error`` builds the typed error of a non-2xx response.

Two things happen to every translated exception:

* the request's fate is recorded: ``APIConnectionError.may_have_reached_server`` is false only
  for failures before the request could be read (DNS, refused, a connect timeout, TLS), which
  is what tells a retry that may bill twice from one that cannot (``retry.py``);
* the third-party exception, chained as ``__cause__`` (and so also as ``__context__``), is
  scrubbed in place along its whole chain: aiohttp's ``request_info`` (with the request
  headers, the API key among them) is replaced by a copy with the secret headers redacted,
  and ``history`` (earlier responses, each holding its own ``request_info``) is dropped, so no
  error reporter that serialises exception chains can capture the key. Credentials in a URL
  (a proxy's ``user:password@``) are stripped from the kept URLs and from text arguments, and
  our own message never carries them (``strip_userinfo``); a proxy's refusal keeps its
  status and reason in our message. Where a chained exception would still show them after
  that, the cause is not chained (``from None``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    body_snippet,
    make_status_error,
)
from .retry import parse_retry_after

__all__ = [
    "invalid_body",
    "map_errors",
    "scrub",
    "stale_candidate",
    "status_error",
    "strip_userinfo",
    "translate",
]

#: What ``map_errors`` translates: aiohttp's errors, asyncio's and the builtin timeout, and
#: socket-level ``OSError`` (a reset, a refused connection outside aiohttp's wrappers).
_THIRD_PARTY: Final = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError)


#: Failures before the server could have read the request: DNS, refused, TLS handshake,
#: the proxy's own refusal, and (aiohttp >= 3.10) the ``connect`` timeout. Anything else (a
#: read timeout, a reset, a drop, a malformed answer) may have reached the server, and so
#: does what cannot be told apart: the ``total`` deadline passing is a plain timeout whether
#: it passed while connecting, waiting for a pool slot or waiting for the answer, and aiohttp
#: < 3.10 raises a plain ServerTimeoutError for connect timeouts too (the safe side).
_NOT_SENT: Final[tuple[type[BaseException], ...]] = tuple(
    cls
    for cls in (
        aiohttp.ClientConnectorError,
        aiohttp.ClientHttpProxyError,
        aiohttp.InvalidURL,
        # A transport other than aiohttp's (``attempt.py``) may raise the builtin: the
        # connection was never made, so the request was never read.
        ConnectionRefusedError,
        getattr(aiohttp, "ConnectionTimeoutError", None),
    )
    if cls is not None
)

#: The builtin errors of a connection dropped under a request (another transport than aiohttp's
#: raises them as they are): on a reused connection, the stale case of ``_http/retry.py``.
_DROPPED: Final = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)

#: Request headers that carry credentials; redacted wherever aiohttp kept a copy.
_SECRET_HEADERS: Final = frozenset(("x-api-key", "authorization", "proxy-authorization"))
_REDACTED: Final = "<redacted>"

#: The ``user[:password]@`` of a URL written in text (``http://user:pw@proxy:3128``).
_USERINFO: Final = re.compile(r"(?<=://)[^\s/@'\"<>]+@")


def strip_userinfo(text: str) -> str:
    """``text`` with the credentials of every URL in it removed (``scheme://host...``)."""
    return _USERINFO.sub("", text) if "@" in text else text


def _bare(url: URL) -> URL:
    return url.with_user(None) if url.user is not None or url.password is not None else url


def translate(exc: BaseException, what: str) -> APIError:
    """Our error for an aiohttp/asyncio exception; ``what`` names the request in the message.

    The error's ``may_have_reached_server`` says whether the request may have been read.
    """
    sent = not isinstance(exc, _NOT_SENT)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        phase = "" if sent else " connecting"
        return APITimeoutError(
            f"{what}: timed out{phase} ({type(exc).__name__})", may_have_reached_server=sent
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        message = f"{what}: the connection broke while reading the body"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        message = f"{what}: the server closed the connection without answering"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        message = f"{what}: cannot connect ({exc.os_error.strerror or exc})"
    elif isinstance(exc, aiohttp.ClientHttpProxyError):
        # Its text names the proxy's URL, password included: keep the useful part only.
        message = f"{what}: the proxy refused the connection: HTTP {exc.status} {exc.message}"
    elif isinstance(exc, aiohttp.ClientResponseError):
        message = f"{what}: {type(exc).__name__}: HTTP {exc.status} {exc.message}"
    else:
        message = f"{what}: {type(exc).__name__}: {exc}"
    error = APIConnectionError(strip_userinfo(message), may_have_reached_server=sent)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, *_DROPPED)) or (
        isinstance(exc, aiohttp.ClientOSError) and not isinstance(exc, aiohttp.ClientConnectorError)
    ):
        error._unanswered = True  # type: ignore[attr-defined]
    return error


def stale_candidate(error: APIError) -> bool:
    """Whether ``error`` may be a stale pooled connection: it failed while the request was
    written or before any response byte (on a reused keep-alive connection, the case
    ``_http/retry.py`` retries once)."""
    return getattr(error, "_unanswered", False) is True


def _redacted(info: aiohttp.RequestInfo) -> aiohttp.RequestInfo:
    headers = CIMultiDict(
        (name, _REDACTED if name.lower() in _SECRET_HEADERS else value)
        for name, value in info.headers.items()
    )
    return aiohttp.RequestInfo(
        _bare(info.url), info.method, CIMultiDictProxy(headers), _bare(info.real_url)
    )


def _clean_arg(arg: Any) -> Any:
    if isinstance(arg, aiohttp.RequestInfo):
        return _redacted(arg)
    if isinstance(arg, str):
        return strip_userinfo(arg)
    if isinstance(arg, URL):
        return _bare(arg)
    proxy = getattr(arg, "proxy", None)
    if isinstance(proxy, URL) and hasattr(arg, "_replace"):
        # aiohttp's ConnectionKey (in a connector error's args and ``_conn_key``).
        return arg._replace(proxy=_bare(proxy)) if proxy is not _bare(proxy) else arg
    if isinstance(arg, tuple) and any(isinstance(a, aiohttp.ClientResponse) for a in arg):
        return ()  # a redirect history: each response holds its request's headers
    return arg


def scrub(exc: BaseException) -> bool:
    """Redact the request headers and URL credentials kept by ``exc`` and every exception
    chained to it, in place.

    aiohttp's response errors keep the ``RequestInfo`` of the request (its headers included,
    so the API key; its URL, so a proxy's password) as ``request_info``, in ``args`` and in
    each response of ``history``.

    Returns:
        Whether the chain is clean now: ``False`` when an exception's text still shows a
        URL's credentials (the caller then does not chain it).
    """
    chain = _chain(exc)
    for current in chain:
        info = getattr(current, "request_info", None)
        if isinstance(info, aiohttp.RequestInfo):
            with contextlib.suppress(AttributeError, TypeError):
                current.request_info = _redacted(info)  # type: ignore[attr-defined]
        if getattr(current, "history", None):
            with contextlib.suppress(AttributeError, TypeError):
                current.history = ()  # type: ignore[attr-defined]
        with contextlib.suppress(TypeError):  # no __dict__
            for name, value in list(vars(current).items()):
                clean = _clean_arg(value)
                if clean is not value:
                    with contextlib.suppress(AttributeError, TypeError):
                        setattr(current, name, clean)
        args = tuple(_clean_arg(arg) for arg in current.args)
        if any(new is not old for new, old in zip(args, current.args, strict=True)):
            current.args = args
    return not any(_shows_userinfo(link) for link in chain)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception reachable from it through ``__cause__`` and
    ``__context__``, each once (a chain may loop)."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__]
    return found


def _shows_userinfo(exc: BaseException) -> bool:
    with contextlib.suppress(Exception):
        return any(_USERINFO.search(text) for text in (str(exc), repr(exc)))
    return True


class map_errors:
    """Translate third-party exceptions raised inside the block into ours.

    A class rather than ``@contextmanager``: entering it costs no generator, and one instance
    per endpoint is reused by every request on the hot path.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, _THIRD_PARTY):
            if scrub(exc):
                raise translate(exc, self.what) from exc
            raise translate(exc, self.what) from None


def status_error(status: int, headers: Mapping[str, str], raw: bytes) -> APIStatusError:
    """The typed error for a non-2xx response (a 3xx is never followed: it says why)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after = None
    if status == 429 or status >= 500 or status in (408, 409):
        retry_after = parse_retry_after(lowered, time.time())
    if 300 <= status < 400:
        location = lowered.get("location", "?")
        return APIStatusError(
            f"HTTP {status}: the server redirected to {location}; redirects are not "
            "followed so the API key is never sent elsewhere. Check base_url.",
            status_code=status,
            body=raw.decode("utf-8", "replace"),
            headers=lowered,
            request_id=lowered.get("x-request-id"),
        )
    return make_status_error(status, raw, lowered, retry_after=retry_after)


def invalid_body(
    status: int, request_id: str | None, raw: bytes, exc: Exception
) -> APIResponseValidationError:
    """The error for a 2xx body that does not decode into the expected shape."""
    return APIResponseValidationError(
        f"HTTP {status}: the response is not valid JSON of the expected shape "
        f"({type(exc).__name__}); body starts: {body_snippet(raw)!r}",
        status_code=status,
        body=raw.decode("utf-8", "replace"),
        request_id=request_id,
    )
