"""`MockRekaServer`: the ``aiohttp.web`` application, its handlers and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final

from aiohttp import web

from ._billing import Billing
from ._bookkeeping import Ids, RecordedRequest, record
from ._catalogue import (
    MODELS_SHAPES,
    ModelsShape,
    accepted_models,
    listed_models,
    model_body,
    models_body,
    shape_for,
)
from ._fault_responses import fault_response
from ._faults import (
    AUTH_BODY,
    DEFAULT_FAULT_KINDS,
    METHOD_NOT_ALLOWED_BODY,
    RATE_LIMIT_BODY,
    FaultPicker,
    error_body,
)
from ._generation import GenerationModel, Generator
from ._json import loads
from ._limiters import Limiter, Limits, limiter_of, token_limiter_of
from ._native import Dialect, NativeDialect, NativeStream, fault_material
from ._openai import OpenAIDialect
from ._replies import Reply, last_text
from ._serving import Serving
from ._sse import StreamWriter
from ._thread import serve_in_thread
from ._validation import BodyTooDeep, detail_body, parse_body

_log = logging.getLogger("reka_async.testing")
#: The answer to a request body nested too deep to parse.
TOO_DEEP_BODY: Final = error_body(
    "invalid_request_error", "the JSON body is nested too deep to parse"
)

_CHAT: Final = "/v1/chat"
_COMPLETIONS: Final = "/v1/chat/completions"
_MODELS: Final = "/v1/models"


class MockRekaServer(Serving):
    """A local, deterministic Reka Chat API server with injectable faults.

    Use it as ``async with MockRekaServer() as server:`` and point a client at
    ``server.base_url``; from synchronous code use ``with MockRekaServer.in_thread() as
    server:``. Every request is recorded in `requests` (unless ``record_requests`` is
    False) together with the fault it suffered.

    Args:
        api_key: The key ``X-Api-Key`` or ``Authorization: Bearer`` must carry (either header,
            on every endpoint); None accepts any non-empty key.
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
        rate_limit: A fixed-window limiter of any window, e.g. ``"50/s"``, ``"600/min"`` or
            ``"10/5s"`` (instead of ``rpm_limit``); its ``x-ratelimit-*`` headers tell the
            truth about the window on every answer, and its 429s say the quota is spent.
        rate_limit_kind: The kind of limiter behind ``rate_limit`` or ``rpm_limit``:
            ``"fixed"`` (the default: windows aligned to the clock), ``"sliding"`` (at most N
            in any trailing window), ``"bucket"`` (a burst of N refilled continuously, headers
            in OpenAI's model) or ``"bare"`` (that bucket with no ``x-ratelimit-*`` headers,
            only ``retry-after`` on its 429s); see `_limiters`. It applies to
            ``token_limit`` too.
        token_limit: A limit of tokens per window, e.g. ``"5000/s"`` or ``"100000/min"``,
            of ``rate_limit_kind``: the usage billed (input and output tokens) is charged
            when each answer is billed, a chat request is admitted while a token is left,
            and the state goes out in OpenAI's ``x-ratelimit-*-tokens`` headers (none for
            ``bare``); see `_limiters`. None (the default): tokens are not limited.
        record_requests: Whether to keep every request in `requests`.
        sse_done: Append ``data: [DONE]`` after the last event of a stream.
        sse_crlf: Use CRLF line endings in streams.
        sse_extras: Add ``event:``, ``id:`` and comment lines to each event and spread its
            JSON over several ``data:`` lines.
        models: The model ids served by ``GET /v1/models`` (the same in every shape) and
            accepted by the chat endpoints; None (the default) lists the legacy ids and the
            current catalogue and accepts them all (see `_catalogue`).
            ``reka-flash-research`` is accepted on ``/v1/chat/completions`` only (a 400 on
            ``/v1/chat``). ``GET /v1/models/{id}``, an extra of the mock (the API documents
            only the listing), answers one listed model as an OpenAI ``Model`` object.
        models_shape: The body of ``GET /v1/models`` for every caller: ``"list"``
            (``[{"id": ...}]``), ``"openai"`` (``{"object": "list", "data": [...]}`` with
            names, prices and limits) or ``"strings"`` (a list of ids). None (the default)
            answers each caller in its SDK's shape: the OpenAI list to an ``Authorization:
            Bearer`` request (the ``openai`` package, LiteLLM; it wins when ``X-Api-Key`` is
            sent too), the ``"list"`` shape to one with ``X-Api-Key`` only (``reka-api``).
        native_stream: ``"cumulative"`` (the default: ``chunk.content`` is the text so
            far) or ``"delta"`` (each event's new text) in ``/v1/chat`` streams.
        native_stream_trailer: End ``/v1/chat`` streams with a usage-only event with
            empty ``responses`` after the finished one, then ``data: [DONE]``.
        reject_tool_role: Answer 500 on ``/v1/chat/completions`` to a message with
            ``role: "tool"`` or a ``tool_call_id``, as the real API reportedly does.
        ssl_context: Serve HTTPS with this server-side context (``base_url`` is then
            ``https://``); None serves plain HTTP.
        generation: A `GenerationModel`: answers are paced like an inference server's
            (time to first token, time per output token, capacity, jitter) and run to
            ``max_tokens``; see `generation`. None (the default): ``latency_s`` and
            ``chunk_latency_s`` alone.
        clock: The Unix time the rate-limit window reads; `time.time` unless a test
            must not depend on where in a clock minute it runs (see `window_start_clock`).
        billing: A `Billing`: ``usage`` counts the request's bytes and ``max_tokens``
            (plus any extra it is told to bill) instead of words; every answer's usage is
            kept in `billed`. None (the default): words.

    Raises:
        ValueError: An option is out of range or names an unknown fault.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
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
        rate_limit: str | None = None,
        rate_limit_kind: str = "fixed",
        token_limit: str | None = None,
        record_requests: bool = True,
        sse_done: bool = False,
        sse_crlf: bool = False,
        sse_extras: bool = False,
        models: Sequence[str] | None = None,
        models_shape: ModelsShape | None = None,
        native_stream: NativeStream = "cumulative",
        native_stream_trailer: bool = False,
        reject_tool_role: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        generation: GenerationModel | None = None,
        clock: Callable[[], float] = time.time,
        billing: Billing | None = None,
    ) -> None:
        self._faults = FaultPicker(rate=fault_rate, kinds=fault_kinds, seed=seed)
        if stream_chunks is not None and stream_chunks < 1:
            raise ValueError("stream_chunks must be at least 1")
        self._window = Limits(
            limiter_of(rpm_limit, rate_limit, rate_limit_kind, clock, token_limit=token_limit),
            token_limiter_of(token_limit, rate_limit_kind, clock)
            if token_limit is not None
            else None,
        )
        #: The limiter that refused a request and the limiters' headers then, by the
        #: request's id, until the 429 is answered a latency later.
        self._refused_state: dict[int, tuple[Limiter, dict[str, str]]] = {}
        if latency_s < 0 or chunk_latency_s < 0 or retry_after_s < 0 or slow_first_byte_s < 0:
            raise ValueError("delays must not be negative")

        super().__init__(host=host, port=port, ssl_context=ssl_context)
        self._api_key = api_key
        self._latency_s = float(latency_s)
        self._stream_chunks = stream_chunks
        self._retry_after_s = float(retry_after_s)
        self._slow_first_byte_s = float(slow_first_byte_s)
        self._record = record_requests
        self._writer = StreamWriter(
            chunk_latency_s=float(chunk_latency_s), done=sse_done, crlf=sse_crlf, extras=sse_extras
        )
        if models_shape is not None and models_shape not in MODELS_SHAPES:
            raise ValueError(f"models_shape must be None or one of {MODELS_SHAPES}")
        accepted = accepted_models(models)
        self._listed = listed_models(models)
        self._models_shape = models_shape
        self._models_bodies = {shape: models_body(self._listed, shape) for shape in MODELS_SHAPES}
        self._native = NativeDialect(
            models=accepted, stream=native_stream, trailer=native_stream_trailer
        )
        self._openai = OpenAIDialect(models=accepted, reject_tool_role=reject_tool_role)
        self._generation = Generator(generation) if generation is not None else None

        self._billing = billing
        self.billed: list[tuple[str, int, int]] = []
        """``(model, input_tokens, output_tokens)`` of every answer billed, oldest first."""
        self.requests: list[RecordedRequest] = []
        """Every request received, oldest first (when ``record_requests``)."""
        self.in_flight = 0
        """Requests being handled right now, open streams included."""
        self.max_in_flight = 0
        """The high-water mark of `in_flight` since start or `reset_stats`."""

        self._ids = Ids()

        self._app.router.add_post(_CHAT, self._handle_chat)
        self._app.router.add_post(_COMPLETIONS, self._handle_completions)
        self._app.router.add_get(_MODELS, self._handle_models)
        self._app.router.add_get(_MODELS + "/{model}", self._handle_model)
        self._app.router.add_route("*", "/{tail:.*}", self._handle_unknown)

    # ---------------------------------------------------------------- public surface

    @property
    def limiter(self) -> Limiter:
        """The rate limiter of requests (its kind, and its ``admitted`` and ``refused``
        counters)."""
        return self._window.requests

    @property
    def token_limiter(self) -> Limiter | None:
        """The token limiter (``token_limit``; its ``admitted``, ``refused`` and ``charged``
        counters), or None without one."""
        return self._window.tokens

    @property
    def generation(self) -> Generator | None:
        """The generation model at work (its slots and counters), or None without one."""
        return self._generation

    def reset_stats(self) -> None:
        """Forget recorded requests and restart `max_in_flight` from the current `in_flight`."""
        self.requests.clear()
        self.max_in_flight = self.in_flight
        if self._generation is not None:
            self._generation.reset_stats()

    def inject(self, *faults: str) -> None:
        """Queue faults: each following API request takes the oldest one and suffers it.

        Args:
            *faults: Fault names from `FAULTS`.

        Raises:
            ValueError: A name is not a known fault.
        """
        self._faults.inject(faults)

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
        self, request: web.Request, body: Any, received_at: float, text: str, *, chat: bool
    ) -> tuple[str | None, float | None]:
        """Pick this request's fault (first match wins) and any latency override; record it
        (``chat``: the request bills tokens, so a token limit applies)."""
        window = self._window
        window.roll()
        fault, latency = self._faults.pick(text)
        if fault is None:
            refused_by = window.admit(tokens=chat)
            if refused_by is not None:
                fault = "rpm_limit"  # internal name: a rate_limit answered by a limiter
                # Why it was refused, as the limiters saw it then (the answer leaves a
                # latency later, when a window may have rolled: its headers must still say
                # "spent").
                self._refused_state[id(request)] = (refused_by, window.state())
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
        if key is None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        if self._api_key is None:
            return bool(key)
        return key == self._api_key

    # ---------------------------------------------------------------- handlers

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, self._native)

    async def _handle_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, self._openai)

    async def _chat(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        self._enter()
        try:
            received_at = time.monotonic()
            request_id = self._ids.request_id()
            raw = await request.read()
            try:
                body, errors = parse_body(raw)
            except BodyTooDeep:
                _log.warning(
                    "mock: %s %s: a JSON body nested too deep to parse (%d bytes); answered 400",
                    request.method,
                    request.path,
                    len(raw),
                )
                return web.Response(status=400, body=TOO_DEEP_BODY, content_type="application/json")
            fault, latency = self._admit(request, body, received_at, last_text(body), chat=True)
            fault = await self._wait(fault, latency)
            if fault is not None:
                return await self._chat_fault(request, request_id, fault, body, dialect)

            headers = self._window.headers(request_id)
            if not self._authorized(request):
                return web.Response(status=401, body=AUTH_BODY, headers=headers)
            if not errors:
                errors = dialect.validate(body)
            if errors:
                return web.Response(status=422, body=detail_body(errors), headers=headers)
            refusal = dialect.refuse(body)
            if refusal is not None:
                return web.Response(status=refusal[0], body=refusal[1], headers=headers)

            model: str = body["model"]
            reply = dialect.reply(body, self._ids.call_id)
            if self._billing is not None:
                billed_in, billed_out = self._billing.usage(body)
                reply = dataclasses.replace(reply, input_tokens=billed_in, output_tokens=billed_out)
            self.billed.append((model, reply.input_tokens, reply.output_tokens))
            self._window.charge(reply.input_tokens + reply.output_tokens, headers)
            if self._generation is not None:
                return await self._generate(request, headers, body, dialect, reply)
            if body.get("stream") is True:
                events = dialect.events(self._ids.chat_id(), model, reply, self._stream_chunks)
                return await self._writer.send(
                    request, headers, events, len(events), done=dialect.done
                )
            payload = dialect.json_body(self._ids.chat_id(), model, reply)
            return web.Response(body=payload, headers=headers)
        finally:
            self.in_flight -= 1

    async def _generate(
        self,
        request: web.Request,
        headers: dict[str, str],
        body: dict[str, Any],
        dialect: Dialect,
        reply: Reply,
    ) -> web.StreamResponse:
        """Answer through the generation model: wait for a slot, then pace the tokens."""
        generation = self._generation
        assert generation is not None
        reply = generation.fill(reply, body)
        chat_id = self._ids.chat_id()
        model: str = body["model"]
        async with generation.slot() as start:
            if body.get("stream") is True:
                events = dialect.events(chat_id, model, reply, self._stream_chunks)
                cumulative = dialect is self._native and not self._native.delta
                due = generation.stream_deadlines(
                    start, reply, events, native_cumulative=cumulative
                )
                return await self._writer.send(
                    request, headers, events, len(events), done=dialect.done, deadlines=due
                )
            payload = dialect.json_body(chat_id, model, reply)
            await generation.generate(start, reply)
            return web.Response(body=payload, headers=headers)

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        body = self._models_bodies[shape_for(request.headers, self._models_shape)]
        return await self._get(request, lambda: (200, body))

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"]

        def answer() -> tuple[int, bytes]:
            if model not in self._listed:
                return 404, error_body("not_found_error", f"Model '{model}' not found")
            return 200, model_body(model)

        return await self._get(request, answer)

    async def _get(
        self, request: web.Request, answer: Callable[[], tuple[int, bytes]]
    ) -> web.StreamResponse:
        """Answer a GET of the models endpoints: faults, latency, auth, then ``answer()``."""
        self._enter()
        try:
            received_at = time.monotonic()
            request_id = self._ids.request_id()
            fault, latency = self._admit(request, None, received_at, "", chat=False)
            fault = await self._wait(fault, latency)
            if fault is not None:
                return await self._fault(request, request_id, fault, lambda: answer()[1])
            headers = self._window.headers(request_id)
            if not self._authorized(request):
                return web.Response(status=401, body=AUTH_BODY, headers=headers)
            status, body = answer()
            return web.Response(status=status, body=body, headers=headers)
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
        self._window.roll()
        headers = self._window.headers(request_id)
        one_model = request.path.startswith(_MODELS + "/") and request.path.count("/") == 3
        if request.path in (_CHAT, _COMPLETIONS, _MODELS) or one_model:
            return web.Response(status=405, body=METHOD_NOT_ALLOWED_BODY, headers=headers)
        error = error_body("not_found_error", f"Path '{request.path}' not found")
        return web.Response(status=404, body=error, headers=headers)

    # ---------------------------------------------------------------- faults

    async def _chat_fault(
        self, request: web.Request, request_id: str, fault: str, body: Any, dialect: Dialect
    ) -> web.StreamResponse:
        """Answer a chat request with a fault, faking the reply a fault may corrupt."""
        json_body, events = fault_material(
            dialect, body, self._ids.call_id, self._ids.chat_id, self._stream_chunks
        )
        return await self._fault(request, request_id, fault, json_body, events, dialect.done)

    async def _fault(
        self,
        request: web.Request,
        request_id: str,
        fault: str,
        json_body: Callable[[], bytes],
        events: Callable[[], list[bytes]] | None = None,
        done: bool | None = None,
    ) -> web.StreamResponse:
        """Answer with a fault (``events`` is None for non-streams; ``done`` as in ``send``)."""
        if fault == "rpm_limit":  # a limiter's own 429: its headers tell its state
            window = self._window
            refused_by, state = self._refused_state.pop(id(request), (window.requests, None))
            refusal = window.refusal(request_id, refused_by, state)
            return web.Response(status=429, body=RATE_LIMIT_BODY, headers=refusal)
        return await fault_response(
            request,
            fault,
            self._window.headers(request_id),
            json_body,
            events,
            writer=self._writer,
            done=done,
            now=self._window.clock(),
            retry_after_s=self._retry_after_s,
        )
