"""The responses of the mock server's faults: error statuses, broken bodies, cut streams,
and hostile ones (a malformed status line, a compression bomb, a body that never ends)."""

from __future__ import annotations

import functools
import gzip
from collections.abc import Callable
from typing import Final

from aiohttp import web

from ._faults import (
    BAD_DELAY_HEADERS,
    CREDITS_BODIES,
    FAULT_422_BODY,
    HTML_BODY,
    RATE_LIMIT_BODY,
    STATUS_FAULT_BODIES,
    WRONG_SHAPE_BODY,
    format_seconds,
)
from ._sse import StreamWriter, close_transport

#: ``gzip_bomb``: whitespace appended to a valid reply (so the JSON stays valid), 16 MiB of it.
BOMB_PADDING: Final = 16 * 1024 * 1024
#: ``endless``: the most the server writes before giving up on a client that keeps reading.
ENDLESS_LIMIT: Final = 256 * 1024 * 1024
_ENDLESS_PIECE: Final = b" " * 65536


@functools.lru_cache(maxsize=4)
def _bomb(body: bytes) -> bytes:
    """``body`` plus ``BOMB_PADDING`` spaces, gzipped: about 16 KB on the wire."""
    return gzip.compress(body + b" " * BOMB_PADDING, compresslevel=9)


def _bad_status_line(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.write(b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}")
        transport.close()
    return web.Response(status=500)  # aiohttp finds the transport closed and gives up


async def _endless(
    request: web.Request, headers: dict[str, str], head: bytes, content_type: str
) -> web.StreamResponse:
    """``head`` then whitespace, without end (chunked), until the client leaves or
    ``ENDLESS_LIMIT`` bytes have gone (bounded, so a client that never stops cannot keep the
    server busy forever)."""
    headers["Content-Type"] = content_type
    response = web.StreamResponse(headers=headers)
    try:
        await response.prepare(request)
        await response.write(head)
        sent = len(head)
        while sent < ENDLESS_LIMIT:
            await response.write(_ENDLESS_PIECE)
            sent += len(_ENDLESS_PIECE)
        close_transport(request)
    except ConnectionError:
        pass  # the client gave up, as it should
    return response


async def fault_response(
    request: web.Request,
    fault: str,
    headers: dict[str, str],
    json_body: Callable[[], bytes],
    stream_events: Callable[[], list[bytes]] | None,
    *,
    writer: StreamWriter,
    done: bool | None = None,
    now: float,
    retry_after_s: float,
) -> web.StreamResponse:
    """Build the response for a fault (``stream_events`` is None for non-streams).

    ``headers`` are the response's usual headers (the limiter's own 429s are answered by
    the server, from the limiter's state), ``now`` the time on the limiter's clock,
    ``retry_after_s`` the delay advertised by ``rate_limit`` 429s, and ``done`` the
    dialect's ``[DONE]`` choice for streams.
    """
    if fault == "drop":
        transport = request.transport
        if transport is not None:
            transport.abort()
        # aiohttp's attempt to send this finds the transport closed and gives up.
        return web.Response(status=500)
    if fault == "rate_limit":
        delay = retry_after_s
        reset = now + delay
        headers["retry-after"] = format_seconds(round(delay, 3))
        headers["x-ratelimit-remaining"] = "0"
        headers["x-ratelimit-reset"] = f"{reset:.3f}"
        return web.Response(status=429, body=RATE_LIMIT_BODY, headers=headers)
    bad_delay = BAD_DELAY_HEADERS.get(fault)
    if bad_delay is not None or fault == "overloaded":
        # A 429 about this request only: the window's own x-ratelimit-* headers stay as they
        # are (quota not spent), with a delay header that is valid (overloaded) or not.
        if bad_delay is None:
            headers["retry-after"] = format_seconds(round(retry_after_s, 3))
        else:
            headers.update(bad_delay)
        return web.Response(status=429, body=RATE_LIMIT_BODY, headers=headers)
    credits = CREDITS_BODIES.get(fault)
    if credits is not None:
        return web.Response(status=429, body=credits, headers=headers)
    if fault == "error_event":
        if stream_events is None:
            fault = "500"
        else:
            events = stream_events()
            count = min(2, len(events) - 1)
            return await writer.send(request, headers, events, count, error_event=True, done=done)
    status_fault = STATUS_FAULT_BODIES.get(fault)
    if status_fault is not None:
        return web.Response(status=status_fault[0], body=status_fault[1], headers=headers)
    if fault == "422":
        return web.Response(status=422, body=FAULT_422_BODY, headers=headers)
    if fault == "html":
        headers["Content-Type"] = "text/html"
        return web.Response(status=502, body=HTML_BODY, headers=headers)
    if fault == "wrong_shape":
        return web.Response(body=WRONG_SHAPE_BODY, headers=headers)
    if fault == "truncated_json":
        full = json_body()
        return web.Response(body=full[: len(full) // 2], headers=headers)
    if fault == "bad_status_line":
        return _bad_status_line(request)
    if fault == "gzip_bomb":
        headers["Content-Encoding"] = "gzip"
        if stream_events is not None:
            headers["Content-Type"] = "text/event-stream"
            # One event whose JSON is followed by the padding: valid, and 16 MiB long.
            frames = b"".join(writer.frame(e, i + 1) for i, e in enumerate(stream_events()))
            first_end = frames.index(writer.nl + writer.nl)
            payload = frames[:first_end] + b" " * BOMB_PADDING + frames[first_end:]
            return web.Response(body=gzip.compress(payload), headers=headers)
        return web.Response(body=_bomb(json_body()), headers=headers)
    if fault == "endless":
        if stream_events is not None:
            return await _endless(request, headers, b"data: ", "text/event-stream")
        return await _endless(request, headers, b"{", "application/json")
    if fault == "cut":
        if stream_events is not None:
            events = stream_events()
            return await writer.send(request, headers, events, len(events) // 2, cut=True)
        full = json_body()
        response = web.StreamResponse(headers=headers)
        response.content_length = len(full)
        try:
            await response.prepare(request)
            await response.write(full[: len(full) // 2])
            close_transport(request)
        except ConnectionError:
            pass
        return response
    raise AssertionError(f"unhandled fault {fault!r}")  # pragma: no cover
