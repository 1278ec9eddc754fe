"""An embedded mock of the Reka Chat API, for tests, examples, benchmarks and ``--mock``.

`MockRekaServer` is a small ``aiohttp.web`` application that speaks both dialects of the wire
contract in ``reka-chat-api.md``:

* ``POST /v1/chat``, the native dialect: plain JSON or server-sent events whose
  ``chunk.content`` is cumulative (``native_stream="delta"``: each event's new text), with an
  optional usage-only trailer event and ``data: [DONE]`` (``native_stream_trailer=True``);
* ``POST /v1/chat/completions``, the OpenAI-compatible dialect: ``chat.completion`` answers,
  ``chat.completion.chunk`` streams ending with a usage chunk and ``data: [DONE]``, tool calls,
  Research (``reka-flash-research`` or a ``research`` field: reasoning, search steps,
  citations) and structured outputs (``response_format`` with a JSON schema: the content is a
  deterministic instance of it);
* ``GET /v1/models`` in each caller's shape (the OpenAI list to a ``Bearer`` token, the
  native ``[{"id": ...}]`` to ``X-Api-Key`` alone), the same models in each, or in one era's
  shape for all (``models_shape="list"``, ``"openai"`` or ``"strings"``); and, an extra of the
  mock, ``GET /v1/models/{id}`` (one OpenAI ``Model`` object, as ``openai``'s
  ``models.retrieve`` reads it);
* ``X-Api-Key`` or ``Authorization: Bearer`` auth on every endpoint, FastAPI-style 422
  validation errors, ``405 {"detail": "Method Not Allowed"}`` for a wrong method on a known
  path, rate-limit headers and ``x-request-id`` on every response, and a catalogue of
  injectable faults (`FAULTS`), the out-of-credits 429 in each wording of the contract
  (``credits``, ``credits_p001``, ``credits_enough``) among them.

Replies are deterministic: the same conversation always gets the same text, on either
endpoint, so tests can assert on it. A reply calls tools when ``tool_choice`` forces it
(native ``"tool"``, OpenAI ``"required"`` or a named function) or when the last message holds
``[[tool:NAME]]`` directives naming tools of the request. Faults are chosen per request, first
match wins:

1. a directive in the last message's text, ``[[fault:NAME]]`` (every attempt) or
   ``[[fault:NAME*K]]`` (only the first K requests carrying that exact directive);
2. the queue filled by `MockRekaServer.inject` (FIFO, one fault per request);
3. a random fault with probability ``fault_rate`` drawn from ``fault_kinds``
   (seeded, hence reproducible);
4. the optional limiter (``rpm_limit`` or ``rate_limit``, of ``rate_limit_kind``: fixed
   windows, a sliding window, a token bucket, or a bucket without ``x-ratelimit-*``
   headers), which answers rate-limit 429s (fixed windows follow the clock;
   ``clock=window_start_clock()`` starts one now), and a ``token_limit`` of the same kind,
   counted from the usage billed, refused first.

A directive ``[[latency_ms:N]]`` overrides the response latency for that request, and
``[[pieces:["ha", "ha", "ha!"]]]`` makes the reply those pieces joined, streamed one content
event per piece (cumulative or delta as ``native_stream`` says): a delta stream that stays
consistent with cumulative content to its end, which no client can tell apart on the wire.

With ``generation=GenerationModel(...)`` (``--ttft-ms``, ``--tpot-ms``, ``--capacity``...
on the command line) answers are paced like an inference server's: a time to first token
of a base delay plus a prefill time per input token, then one token per ``tpot_s`` on
fixed deadlines, at most ``capacity`` generations at once (the rest queued), optional
jitter, and answers that run to ``max_tokens``. Benchmarks are checked against it.

This package is deliberately standalone: it imports nothing else from ``reka_async``, only
aiohttp and the standard library (plus orjson when it is installed, for speed).

Run it on its own with ``python -m reka_async.testing --port 8000`` (``--native-stream``,
``--native-stream-trailer``, ``--models-shape``, ``--reject-tool-role`` and more: ``--help``);
`MockServerProcess` runs it so in a subprocess (for tests of other processes) and reads its URL.

The package holds one idea per module, all private; this module only re-exports:
``_server`` (`MockRekaServer`: the application, its handlers and state), ``_serving``
(binding, serving and closing the socket, the base URL),
``_native`` (the native dialect, and the `Dialect` protocol both endpoints implement),
``_openai`` (the OpenAI-compatible dialect: replies, bodies, streams), ``_openai_validation``
(its 422s, Research and structured-output rules included), ``_validation`` (the 422 request
validation shared by both), ``_replies`` (deterministic replies and the native bodies),
``_tools`` (when a reply calls tools, and the calls in both dialects), ``_research``
(reasoning, search steps and citations), ``_schema`` (a JSON Schema instance generator and
validator), ``_catalogue`` (the models and the ``/models`` shapes), ``_faults`` (the fault
catalogue, canned bodies, directives and the per-request pick), ``_fault_responses`` (what
each fault answers), ``_sse`` (stream framing and sending), ``_bookkeeping`` (request
records, ids), ``_limiters`` (the four rate-limiter kinds and their headers), ``_thread``
(`MockRekaServer.in_thread`),
``_generation`` (the generation model), ``_process`` (`MockServerProcess`), ``_main`` (the
command line, `main`), ``_json`` (compact JSON, orjson when installed) and ``_transport``
(`MockTransport`: no server at all, a client's attempts answered in-process from a function
of the request, for unit tests of request and response shape) and ``_billing`` (`Billing`:
usage billed by the request's bytes and ``max_tokens``, as the server a cost budget must
survive).
"""

from ._billing import Billing
from ._bookkeeping import RecordedRequest, window_start_clock
from ._faults import DEFAULT_FAULT_KINDS, FAULTS
from ._generation import GenerationModel, Generator
from ._main import main
from ._process import MockServerProcess
from ._server import MockRekaServer
from ._transport import MockResponse, MockTransport, sse

__all__ = [
    "Billing",
    "DEFAULT_FAULT_KINDS",
    "FAULTS",
    "GenerationModel",
    "Generator",
    "MockRekaServer",
    "MockResponse",
    "MockServerProcess",
    "MockTransport",
    "RecordedRequest",
    "main",
    "sse",
    "window_start_clock",
]
