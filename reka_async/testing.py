"""An embedded mock of the Reka Chat API, for tests, examples, benchmarks and ``--mock``.

`MockRekaServer` is a small ``aiohttp.web`` application that speaks the wire contract in
``reka-chat-api.md``: ``POST /v1/chat`` (plain JSON or server-sent events with cumulative
``chunk.content``), ``GET /v1/models``, ``X-Api-Key`` auth, FastAPI-style 422 validation
errors, rate-limit headers on every response and a catalogue of injectable faults.

Replies are deterministic: the same request always gets the same text, so tests can assert
on it. Faults are chosen per request, first match wins:

1. a directive in the last message's text, ``[[fault:NAME]]`` (every attempt) or
   ``[[fault:NAME*K]]`` (only the first K requests carrying that exact directive);
2. the queue filled by `MockRekaServer.inject` (FIFO, one fault per request);
3. a random fault with probability ``fault_rate`` drawn from ``fault_kinds``
   (seeded, hence reproducible);
4. the optional ``rpm_limit`` fixed-window limiter, which answers rate-limit 429s.

A directive ``[[latency_ms:N]]`` overrides the response latency for that request.

This module is deliberately standalone: it imports nothing else from ``reka_async``, only
aiohttp and the standard library (plus orjson when it is installed, for speed).

Run it on its own with ``python -m reka_async.testing --port 8000``; `MockServerProcess`
runs it so in a subprocess (for tests of other processes) and reads its URL.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import importlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Final, TypeVar

from aiohttp import web

__all__ = [
    "DEFAULT_FAULT_KINDS",
    "FAULTS",
    "MockRekaServer",
    "MockServerProcess",
    "RecordedRequest",
    "main",
]


# --------------------------------------------------------------------------- JSON


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


_dumps: Callable[[Any], bytes] = _std_dumps
_loads: Callable[[bytes], Any] = json.loads

try:  # orjson is an optional speed-up; the output is the same compact JSON.
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    _dumps = orjson.dumps
    _loads = orjson.loads


# --------------------------------------------------------------------------- faults

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


def _error_body(error_type: str, message: str) -> bytes:
    return _dumps({"error": {"type": error_type, "message": message}})


_STATUS_FAULT_BODIES: Final[Mapping[str, tuple[int, bytes]]] = {
    name: (status, _error_body(etype, message))
    for name, (status, etype, message) in _STATUS_FAULTS.items()
}
_422_FAULT_BODY: Final = _dumps(
    {"detail": [{"loc": ["body"], "msg": "Injected validation failure", "type": "value_error"}]}
)
_RATE_LIMIT_BODY: Final = _error_body("rate_limit_error", "Rate limit exceeded")
_CREDITS_BODY: Final = _error_body(
    "insufficient_credits", "You have run out of credits. Please top up your account."
)
_AUTH_BODY: Final = _error_body("authentication_error", "Invalid or missing API key")
_HTML_BODY: Final = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
_WRONG_SHAPE_BODY: Final = _dumps({"unexpected": True, "responses": "nope"})
_STREAM_ERROR_BODY: Final = _error_body("server_error", "Stream failed")

_JSON: Final = "application/json"
_NOMINAL_RPM: Final = 1_000_000  # advertised when no rpm_limit is set; never reached
_WINDOW_S: Final = 60.0

_DIRECTIVE_RE: Final = re.compile(r"\[\[(fault|latency_ms):([^\[\]]*)\]\]")
_WORD_RE: Final = re.compile(r"\S+")
_ROLES: Final = frozenset({"user", "assistant", "system", "tool_output"})
_TOOL_CHOICES: Final = frozenset({"auto", "none", "tool"})
_JSON_PREFILL_CONTINUATION: Final = '\n{"answer": "mock"}\n```\n'
_PLAIN_PREFILL_CONTINUATION: Final = " and so it continues."


def _format_seconds(seconds: float) -> str:
    """Format a delay as whole seconds when it is whole, else as a short decimal."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request received by `MockRekaServer`.

    Args:
        method: The HTTP method.
        path: The URL path, e.g. ``/v1/chat``.
        headers: The request headers (case-insensitive mapping).
        body: The parsed JSON body, or None when absent or not JSON.
        received_at: ``time.monotonic()`` when the request reached the handler.
        fault: The fault applied to this request, or None.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    received_at: float
    fault: str | None


# --------------------------------------------------------------------------- validation


def _err(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def _check_int(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, int) and not isinstance(value, bool):
        if name == "max_tokens" and value < 0:
            return [
                _err(
                    ["body", name],
                    "Input should be greater than or equal to 0",
                    "greater_than_equal",
                )
            ]
        return []
    return [_err(["body", name], "Input should be a valid integer", "int_type")]


def _check_number(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return []
    return [_err(["body", name], "Input should be a valid number", "float_type")]


def _check_bool(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, bool):
        return []
    return [_err(["body", name], "Input should be a valid boolean", "bool_type")]


def _check_stop(name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return [_err(["body", name], "Input should be a valid list", "list_type")]
    return [
        _err(["body", name, i], "Input should be a valid string", "string_type")
        for i, item in enumerate(value)
        if not isinstance(item, str)
    ]


def _check_tools(name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return [_err(["body", name], "Input should be a valid list", "list_type")]
    errors: list[dict[str, Any]] = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            errors.append(
                _err(
                    ["body", name, i],
                    "Input should be a valid dictionary or object to extract fields from",
                    "model_attributes_type",
                )
            )
        elif "name" not in tool:
            errors.append(_err(["body", name, i, "name"], "Field required", "missing"))
        elif not isinstance(tool["name"], str):
            errors.append(
                _err(["body", name, i, "name"], "Input should be a valid string", "string_type")
            )
    return errors


def _check_tool_choice(name: str, value: Any) -> list[dict[str, Any]]:
    if value in _TOOL_CHOICES:
        return []
    return [_err(["body", name], "Input should be 'auto', 'none' or 'tool'", "literal_error")]


_FIELD_CHECKS: Final[Mapping[str, Callable[[str, Any], list[dict[str, Any]]]]] = {
    "max_tokens": _check_int,
    "top_k": _check_int,
    "seed": _check_int,
    "temperature": _check_number,
    "top_p": _check_number,
    "presence_penalty": _check_number,
    "frequency_penalty": _check_number,
    "stream": _check_bool,
    "use_search_engine": _check_bool,
    "stop": _check_stop,
    "tools": _check_tools,
    "tool_choice": _check_tool_choice,
}

_NOT_AN_OBJECT: Final = "Input should be a valid dictionary or object to extract fields from"


def _validate_message(index: int, message: Any) -> list[dict[str, Any]]:
    loc: list[str | int] = ["body", "messages", index]
    if not isinstance(message, dict):
        return [_err(loc, _NOT_AN_OBJECT, "model_attributes_type")]
    errors: list[dict[str, Any]] = []
    role = message.get("role")
    if role is None:
        errors.append(_err([*loc, "role"], "Field required", "missing"))
    elif role not in _ROLES:
        errors.append(
            _err(
                [*loc, "role"],
                "Input should be 'user', 'assistant', 'system' or 'tool_output'",
                "literal_error",
            )
        )
    content = message.get("content")
    if isinstance(content, list):
        errors.extend(
            _err([*loc, "content", i], _NOT_AN_OBJECT, "model_attributes_type")
            for i, part in enumerate(content)
            if not isinstance(part, dict)
        )
    elif content is not None and not isinstance(content, str):
        errors.append(
            _err(
                [*loc, "content"],
                "Input should be a valid string or a list of content parts",
                "union_type",
            )
        )
    return errors


def _validate(body: Any) -> list[dict[str, Any]]:
    """Check a chat request body the way the real (FastAPI) server does; [] when valid."""
    if not isinstance(body, dict):
        return [_err(["body"], _NOT_AN_OBJECT, "model_attributes_type")]
    errors: list[dict[str, Any]] = []
    if "model" not in body:
        errors.append(_err(["body", "model"], "Field required", "missing"))
    elif not isinstance(body["model"], str):
        errors.append(_err(["body", "model"], "Input should be a valid string", "string_type"))
    messages = body.get("messages")
    if messages is None:
        errors.append(_err(["body", "messages"], "Field required", "missing"))
    elif not isinstance(messages, list):
        errors.append(_err(["body", "messages"], "Input should be a valid list", "list_type"))
    elif not messages:
        errors.append(
            _err(
                ["body", "messages"],
                "List should have at least 1 item after validation, not 0",
                "too_short",
            )
        )
    else:
        for i, message in enumerate(messages):
            if type(message) is dict and message.get("role") in _ROLES:
                content = message.get("content")
                if content is None or type(content) is str:
                    continue  # the common case, checked without building anything
            errors.extend(_validate_message(i, message))
    # Only the fields actually present are checked; unknown fields are ignored.
    for key, value in body.items():
        check = _FIELD_CHECKS.get(key)
        if check is not None and value is not None:
            errors.extend(check(key, value))
    return errors


# --------------------------------------------------------------------------- replies


def _text_of(content: Any) -> str:
    """Return the text of a message's content: the string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if text is None:
                    text = part.get("output")  # tool_output parts
                if isinstance(text, str):
                    texts.append(text)
        return "".join(texts)
    return ""


def _count_input_tokens(messages: list[Any]) -> int:
    total = 0
    for message in messages:
        if isinstance(message, dict):
            total += len(_text_of(message.get("content")).split())
    return max(total, 1)


@dataclass(frozen=True, slots=True)
class _Reply:
    text: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    tool_calls: list[dict[str, Any]] | None = None


def _last_text(body: Any) -> str:
    """Leniently return the text of the last message (for directives and canned replies)."""
    if isinstance(body, dict):
        messages = body.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            return _text_of(messages[-1].get("content"))
    return ""


def _make_reply(body: dict[str, Any], call_id: Callable[[], str]) -> _Reply:
    """Compute the deterministic reply to a validated chat request body."""
    messages: list[dict[str, Any]] = body["messages"]
    last = messages[-1]
    input_tokens = _count_input_tokens(messages)
    tools = body.get("tools")
    if tools and body.get("tool_choice") == "tool":
        call = {"id": call_id(), "name": tools[0]["name"], "parameters": {}}
        return _Reply("", "stop", input_tokens, 0, [call])

    text = _text_of(last.get("content"))
    if last.get("role") == "assistant":
        if text.lstrip().startswith("```json"):
            reply = _JSON_PREFILL_CONTINUATION
            if text.endswith("\n"):  # the prefill already ended the line
                reply = reply.lstrip("\n")
        else:
            reply = _PLAIN_PREFILL_CONTINUATION
    else:
        reply = "Mock reply to: " + text

    finish_reason = "stop"
    stop = body.get("stop")
    if stop:
        cut = min((i for s in stop if s and (i := reply.find(s)) >= 0), default=-1)
        if cut >= 0:
            reply = reply[:cut]
    output_tokens = len(reply.split())
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and output_tokens > max_tokens:
        if max_tokens <= 0:
            reply = ""
        else:
            ends = [m.end() for m in itertools.islice(_WORD_RE.finditer(reply), max_tokens)]
            reply = reply[: ends[-1]]
        output_tokens = max_tokens if max_tokens > 0 else 0
        finish_reason = "length"
    return _Reply(reply, finish_reason, input_tokens, output_tokens)


def _split_pieces(text: str, chunks: int | None) -> list[str]:
    """Split text into stream pieces whose concatenation is exactly the text.

    With ``chunks`` None there is one piece per word (each keeps its trailing whitespace);
    otherwise exactly ``chunks`` pieces, on word boundaries when there are enough words.
    """
    starts = [m.start() for m in _WORD_RE.finditer(text)]
    words = len(starts)
    if chunks is None and not words:
        return [text]
    if chunks is None or chunks == words:
        bounds = [0, *starts[1:], len(text)]
    elif chunks < words:
        # Group the words into `chunks` contiguous runs of near-equal size.
        bounds = [0, *(starts[(i * words) // chunks] for i in range(1, chunks)), len(text)]
    else:
        # More pieces wanted than words: split on characters (pieces may be empty).
        length = len(text)
        bounds = [(i * length) // chunks for i in range(chunks)] + [length]
    return [text[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


# --------------------------------------------------------------------------- server


class MockRekaServer:
    """A local, deterministic Reka Chat API server with injectable faults.

    Use it as ``async with MockRekaServer() as server:`` and point a client at
    ``server.base_url``; from synchronous code use ``with MockRekaServer.in_thread() as
    server:``. Every request is recorded in `requests` (unless ``record_requests`` is
    False) together with the fault it suffered.

    Args:
        api_key: The key ``X-Api-Key`` must carry; None accepts any non-empty key.
        host: The interface to bind.
        port: The port to bind; 0 picks a free one (see `port`).
        latency_s: Delay before the response headers of every request.
        chunk_latency_s: Delay between server-sent events in streams.
        stream_chunks: Content events per stream; None gives one per word.
        fault_rate: Probability that a request suffers a random fault from ``fault_kinds``.
        fault_kinds: The faults drawn at random (names from `FAULTS`).
        seed: Seed of the random fault selection, for reproducible runs.
        retry_after_s: The delay advertised by ``rate_limit`` 429s.
        slow_first_byte_s: The delay applied by the ``slow_first_byte`` fault.
        rpm_limit: When set, a fixed one-minute window limiter answering rate-limit 429s.
        record_requests: Whether to keep every request in `requests`.
        sse_done: Append ``data: [DONE]`` after the last event of a stream.
        sse_crlf: Use CRLF line endings in streams.
        sse_extras: Add ``event:``, ``id:`` and comment lines to each event and spread its
            JSON over several ``data:`` lines.
        models: The model ids served by ``GET /v1/models`` and accepted by ``POST /v1/chat``.

    Raises:
        ValueError: An option is out of range or names an unknown fault.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        chunk_latency_s: float = 0.0,
        stream_chunks: int | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = DEFAULT_FAULT_KINDS,
        seed: int = 0,
        retry_after_s: float = 1.0,
        slow_first_byte_s: float = 30.0,
        rpm_limit: int | None = None,
        record_requests: bool = True,
        sse_done: bool = False,
        sse_crlf: bool = False,
        sse_extras: bool = False,
        models: Sequence[str] = (
            "reka-core",
            "reka-flash",
            "reka-edge",
            "reka-core-20240501",
            "reka-flash-20240904",
        ),
    ) -> None:
        unknown = sorted(set(fault_kinds) - FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {unknown}; known: {sorted(FAULTS)}")
        if fault_rate > 0 and not fault_kinds:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        if stream_chunks is not None and stream_chunks < 1:
            raise ValueError("stream_chunks must be at least 1")
        if rpm_limit is not None and rpm_limit < 1:
            raise ValueError("rpm_limit must be at least 1")
        if latency_s < 0 or chunk_latency_s < 0 or retry_after_s < 0 or slow_first_byte_s < 0:
            raise ValueError("delays must not be negative")

        self._api_key = api_key
        self._host = host
        self._requested_port = port
        self._latency_s = float(latency_s)
        self._chunk_latency_s = float(chunk_latency_s)
        self._stream_chunks = stream_chunks
        self._fault_rate = float(fault_rate)
        self._fault_kinds = tuple(fault_kinds)
        self._rng = random.Random(seed)
        self._retry_after_s = float(retry_after_s)
        self._slow_first_byte_s = float(slow_first_byte_s)
        self._record = record_requests
        self._sse_done = sse_done
        self._sse_extras = sse_extras
        self._nl = b"\r\n" if sse_crlf else b"\n"
        self._models = frozenset(models)
        self._models_body = _dumps([{"id": m} for m in models])

        self.requests: list[RecordedRequest] = []
        """Every request received, oldest first (when ``record_requests``)."""
        self.in_flight = 0
        """Requests being handled right now, open streams included."""
        self.max_in_flight = 0
        """The high-water mark of `in_flight` since start or `reset_stats`."""

        self._injected: collections.deque[str] = collections.deque()
        self._directive_counts: dict[str, int] = {}
        tag = os.urandom(10).hex()
        self._request_ids = itertools.count(1)
        self._request_id_prefix = f"req_{tag[:8]}"
        self._chat_ids = itertools.count(1)
        self._chat_id_prefix = f"{tag[:8]}-{tag[8:12]}-4{tag[12:15]}-8{tag[15:18]}-"
        self._call_ids = itertools.count(1)

        # Fixed-window accounting behind the x-ratelimit-* headers (and rpm_limit).
        self._limit = rpm_limit if rpm_limit is not None else _NOMINAL_RPM
        self._limit_str = str(self._limit)
        self._window_end = 0.0
        self._window_end_str = "0"
        self._window_count = 0

        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._app = web.Application(client_max_size=64 * 1024 * 1024)
        self._app.router.add_post("/v1/chat", self._handle_chat)
        self._app.router.add_get("/v1/models", self._handle_models)
        self._app.router.add_route("*", "/{tail:.*}", self._handle_unknown)

    # ---------------------------------------------------------------- public surface

    @property
    def app(self) -> web.Application:
        """The ``aiohttp.web`` application behind the server.

        Returns:
            The application, e.g. to run it under ``aiohttp.test_utils.TestServer``.
        """
        return self._app

    @property
    def port(self) -> int:
        """The bound TCP port.

        Returns:
            The port number.

        Raises:
            RuntimeError: The server has not been started.
        """
        if self._port is None:
            raise RuntimeError("MockRekaServer is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. ``http://127.0.0.1:8000/v1``.

        Returns:
            The base URL.

        Raises:
            RuntimeError: The server has not been started.
        """
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

    def reset_stats(self) -> None:
        """Forget recorded requests and restart `max_in_flight` from the current `in_flight`."""
        self.requests.clear()
        self.max_in_flight = self.in_flight

    def inject(self, *faults: str) -> None:
        """Queue faults: each following API request takes the oldest one and suffers it.

        Args:
            *faults: Fault names from `FAULTS`.

        Raises:
            ValueError: A name is not a known fault.
        """
        unknown = sorted(set(faults) - FAULTS)
        if unknown:
            raise ValueError(f"unknown faults: {unknown}; known: {sorted(FAULTS)}")
        self._injected.extend(faults)

    def set_latency(
        self, latency_s: float | None = None, chunk_latency_s: float | None = None
    ) -> None:
        """Change the response latency and/or the delay between stream events.

        Args:
            latency_s: New delay before response headers; None keeps the current one.
            chunk_latency_s: New delay between SSE events; None keeps the current one.
        """
        if latency_s is not None:
            self._latency_s = float(latency_s)
        if chunk_latency_s is not None:
            self._chunk_latency_s = float(chunk_latency_s)

    async def start(self) -> None:
        """Bind the socket and start serving.

        Raises:
            RuntimeError: The server is already running.
        """
        if self._runner is not None:
            raise RuntimeError("MockRekaServer is already running")
        # handler_cancellation: a client hanging up cancels its handler (slow faults
        # must not outlive their client); a short shutdown_timeout keeps close() quick.
        runner = web.AppRunner(
            self._app, access_log=None, handler_cancellation=True, shutdown_timeout=0.25
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving and close every connection; calling it twice is harmless."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockRekaServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @classmethod
    def in_thread(cls, **kwargs: Any) -> contextlib.AbstractContextManager[MockRekaServer]:
        """Run a server on its own event loop in a daemon thread, for synchronous code.

        Args:
            **kwargs: Keyword arguments for `MockRekaServer`.

        Returns:
            A context manager yielding the running server; on exit it closes the server,
            stops the loop and joins the thread.
        """
        return _serve_in_thread(cls, kwargs)

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not running"
        return (
            f"<MockRekaServer {where} in_flight={self.in_flight} "
            f"max_in_flight={self.max_in_flight} requests={len(self.requests)}>"
        )

    # ---------------------------------------------------------------- bookkeeping

    def _headers(self, request_id: str) -> dict[str, str]:
        return {
            "Content-Type": _JSON,
            "x-request-id": request_id,
            "x-ratelimit-limit": self._limit_str,
            "x-ratelimit-remaining": str(max(self._limit - self._window_count, 0)),
            "x-ratelimit-reset": self._window_end_str,
        }

    def _roll_window(self, now: float) -> None:
        if now >= self._window_end:
            self._window_end = now + _WINDOW_S
            self._window_end_str = f"{self._window_end:.3f}"
            self._window_count = 0

    def _select_fault(self, text: str) -> tuple[str | None, float | None]:
        """Pick this request's fault (first match wins) and any latency override."""
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
                seen = self._directive_counts.get(directive, 0) + 1
                self._directive_counts[directive] = seen
                if seen <= limit:
                    fault = name
        if fault is None and self._injected:
            with contextlib.suppress(IndexError):  # another thread may have emptied it
                fault = self._injected.popleft()
        if fault is None and self._fault_rate > 0.0 and self._rng.random() < self._fault_rate:
            fault = self._rng.choice(self._fault_kinds)
        if fault is None:
            if self._window_count >= self._limit:
                fault = "rpm_limit"  # internal name: a rate_limit answered by the limiter
            else:
                self._window_count += 1
        return fault, latency

    # ---------------------------------------------------------------- handlers

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        try:
            received_at = time.monotonic()
            request_id = self._request_id_prefix + format(next(self._request_ids), "08x")
            raw = await request.read()
            body: Any
            try:
                body = _loads(raw) if raw else None
            except ValueError:
                body = None
                invalid_json = True
            else:
                invalid_json = False
            self._roll_window(time.time())
            fault, latency = self._select_fault(_last_text(body))
            if self._record:
                self.requests.append(
                    RecordedRequest(
                        request.method,
                        request.path,
                        request.headers,
                        body,
                        received_at,
                        "rate_limit" if fault == "rpm_limit" else fault,
                    )
                )
            if latency is None:
                latency = self._latency_s
            if latency > 0.0:
                await asyncio.sleep(latency)
            if fault == "slow_first_byte":
                await asyncio.sleep(self._slow_first_byte_s)
                fault = None
            if fault is not None:
                return await self._chat_fault(request, request_id, fault, body)

            headers = self._headers(request_id)
            if not self._authorized(request):
                return web.Response(status=401, body=_AUTH_BODY, headers=headers)
            if raw and invalid_json:
                detail = [_err(["body", 0], "JSON decode error", "json_invalid")]
                return web.Response(status=422, body=_dumps({"detail": detail}), headers=headers)
            if body is None:
                detail = [_err(["body"], "Field required", "missing")]
                return web.Response(status=422, body=_dumps({"detail": detail}), headers=headers)
            errors = _validate(body)
            if errors:
                return web.Response(status=422, body=_dumps({"detail": errors}), headers=headers)
            model: str = body["model"]
            if model not in self._models:
                error = _error_body("not_found_error", f"Model '{model}' not found")
                return web.Response(status=404, body=error, headers=headers)

            reply = _make_reply(body, self._next_call_id)
            if body.get("stream") is True:
                events = self._stream_events(model, reply)
                return await self._send_stream(request, headers, events, len(events))
            return web.Response(body=self._response_body(model, reply), headers=headers)
        finally:
            self.in_flight -= 1

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        try:
            received_at = time.monotonic()
            request_id = self._request_id_prefix + format(next(self._request_ids), "08x")
            self._roll_window(time.time())
            fault, _ = self._select_fault("")
            if self._record:
                self.requests.append(
                    RecordedRequest(
                        request.method,
                        request.path,
                        request.headers,
                        None,
                        received_at,
                        "rate_limit" if fault == "rpm_limit" else fault,
                    )
                )
            if self._latency_s > 0.0:
                await asyncio.sleep(self._latency_s)
            if fault == "slow_first_byte":
                await asyncio.sleep(self._slow_first_byte_s)
                fault = None
            if fault is not None:
                return await self._fault_response(
                    request, request_id, fault, lambda: self._models_body, None
                )
            headers = self._headers(request_id)
            if not self._authorized(request):
                return web.Response(status=401, body=_AUTH_BODY, headers=headers)
            return web.Response(body=self._models_body, headers=headers)
        finally:
            self.in_flight -= 1

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        request_id = self._request_id_prefix + format(next(self._request_ids), "08x")
        if self._record:
            body: Any = None
            if request.can_read_body:
                with contextlib.suppress(ValueError):
                    body = _loads(await request.read())
            self.requests.append(
                RecordedRequest(
                    request.method, request.path, request.headers, body, time.monotonic(), None
                )
            )
        self._roll_window(time.time())
        headers = self._headers(request_id)
        if request.path in ("/v1/chat", "/v1/models"):
            error = _error_body("method_not_allowed", f"Method {request.method} not allowed")
            return web.Response(status=405, body=error, headers=headers)
        error = _error_body("not_found_error", f"Path '{request.path}' not found")
        return web.Response(status=404, body=error, headers=headers)

    def _authorized(self, request: web.Request) -> bool:
        key = request.headers.get("X-Api-Key")
        if self._api_key is None:
            return bool(key)
        return key == self._api_key

    def _next_call_id(self) -> str:
        return f"call_{next(self._call_ids)}"

    # ---------------------------------------------------------------- bodies & streams

    def _response_body(self, model: str, reply: _Reply) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls is not None:
            message["tool_calls"] = reply.tool_calls
        return _dumps(
            {
                "id": self._chat_id_prefix + format(next(self._chat_ids), "012x"),
                "model": model,
                "responses": [{"finish_reason": reply.finish_reason, "message": message}],
                "usage": {
                    "input_tokens": reply.input_tokens,
                    "output_tokens": reply.output_tokens,
                },
            }
        )

    def _stream_events(self, model: str, reply: _Reply) -> list[bytes]:
        """Return the JSON payload of every event of a stream, last one finished."""
        chat_id = self._chat_id_prefix + format(next(self._chat_ids), "012x")
        if reply.tool_calls is not None:
            chunk = {"role": "assistant", "content": "", "tool_calls": reply.tool_calls}
            usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
            item = {"finish_reason": reply.finish_reason, "chunk": chunk}
            return [_dumps({"id": chat_id, "model": model, "responses": [item], "usage": usage})]
        text = reply.text
        pieces = _split_pieces(text, self._stream_chunks)
        starts = [m.start() for m in _WORD_RE.finditer(text)]
        payloads: list[bytes] = []
        cumulative = 0
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            cumulative += len(piece)
            so_far = text[:cumulative]
            tokens = reply.output_tokens if i == last else bisect.bisect_left(starts, cumulative)
            payloads.append(
                _dumps(
                    {
                        "id": chat_id,
                        "model": model,
                        "responses": [
                            {
                                "finish_reason": reply.finish_reason if i == last else None,
                                "chunk": {"role": "assistant", "content": so_far},
                            }
                        ],
                        "usage": {"input_tokens": reply.input_tokens, "output_tokens": tokens},
                    }
                )
            )
        return payloads

    def _frame(self, payload: bytes, index: int, event: bytes = b"") -> bytes:
        """Frame one JSON payload as a server-sent event."""
        nl = self._nl
        if not self._sse_extras:
            head = b"event: " + event + nl if event else b""
            return head + b"data: " + payload + nl + nl
        # Extras: a comment, an event name, an id, and the JSON spread over data: lines.
        lines = json.dumps(_loads(payload), indent=1, ensure_ascii=False).split("\n")
        data = b"".join(b"data: " + line.encode() + nl for line in lines)
        name = event or b"message"
        return b": mock-reka" + nl + b"event: " + name + nl + b"id: %d" % index + nl + data + nl

    async def _send_stream(
        self,
        request: web.Request,
        headers: dict[str, str],
        payloads: list[bytes],
        count: int,
        *,
        error_event: bool = False,
        cut: bool = False,
    ) -> web.StreamResponse:
        """Send the first ``count`` events, then end, fail or cut the stream."""
        headers["Content-Type"] = "text/event-stream"
        headers["Cache-Control"] = "no-cache"
        response = web.StreamResponse(headers=headers)
        frames = [self._frame(p, i + 1) for i, p in enumerate(payloads[:count])]
        if error_event:
            frames.append(self._frame(_STREAM_ERROR_BODY, count + 1, b"error"))
        elif not cut and self._sse_done:
            frames.append(b"data: [DONE]" + self._nl + self._nl)
        try:
            await response.prepare(request)
            delay = self._chunk_latency_s
            if delay > 0.0:
                for i, frame in enumerate(frames):
                    if i:
                        await asyncio.sleep(delay)
                    await response.write(frame)
            elif frames:
                await response.write(b"".join(frames))
            if cut:
                _close_transport(request)
            else:
                await response.write_eof()
        except ConnectionError:
            pass  # the client went away; nothing left to tell it
        return response

    async def _chat_fault(
        self, request: web.Request, request_id: str, fault: str, body: Any
    ) -> web.StreamResponse:
        """Answer a chat request with a fault, faking the reply a fault may corrupt."""
        valid = not _validate(body)
        model = body["model"] if valid else "reka-core"
        stream = valid and body.get("stream") is True

        def reply() -> _Reply:
            if valid and body["model"] in self._models:
                return _make_reply(body, self._next_call_id)
            text = "Mock reply to: " + _last_text(body)
            return _Reply(text, "stop", 1, len(text.split()))

        def json_body() -> bytes:
            return self._response_body(model, reply())

        def stream_events() -> list[bytes]:
            return self._stream_events(model, reply())

        return await self._fault_response(
            request, request_id, fault, json_body, stream_events if stream else None
        )

    async def _fault_response(
        self,
        request: web.Request,
        request_id: str,
        fault: str,
        json_body: Callable[[], bytes],
        stream_events: Callable[[], list[bytes]] | None,
    ) -> web.StreamResponse:
        """Build the response for a fault (``stream_events`` is None for non-streams)."""
        if fault == "drop":
            transport = request.transport
            if transport is not None:
                transport.abort()
            # aiohttp's attempt to send this finds the transport closed and gives up.
            return web.Response(status=500)
        headers = self._headers(request_id)
        if fault == "rate_limit" or fault == "rpm_limit":
            now = time.time()
            if fault == "rpm_limit":
                delay = max(self._window_end - now, 0.0)
                reset = self._window_end
            else:
                delay = self._retry_after_s
                reset = now + delay
            headers["retry-after"] = _format_seconds(round(delay, 3))
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = f"{reset:.3f}"
            return web.Response(status=429, body=_RATE_LIMIT_BODY, headers=headers)
        if fault == "credits":
            return web.Response(status=429, body=_CREDITS_BODY, headers=headers)
        if fault == "error_event":
            if stream_events is None:
                fault = "500"
            else:
                events = stream_events()
                count = min(2, len(events) - 1)
                return await self._send_stream(request, headers, events, count, error_event=True)
        status_fault = _STATUS_FAULT_BODIES.get(fault)
        if status_fault is not None:
            return web.Response(status=status_fault[0], body=status_fault[1], headers=headers)
        if fault == "422":
            return web.Response(status=422, body=_422_FAULT_BODY, headers=headers)
        if fault == "html":
            headers["Content-Type"] = "text/html"
            return web.Response(status=502, body=_HTML_BODY, headers=headers)
        if fault == "wrong_shape":
            return web.Response(body=_WRONG_SHAPE_BODY, headers=headers)
        if fault == "truncated_json":
            full = json_body()
            return web.Response(body=full[: len(full) // 2], headers=headers)
        if fault == "cut":
            if stream_events is not None:
                events = stream_events()
                return await self._send_stream(request, headers, events, len(events) // 2, cut=True)
            full = json_body()
            response = web.StreamResponse(headers=headers)
            response.content_length = len(full)
            try:
                await response.prepare(request)
                await response.write(full[: len(full) // 2])
                _close_transport(request)
            except ConnectionError:
                pass
            return response
        raise AssertionError(f"unhandled fault {fault!r}")  # pragma: no cover


def _close_transport(request: web.Request) -> None:
    """Close the connection after flushing what was written (a cut mid-response)."""
    transport = request.transport
    if transport is not None:
        transport.close()


# --------------------------------------------------------------------------- threads


@contextlib.contextmanager
def _serve_in_thread(
    cls: type[MockRekaServer], kwargs: Mapping[str, Any]
) -> Iterator[MockRekaServer]:
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    thread = threading.Thread(target=run, name="MockRekaServer", daemon=True)
    thread.start()
    try:

        async def create() -> MockRekaServer:
            server = cls(**kwargs)
            await server.start()
            return server

        server = asyncio.run_coroutine_threadsafe(create(), loop).result()
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


# --------------------------------------------------------------------------- subprocess

#: The line ``python -m reka_async.testing`` prints on stdout once it serves, before the URL.
_ANNOUNCE_PREFIX: Final = "Mock Reka server listening on "

_P = TypeVar("_P", bound="MockServerProcess")


class MockServerProcess:
    """The standalone mock server, ``python -m reka_async.testing``, in a subprocess.

    For code that cannot share an event loop or a process with `MockRekaServer`: CLI tests,
    worker processes (Ray, multiprocessing), benchmarks. It runs
    ``[*prefix, sys.executable, "-m", "reka_async.testing", "--port", "0", *args]``, waits
    for the announce line and reads the base URL from it::

        with MockServerProcess("--latency-ms", "20", "--api-key", "k") as server:
            run_my_code(base_url=server.base_url)

    Its stdout is read until EOF by a thread, and so is its stderr when captured. On exit
    the process is terminated (killed if it does not stop within ``stop_timeout``) and the
    reader threads, which close the pipes, are joined.

    Args:
        *args: Extra command-line options of ``python -m reka_async.testing``.
        prefix: Words put before the command, e.g. ``["taskset", "-c", "0"]``.
        env: The environment of the process (default: this process's).
        cwd: The working directory of the process (default: this process's).
        stderr: Where the server's stderr goes: `subprocess.PIPE` (the default) captures
            it into `output`, a path names a log file (created, and closed on exit), and
            anything else `subprocess.Popen` accepts (`subprocess.DEVNULL`, a file) is
            passed through.
        startup_timeout: Seconds to wait for the announce line.
        stop_timeout: Seconds to wait after SIGTERM before killing the process, and at
            most for the reader threads to finish.
    """

    def __init__(
        self,
        *args: str,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stderr: int | IO[Any] | str | os.PathLike[str] | None = subprocess.PIPE,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.args: tuple[str, ...] = args
        self.prefix: tuple[str, ...] = tuple(prefix)
        self.env = env
        self.cwd = cwd
        self.stderr = stderr
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        #: The URL the server announced (``http://127.0.0.1:PORT/v1``); empty until started.
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._stopped = False
        self._log: IO[str] | None = None
        self._threads: list[threading.Thread] = []
        self._first_line: str | None = None
        self._announced = threading.Event()
        self._stdout: list[str] = []
        self._stderr: list[str] = []

    def command(self) -> list[str]:
        """The command line that starts the server."""
        cmd = [sys.executable, "-m", "reka_async.testing", "--port", "0", *self.args]
        return [*self.prefix, *cmd]

    @property
    def process(self) -> subprocess.Popen[str]:
        """The server's process (still available after `stop`, e.g. for ``returncode``).

        Raises:
            RuntimeError: When the server has not been started.
        """
        if self._process is None:
            raise RuntimeError("MockServerProcess has not been started")
        return self._process

    @property
    def output(self) -> str:
        """What the server printed: stdout after the announce line, then captured stderr.

        Stderr is captured only with ``stderr=subprocess.PIPE``. Complete once `stop` has
        returned.
        """
        return "".join(self._stdout) + "".join(self._stderr)

    def start(self) -> str:
        """Start the server and wait for its announce line.

        Returns:
            The base URL (also in `base_url`).

        Raises:
            RuntimeError: When the server was started before, or when it exits or prints
                anything else before announcing itself or stays silent for
                ``startup_timeout`` seconds (the process is stopped first; the message
                holds its exit status and captured stderr).
        """
        if self._process is not None:
            raise RuntimeError("MockServerProcess can be started only once")
        cmd = self.command()
        stderr = self.stderr
        if isinstance(stderr, (str, os.PathLike)):
            stderr = self._log = open(stderr, "w", encoding="utf-8")  # noqa: SIM115
        try:
            self._process = process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
                errors="replace",
                cwd=self.cwd,
                env=self.env,
            )
        except BaseException:
            self._close_log()
            raise
        for read, stream in (
            (self._read_stdout, process.stdout),
            (self._read_stderr, process.stderr),
        ):
            if stream is not None:
                thread = threading.Thread(target=read, args=(stream,), daemon=True)
                thread.start()
                self._threads.append(thread)
        announced = self._announced.wait(self.startup_timeout)
        line = self._first_line or ""
        if not line.startswith(_ANNOUNCE_PREFIX):
            self.stop()
            if not announced:
                what = f"no announce line within {self.startup_timeout:g} s"
            else:
                what = f"printed {line!r}, exit status {process.returncode}"
            message = f"mock server did not start: {what} (command: {cmd})"
            captured = "".join(self._stderr).strip()
            raise RuntimeError(f"{message}\nstderr:\n{captured}" if captured else message)
        self.base_url = line[len(_ANNOUNCE_PREFIX) :].strip()
        return self.base_url

    def _read_stdout(self, stream: IO[str]) -> None:
        # Reading on until EOF: the server must never block on a full pipe.
        try:
            self._first_line = stream.readline()
            self._announced.set()
            for line in stream:
                self._stdout.append(line)
        except (OSError, ValueError):  # pragma: no cover - the pipe closed under us
            pass
        finally:
            self._announced.set()
            stream.close()

    def _read_stderr(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._stderr.append(line)
        except (OSError, ValueError):  # pragma: no cover - the pipe closed under us
            pass
        finally:
            stream.close()

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``stop_timeout``); idempotent."""
        process = self._process
        if process is None or self._stopped:
            return
        self._stopped = True
        try:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            # Each reader closes its pipe at EOF, which comes once the process is gone (or,
            # when a grandchild still holds the pipe, later: not waited for past the timeout).
            deadline = time.monotonic() + self.stop_timeout
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            self._close_log()

    def _close_log(self) -> None:
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def __enter__(self: _P) -> _P:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._process is not None and not self._stopped else "stopped"
        return f"MockServerProcess({self.base_url or 'not started'}, {state})"


# --------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reka_async.testing",
        description="Serve a mock Reka Chat API (deterministic replies, injectable faults).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (0: any free)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before headers")
    parser.add_argument(
        "--chunk-latency-ms", type=float, default=0.0, help="delay between stream events"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="probability of a random fault"
    )
    parser.add_argument(
        "--fault-kinds",
        default=",".join(DEFAULT_FAULT_KINDS),
        help=f"comma-separated faults to draw from (known: {','.join(sorted(FAULTS))})",
    )
    parser.add_argument(
        "--api-key", default=None, help="the only key accepted (default: any non-empty key)"
    )
    parser.add_argument(
        "--stream-chunks", type=int, default=None, help="events per stream (default: per word)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault selection")
    parser.add_argument("--rpm-limit", type=int, default=None, help="requests per minute")
    parser.add_argument(
        "--retry-after", type=float, default=1.0, help="retry-after of rate-limit 429s (s)"
    )
    parser.add_argument("--sse-done", action="store_true", help="end streams with [DONE]")
    parser.add_argument(
        "--no-uvloop",
        dest="uvloop",
        action="store_false",
        help="use the default asyncio loop even when uvloop is installed",
    )
    return parser.parse_args(argv)


def _new_event_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    """Return a uvloop loop when asked for and installed (faster serving), else asyncio's."""
    if use_uvloop:
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


async def _serve(args: argparse.Namespace, announce: Callable[[str], None]) -> None:
    server = MockRekaServer(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        latency_s=args.latency_ms / 1000.0,
        chunk_latency_s=args.chunk_latency_ms / 1000.0,
        stream_chunks=args.stream_chunks,
        fault_rate=args.fault_rate,
        fault_kinds=[k.strip() for k in args.fault_kinds.split(",") if k.strip()],
        seed=args.seed,
        retry_after_s=args.retry_after,
        rpm_limit=args.rpm_limit,
        # A long-running server must not grow without bound.
        record_requests=False,
        sse_done=args.sse_done,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    async with server:
        announce(server.base_url)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mock server until SIGINT or SIGTERM.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 after a clean shutdown, 1 when the address cannot be bound,
        2 for invalid options.
    """
    args = _parse_args(argv)

    def announce(base_url: str) -> None:
        print(f"{_ANNOUNCE_PREFIX}{base_url}", flush=True)

    loop = _new_event_loop(args.uvloop)
    try:
        loop.run_until_complete(_serve(args, announce))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - signal raced the handler install
        pass
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
