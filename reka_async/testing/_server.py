"""`MockRekaServer`: the ``aiohttp.web`` application, its handlers and its lifecycle."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from ._bookkeeping import Ids, RateWindow, RecordedRequest, record
from ._fault_responses import fault_response
from ._faults import AUTH_BODY, DEFAULT_FAULT_KINDS, check_faults, error_body, parse_directives
from ._json import dumps, loads
from ._replies import Reply, fallback_reply, last_text, make_reply, response_body, stream_events
from ._sse import StreamWriter
from ._thread import serve_in_thread
from ._validation import detail_body, err, validate


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
        check_faults(fault_kinds, "fault kinds")
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
        self._stream_chunks = stream_chunks
        self._fault_rate = float(fault_rate)
        self._fault_kinds = tuple(fault_kinds)
        self._rng = random.Random(seed)
        self._retry_after_s = float(retry_after_s)
        self._slow_first_byte_s = float(slow_first_byte_s)
        self._record = record_requests
        self._writer = StreamWriter(
            chunk_latency_s=float(chunk_latency_s), done=sse_done, crlf=sse_crlf, extras=sse_extras
        )
        self._models = frozenset(models)
        self._models_body = dumps([{"id": m} for m in models])

        self.requests: list[RecordedRequest] = []
        """Every request received, oldest first (when ``record_requests``)."""
        self.in_flight = 0
        """Requests being handled right now, open streams included."""
        self.max_in_flight = 0
        """The high-water mark of `in_flight` since start or `reset_stats`."""

        self._injected: collections.deque[str] = collections.deque()
        self._directive_counts: dict[str, int] = {}
        self._ids = Ids()

        self._window = RateWindow(rpm_limit)

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
        check_faults(faults, "faults")
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
            self._writer.chunk_latency_s = float(chunk_latency_s)

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
        return serve_in_thread(cls, kwargs)

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not running"
        return (
            f"<MockRekaServer {where} in_flight={self.in_flight} "
            f"max_in_flight={self.max_in_flight} requests={len(self.requests)}>"
        )

    # ---------------------------------------------------------------- bookkeeping

    def _enter(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def _admit(
        self, request: web.Request, body: Any, received_at: float, text: str
    ) -> tuple[str | None, float | None]:
        """Pick this request's fault (first match wins) and any latency override; record it."""
        self._window.roll(time.time())
        fault, latency = parse_directives(text, self._directive_counts)
        if fault is None and self._injected:
            with contextlib.suppress(IndexError):  # another thread may have emptied it
                fault = self._injected.popleft()
        if fault is None and self._fault_rate > 0.0 and self._rng.random() < self._fault_rate:
            fault = self._rng.choice(self._fault_kinds)
        if fault is None and not self._window.admit():
            fault = "rpm_limit"  # internal name: a rate_limit answered by the limiter
        if self._record:
            recorded = "rate_limit" if fault == "rpm_limit" else fault
            self.requests.append(record(request, body, received_at, recorded))
        return fault, latency

    async def _wait(self, fault: str | None, latency: float | None) -> str | None:
        """Sleep the response latency (and a ``slow_first_byte``); return the fault left."""
        if latency is None:
            latency = self._latency_s
        if latency > 0.0:
            await asyncio.sleep(latency)
        if fault == "slow_first_byte":
            await asyncio.sleep(self._slow_first_byte_s)
            return None
        return fault

    def _authorized(self, request: web.Request) -> bool:
        key = request.headers.get("X-Api-Key")
        if self._api_key is None:
            return bool(key)
        return key == self._api_key

    # ---------------------------------------------------------------- handlers

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        self._enter()
        try:
            received_at = time.monotonic()
            request_id = self._ids.request_id()
            raw = await request.read()
            body: Any
            try:
                body = loads(raw) if raw else None
            except ValueError:
                body = None
                invalid_json = True
            else:
                invalid_json = False
            fault, latency = self._admit(request, body, received_at, last_text(body))
            fault = await self._wait(fault, latency)
            if fault is not None:
                return await self._chat_fault(request, request_id, fault, body)

            headers = self._window.headers(request_id)
            if not self._authorized(request):
                return web.Response(status=401, body=AUTH_BODY, headers=headers)
            if raw and invalid_json:
                errors = [err(["body", 0], "JSON decode error", "json_invalid")]
            elif body is None:
                errors = [err(["body"], "Field required", "missing")]
            else:
                errors = validate(body)
            if errors:
                return web.Response(status=422, body=detail_body(errors), headers=headers)
            model: str = body["model"]
            if model not in self._models:
                error = error_body("not_found_error", f"Model '{model}' not found")
                return web.Response(status=404, body=error, headers=headers)

            reply = make_reply(body, self._ids.call_id)
            if body.get("stream") is True:
                events = stream_events(self._ids.chat_id(), model, reply, self._stream_chunks)
                return await self._writer.send(request, headers, events, len(events))
            payload = response_body(self._ids.chat_id(), model, reply)
            return web.Response(body=payload, headers=headers)
        finally:
            self.in_flight -= 1

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        self._enter()
        try:
            received_at = time.monotonic()
            request_id = self._ids.request_id()
            fault, latency = self._admit(request, None, received_at, "")
            fault = await self._wait(fault, latency)
            if fault is not None:
                return await self._fault(request, request_id, fault, lambda: self._models_body)
            headers = self._window.headers(request_id)
            if not self._authorized(request):
                return web.Response(status=401, body=AUTH_BODY, headers=headers)
            return web.Response(body=self._models_body, headers=headers)
        finally:
            self.in_flight -= 1

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        request_id = self._ids.request_id()
        if self._record:
            body: Any = None
            if request.can_read_body:
                with contextlib.suppress(ValueError):
                    body = loads(await request.read())
            self.requests.append(record(request, body, time.monotonic(), None))
        self._window.roll(time.time())
        headers = self._window.headers(request_id)
        if request.path in ("/v1/chat", "/v1/models"):
            error = error_body("method_not_allowed", f"Method {request.method} not allowed")
            return web.Response(status=405, body=error, headers=headers)
        error = error_body("not_found_error", f"Path '{request.path}' not found")
        return web.Response(status=404, body=error, headers=headers)

    # ---------------------------------------------------------------- faults

    async def _chat_fault(
        self, request: web.Request, request_id: str, fault: str, body: Any
    ) -> web.StreamResponse:
        """Answer a chat request with a fault, faking the reply a fault may corrupt."""
        valid = not validate(body)
        model = body["model"] if valid else "reka-core"
        stream = valid and body.get("stream") is True

        def reply() -> Reply:
            if valid and body["model"] in self._models:
                return make_reply(body, self._ids.call_id)
            return fallback_reply(body)

        def json_body() -> bytes:
            return response_body(self._ids.chat_id(), model, reply())

        def events() -> list[bytes]:
            return stream_events(self._ids.chat_id(), model, reply(), self._stream_chunks)

        return await self._fault(request, request_id, fault, json_body, events if stream else None)

    async def _fault(
        self,
        request: web.Request,
        request_id: str,
        fault: str,
        json_body: Callable[[], bytes],
        events: Callable[[], list[bytes]] | None = None,
    ) -> web.StreamResponse:
        """Answer with a fault (``events`` is None for non-streams)."""
        return await fault_response(
            request,
            fault,
            self._window.headers(request_id),
            json_body,
            events,
            writer=self._writer,
            window_end=self._window.end,
            retry_after_s=self._retry_after_s,
        )
