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

This package is deliberately standalone: it imports nothing else from ``reka_async``, only
aiohttp and the standard library (plus orjson when it is installed, for speed).

Run it on its own with ``python -m reka_async.testing --port 8000``; `MockServerProcess`
runs it so in a subprocess (for tests of other processes) and reads its URL.

The package holds one idea per module, all private; this module only re-exports:
``_server`` (`MockRekaServer`: the application, its handlers and lifecycle),
``_faults`` (the fault catalogue, canned bodies and directives), ``_fault_responses``
(what each fault answers), ``_validation`` (the 422 request validation), ``_replies``
(deterministic replies and their JSON bodies), ``_sse`` (stream framing and sending),
``_bookkeeping`` (request records, ids and the rate-limit window), ``_thread``
(`MockRekaServer.in_thread`), ``_process`` (`MockServerProcess`), ``_main`` (the command
line, `main`) and ``_json`` (compact JSON, orjson when installed).
"""

from ._bookkeeping import RecordedRequest
from ._faults import DEFAULT_FAULT_KINDS, FAULTS
from ._main import main
from ._process import MockServerProcess
from ._server import MockRekaServer

__all__ = [
    "DEFAULT_FAULT_KINDS",
    "FAULTS",
    "MockRekaServer",
    "MockServerProcess",
    "RecordedRequest",
    "main",
]
