"""``Transport``: the one request loop, for plain and streamed calls alike.

Each attempt goes through the same steps, in this order, in ``Transport.send``:

1. pacing: the shared cooldown and the key's window (``Pacer``), only while one is in play;
2. budgets: every ``Budget`` of the request reserves its worst case (``Ledger``,
   ``accounting.py``);
3. the ``on_request`` hooks;
4. one attempt through the ``AsyncTransport`` below (``attempt.py``: aiohttp by default,
   ``reka_async.testing.MockTransport`` in tests), its third-party errors translated once
   (``map_errors``);
5. the answer's rate-limit headers are read (``Pacer.observe``), the attempt's reservations
   settled by its outcome, the ``on_response`` hooks called;
6. a 2xx plain answer is parsed and returned; a 2xx stream is returned as soon as its
   headers are in (``StreamBody``, which carries its reservations to the stream); anything
   else goes to the retry decision and its wait (``_retry_wait``), or is raised. During the
   wait the caller's ``RequestOptions.slot`` (a batch worker's share of its concurrency) is
   given up, and taken again before the next attempt.

A reused keep-alive connection that fails before any answer is retried once, at once
(``_http/retry.py``). A stream whose body breaks before its first event comes back to the
same loop (``send(call, failed=error)``): the stream object decides nothing about retries.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs
from multidict import CIMultiDict
from yarl import URL

from .._exceptions import APIConnectionError, APIError
from .._version import __version__
from .accounting import Budget, Ledger, Outcome, outcome_of
from .aiohttp_transport import AiohttpTransport
from .attempt import AsyncTransport, TransportRequest
from .errors import invalid_body, map_errors, stale_candidate, status_error
from .hooks import Hooks
from .network import display_url
from .options import RequestOptions, Timeout, chain_retry_hooks
from .pacing import Pacer
from .pool import ClientState, Pool, StreamBody, check_base_url, read_body
from .quota import Quota
from .retry import RetryEvent, RetryHook, RetryPolicy

__all__ = ["Call", "ClientState", "StreamBody", "Transport", "check_base_url", "read_body"]

logger = logging.getLogger("reka_async")

T = TypeVar("T")

USER_AGENT = f"reka-async/{__version__}"


class Call(Generic[T]):
    """One request and its attempts so far: what ``Transport.send`` loops over.

    Made by ``Transport.call``; a stream keeps its ``Call`` so that a body broken before
    its first event goes back to the same loop.
    """

    __slots__ = (
        "attempt",
        "body",
        "errors",
        "headers",
        "method",
        "opts",
        "parse",
        "path",
        "payload",
        "rate_limit_wait",
        "retries",
        "stale_retry",
        "stream",
        "url",
    )

    def __init__(
        self,
        method: str,
        path: str,
        url: URL,
        errors: map_errors,
        headers: Mapping[str, str],
        body: bytes | None,
        payload: Mapping[str, Any] | None,
        opts: RequestOptions,
        stream: bool,
        parse: Callable[[bytes, str | None], T] | None,
        stale_retry: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.url = url
        self.errors = errors
        self.headers = headers
        self.body = body
        #: The canonical request body the budgets estimate from (``None`` for a GET).
        self.payload = payload
        self.opts = opts
        self.stream = stream
        self.parse = parse
        #: The attempt being made (0 is the first); what the hooks are told.
        self.attempt = 0
        #: The retries counted against ``max_retries`` so far. Apart from ``attempt``: a
        #: retry the policy does not count (the stale connection's, below) is an attempt
        #: all the same.
        self.retries = 0
        #: Seconds waited after quota and unlabelled 429s, which spend no retry: bounded by
        #: ``RetryPolicy.max_rate_limit_wait`` instead (``_http/quota.py``, rule 2).
        self.rate_limit_wait = 0.0
        #: Whether the transparent retry of a stale connection is still allowed.
        self.stale_retry = stale_retry


class Transport:
    """The request loop of a client, over an ``AsyncTransport`` (see the module docstring).

    ``derive`` makes a copy with other per-request settings over the same pool (the
    attempt transport, the pacer, the budgets); closing a copy leaves the pool open.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: URL,
        timeout: Timeout,
        retry_policy: RetryPolicy,
        max_connections: int,
        sender: AsyncTransport | None = None,
        default_headers: Mapping[str, str] | None = None,
        hooks: Hooks | None = None,
        on_retry: RetryHook | None = None,
        budget: Budget | None = None,
        max_response_bytes: int | None = None,
        pacers: dict[tuple[str, str], Pacer] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.max_connections = max_connections
        #: The largest body, or stream event, read from a response (``None``: no limit).
        self.max_response_bytes = max_response_bytes
        #: The client's rate budget (``AsyncClient(rpm=, tpm=)``), or ``None``.
        self.budget = budget
        # The pacers of this client and its copies, one per (key, origin): a copy for
        # another key or endpoint (``rebind``) takes the one of its pair, made on first use.
        self._pacers = pacers if pacers is not None else {}
        pair = (hashlib.sha256(api_key.encode()).hexdigest(), str(base_url.origin()))
        if pacer is not None:  # carried on from another client (``AsyncClient(pacer=)``)
            self._pacers[pair] = pacer
        pacer = self._pacers.get(pair)
        if pacer is None:
            quota = Quota(slack=max_connections, max_wait=retry_policy.max_server_wait)
            pacer = self._pacers[pair] = Pacer(quota)
        #: The shared cooldown, the key's window and the learned send rate: one per (key,
        #: scheme, host and port) of the client and its ``with_options`` copies.
        self.pacer = pacer
        self.default_options = RequestOptions(
            timeout=timeout,
            max_retries=retry_policy.max_retries,
            on_retry=on_retry,
            hooks=hooks or None,
            budgets=(budget,) if budget is not None else (),
        )
        #: Whether closing this transport closes the pool (false for ``derive`` copies).
        self.owns_pool = True
        self._closed = False  # this copy was closed (the pool may live on)
        base = CIMultiDict(
            {
                "X-Api-Key": api_key,
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
        )
        base.update(default_headers or {})
        self._default_headers = dict(default_headers or {})  # for ``rebind``
        # The request headers by (bearer, stream), made once: a CIMultiDict, as aiohttp would
        # convert a dict per request. The OpenAI dialect sends its Bearer header beside
        # X-Api-Key; a stream asks for server-sent events.
        self._headers: dict[tuple[bool, bool], CIMultiDict[str]] = {}
        for bearer in (False, True):
            for stream in (False, True):
                headers = base.copy()
                if bearer:
                    headers["Authorization"] = f"Bearer {api_key}"
                if stream:
                    headers["Accept"] = "text/event-stream"
                self._headers[bearer, stream] = headers
        self._pool = Pool(
            sender if sender is not None else AiohttpTransport(max_connections=max_connections)
        )
        self._routes: dict[tuple[str, str], tuple[URL, map_errors, str]] = {}

    def __repr__(self) -> str:
        return f"<Transport {display_url(self.base_url)!r} {self.state.value}>"

    def credential_fingerprint(self, secret: bytes) -> str:
        """A keyed fingerprint of the API key this transport sends (the request cache's
        account identity): HMAC-SHA256 under ``secret``, 32 hex digits; never the key."""
        key = self.api_key
        return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:32]

    @property
    def sender(self) -> AsyncTransport:
        """What performs each attempt (the attempt transport)."""
        return self._pool.sender

    @property
    def state(self) -> ClientState:
        """The lifecycle of this client: the pool's, or ``CLOSED`` once this copy is closed."""
        return ClientState.CLOSED if self._closed else self._pool.state

    @property
    def last_headers(self) -> Mapping[str, str] | None:
        """The headers of the most recent HTTP answer on this pool, or ``None`` before one."""
        return self._pool.last_headers

    @property
    def connections_in_use(self) -> int:
        """Connections of the pool held by a request or an open stream (0 when the attempt
        transport does not count them)."""
        sender = self._pool.sender
        return sender.connections_in_use if isinstance(sender, AiohttpTransport) else 0

    def derive(
        self,
        *,
        timeout: Timeout | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        hooks: Hooks | None = None,
        on_retry: RetryHook | None = None,
    ) -> Transport:
        """A transport over the same pool with other per-request settings.

        A shallow copy, so the pool, the pacer and the budgets are the same objects. Its
        ``default_headers`` are sent per request on top of the client's; its hooks run after
        this transport's.
        """
        new = copy.copy(self)
        new.owns_pool = False
        new._closed = False
        if timeout is not None:
            new.timeout = timeout
        if retry_policy is not None:
            new.retry_policy = retry_policy
        base = self.default_options
        headers = base.extra_headers
        if default_headers:
            headers = {**(headers or {}), **default_headers}
        # evolve, not a new RequestOptions: any other per-request state is carried over.
        new.default_options = attrs.evolve(
            base,
            timeout=new.timeout,
            max_retries=new.retry_policy.max_retries,
            extra_headers=headers,
            on_retry=chain_retry_hooks(base.on_retry, on_retry),
            hooks=base.hooks.plus(hooks) if base.hooks is not None else (hooks or None),
        )
        return new

    def rebind(self, *, api_key: str, base_url: URL, sender: AsyncTransport) -> Transport:
        """A transport with this one's settings for another key or base URL: its own pool
        (over ``sender``), key header and request headers, and the pacer (cooldown, window,
        rate) of its key and origin: a new one, or the one this client or a copy already
        has for that pair (another path on the same host, or back to an earlier key).

        The per-request settings (timeout, retries, extra headers, hooks) and the budgets are
        carried over; closing the new transport closes its own pool and nothing else.
        """
        new = Transport(
            api_key=api_key,
            base_url=base_url,
            timeout=self.timeout,
            retry_policy=self.retry_policy,
            max_connections=self.max_connections,
            sender=sender,
            default_headers=self._default_headers,
            budget=self.budget,
            max_response_bytes=self.max_response_bytes,
            pacers=self._pacers,
        )
        new.default_options = self.default_options
        return new

    @property
    def api_key(self) -> str:
        """The key this transport sends (never shown: reprs and errors leave it out)."""
        return self._headers[False, False]["X-Api-Key"]

    def route(self, method: str, path: str) -> tuple[URL, map_errors, str]:
        """The absolute URL of an endpoint, the error translator naming it and the URL as
        shown to hooks (cached)."""
        route = self._routes.get((method, path))
        if route is None:
            what = f"{method} {path}" if method != "STREAM" else f"POST {path} (stream)"
            url = URL(str(self.base_url) + path, encoded=True)
            route = self._routes[method, path] = (url, map_errors(what), display_url(url))
        return route

    def open(self) -> None:
        """Mark the pool open (on ``async with`` or the first attempt); the network transport
        makes its session now, in the running loop.

        Raises:
            RuntimeError: the client is closed, or bound to another event loop.
        """
        pool = self._pool
        if self._closed or pool.state is ClientState.CLOSED:
            raise RuntimeError("this client is closed; create a new one")
        if isinstance(pool.sender, AiohttpTransport):
            pool.sender.open()
        pool.state = ClientState.OPEN

    async def aclose(self) -> None:
        """Close the pool and its attempt transport (a ``derive`` copy: only the copy). Safe
        to call more than once."""
        self._closed = True
        if not self.owns_pool:
            return
        pool = self._pool
        if pool.state is ClientState.CLOSED:
            return
        pool.state = ClientState.CLOSED
        # Streams left open (a caller that never finished one) give their connections back
        # first: closing the session under them leaves aiohttp warning "Unclosed connection"
        # whenever their response objects are collected later.
        for body in list(pool.streams):
            body.close()
            body.settle(Outcome.UNKNOWN)
        await pool.sender.aclose()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        opts: RequestOptions,
        parse: Callable[[bytes, str | None], T] | None = None,
        payload: Mapping[str, Any] | None = None,
        bearer: bool = False,
        stream: bool = False,
    ) -> Call[T]:
        """A request to ``send``: ``parse(body, request_id)`` decodes a 2xx plain answer
        (any exception it raises becomes an ``APIResponseValidationError``); ``payload`` is
        the canonical body the budgets estimate from."""
        route = self._routes.get((method, path))
        url, errors, _ = route if route is not None else self.route(method, path)
        if stream:
            errors = self.route("STREAM", path)[1]
        headers: Mapping[str, str] = self._headers[bearer, stream]
        extra = opts.extra_headers
        if extra:
            merged = headers.copy()  # type: ignore[attr-defined]
            merged.update(extra)
            headers = merged
        return Call(
            method,
            path,
            url,
            errors,
            headers,
            body,
            payload,
            opts,
            stream,
            parse,
            self.retry_policy.may_bill_twice,
        )

    async def send(self, call: Call[T], failed: APIError | None = None) -> Any:
        """Make the attempts of ``call`` until one succeeds or the retry decision gives up.

        Returns ``parse(...)`` of the 2xx answer for a plain call, the open ``StreamBody``
        for a stream. ``failed``: a stream's attempt whose body broke before its first event
        (the loop goes on from the retry decision).

        Raises:
            APIStatusError: an error status that is not retried (a subclass per status).
            APIConnectionError: no complete answer (``APITimeoutError`` on a timeout).
            APIResponseValidationError: a 2xx body of the wrong shape.
        """
        opts = call.opts
        hooks = opts.hooks  # None unless there are hooks: the loop then checks only that
        budgets = opts.budgets
        pool = self._pool
        sender = pool.sender
        pacer = self.pacer
        errors = call.errors
        if failed is not None:
            await self._retry_wait(call, failed)
        while True:
            if pool.state is not ClientState.OPEN or self._closed:
                self.open()
            if pacer.active:
                await pacer.before_attempt()
            ledger = await Ledger.reserve(budgets, call.payload) if budgets else None
            request = TransportRequest(
                call.method, call.url, call.headers, call.body, call.stream, opts.timeout
            )
            if hooks is not None:
                event = hooks.started(
                    call.method,
                    call.path,
                    self.route(call.method, call.path)[2],
                    call.attempt,
                    call.body,
                    call.stream,
                )
            error: APIError
            resp = None
            try:
                with errors:
                    resp = await sender.send(request)
                    status = resp.status
                    if status >= 300 or not call.stream:
                        raw = await read_body(resp, self.max_response_bytes)
            except APIConnectionError as exc:  # raised by map_errors: no complete answer
                if resp is not None:
                    resp.close()  # the body broke: the connection is not reused
                if ledger is not None:
                    ledger.close(outcome_of(exc))
                if hooks is not None:
                    hooks.answered(event, status=None, headers=None, error=exc)
                if call.stale_retry and request.reused and stale_candidate(exc):
                    call.stale_retry = False
                    self._report_stale_retry(call, exc)
                    call.attempt += 1  # a new attempt, not counted against max_retries
                    continue
                error = exc
            except BaseException:  # cancelled, or a body over the size limit
                if resp is not None:
                    resp.close()
                if ledger is not None:
                    ledger.close(Outcome.UNKNOWN)
                raise
            else:
                pool.last_headers = received = resp.headers
                pacer.observe(received)
                if status < 300:
                    pacer.answered(False)
                    if call.stream:
                        if hooks is not None:
                            hooks.answered(event, status=status, headers=received)
                        body = StreamBody(resp, errors, ledger)
                        pool.streams.add(body)
                        return body
                    request_id = received.get("x-request-id")
                    try:
                        result = call.parse(raw, request_id)  # type: ignore[misc]
                    except Exception as exc:  # any decode/shape failure: one typed error
                        invalid = invalid_body(status, request_id, raw, exc)
                        if ledger is not None:
                            ledger.close(Outcome.ANSWERED)  # no usage to read: kept in full
                        if hooks is not None:
                            hooks.answered(
                                event, status=status, headers=received, content=raw, error=invalid
                            )
                        raise invalid from exc
                    if ledger is not None:
                        ledger.close(Outcome.ANSWERED, getattr(result, "usage", None))
                    if hooks is not None:
                        hooks.answered(
                            event, status=status, headers=received, content=raw, response=result
                        )
                    return result
                error = status_error(status, received, raw)
                kind = pacer.kind(error) if status == 429 else None
                if kind is not None:
                    pacer.kinds[kind] += 1
                pacer.answered(kind is not None)
                if ledger is not None:
                    ledger.close(Outcome.REFUSED)
                if hooks is not None:
                    hooks.answered(event, status=status, headers=received, content=raw, error=error)
            await self._retry_wait(call, error)

    async def _retry_wait(self, call: Call[Any], error: APIError) -> None:
        """The retry decision and its wait: sleep before the next attempt, or raise ``error``
        when it must not be retried.

        The rule for rate-limit 429s is ``_http/quota.py``'s: a quota 429 (a ``remaining``
        of 0) trips the client's shared cooldown, so every other request of this client
        waits too; an unlabelled or overload 429 delays this request alone. Quota and
        unlabelled 429s spend none of ``max_retries`` (unless it is 0): their waits are
        bounded per request by ``RetryPolicy.max_rate_limit_wait``.
        """
        opts = call.opts
        policy = self.retry_policy
        pacer = self.pacer
        kind = pacer.kind(error)
        free = kind is not None and kind != "overload" and opts.max_retries > 0
        if free:
            # Retryable once more whatever the count; the server's wait (or the first
            # backoff step) as for any retry, within the per-request total.
            delay = policy.delay_for(error, 0, 1)
            if delay is not None and call.rate_limit_wait + delay > policy.max_rate_limit_wait:
                delay = None
        else:
            delay = policy.delay_for(error, call.retries, opts.max_retries)
        spent = kind == "quota"
        if spent:
            pacer.refused(error, delay, policy.max_server_wait)
        if delay is None:
            raise error
        may_bill_twice = policy.retry_may_bill_twice(error)
        logger.info(
            "retrying %s %s in %.2f s (attempt %d of %d failed%s): %s",
            call.method,
            call.path,
            delay,
            call.attempt + 1,
            opts.max_retries + 1,
            "; it may have reached the server, so this retry may bill twice"
            if may_bill_twice
            else "",
            error,
        )
        if opts.on_retry is not None:
            opts.on_retry(
                RetryEvent(
                    method=call.method,
                    path=call.path,
                    attempt=call.attempt,
                    error=error,
                    delay=delay,
                    rate_limited=kind is not None,
                    quota_spent=spent,
                    may_bill_twice=may_bill_twice,
                    rate_limit_kind=kind,
                    counted=not free,
                )
            )
        slot = opts.slot
        if slot is None:
            await pacer.wait_retry(delay, spent)
        else:
            # The wait holds no connection: the caller's concurrency slot serves another
            # request meanwhile (a batch's next item), and is taken again before the retry.
            slot.leave()
            await pacer.wait_retry(delay, spent)
            await slot.rejoin()
        call.attempt += 1
        if free:
            call.rate_limit_wait += delay
        else:
            call.retries += 1

    def _report_stale_retry(self, call: Call[Any], error: APIError) -> None:
        """Report the transparent retry of a stale keep-alive connection: it may bill twice
        (``_http/retry.py``), so the retry hook and the log see it like any other retry."""
        logger.info(
            "retrying %s %s at once on a new connection (may bill twice: a reused connection "
            "failed before any answer): %s",
            call.method,
            call.path,
            error,
        )
        if call.opts.on_retry is not None:
            call.opts.on_retry(
                RetryEvent(
                    method=call.method,
                    path=call.path,
                    attempt=call.attempt,
                    error=error,
                    delay=0.0,
                    rate_limited=False,
                    may_bill_twice=True,
                )
            )
