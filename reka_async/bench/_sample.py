"""One request's measurement: the timestamps the runner records and the metrics they give.

Every time is a ``time.perf_counter()`` reading in seconds, taken when our client handed
the event over (after decoding it), so what a metric measures is what a caller of the SDK
would see. The definitions follow vLLM's ``benchmark_serving`` where the tools differ:

* **start**: the request's *scheduled* start. In an open loop that is its slot in the
  arrival schedule, whether or not the client managed to send it then, so latency is free
  of coordinated omission (a client that falls behind does not hide the server's queue);
  ``sent - scheduled`` is the schedule lag, reported apart. In a closed loop a request is
  scheduled when its slot frees, so both are the same moment.
* **TTFT**: start to the first event with a non-empty answer delta. For Research models the
  time to the first reasoning delta is kept as well (``ttft_reasoning``).
* **TPOT**: ``(last answer token event - first answer token event) / (output_tokens - 1)``,
  with ``output_tokens`` from ``usage`` (the count of answer events when the server sends
  no usage); none for an answer of one token. (guidellm and LLMPerf call
  ``e2e / output_tokens`` their per-token latency, which includes the TTFT.)
* **ITL**: the gaps between successive events that carried new text (answer or reasoning),
  per event: a server that sends several tokens an event shows it here, not in TPOT.
* **e2e**: start to the complete answer (the stream's end, usage trailer included).

A failed request keeps its timestamps but counts in no latency metric.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs

__all__ = ["Sample"]


@attrs.define(kw_only=True, slots=True)
class Sample:
    """The measurement of one request (times: ``time.perf_counter()`` seconds).

    Attributes:
        index: Its position in the workload.
        scheduled: When it was due.
        sent: When it was handed to the client.
        end: When the answer was complete or the error raised.
        first_token: The first event with answer text (streams).
        first_reasoning: The first event with reasoning text (Research streams).
        last_token: The last event with answer text (streams).
        token_times: Every event that carried new text, answer or reasoning (streams).
        answer_events: How many events carried answer text.
        input_tokens: The prompt's estimated length.
        usage_input_tokens: The input tokens ``usage`` reported, if any.
        output_tokens: The output tokens ``usage`` reported, if any.
        finish_reason: As the answer gave it.
        error_type: The exception's class name when it failed (``"NoTokens"``: a stream
            that ended without any text).
        error: Its message.
        status: Its HTTP status, for an ``APIStatusError``.
    """

    index: int
    scheduled: float
    sent: float = 0.0
    end: float = 0.0
    first_token: float | None = None
    first_reasoning: float | None = None
    last_token: float | None = None
    token_times: list[float] = attrs.field(factory=list)
    answer_events: int = 0
    input_tokens: int = 0
    usage_input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    error_type: str | None = None
    error: str | None = None
    status: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the request succeeded."""
        return self.error_type is None

    @property
    def generated_tokens(self) -> int:
        """The output tokens: ``usage``'s, else the answer events counted."""
        if self.output_tokens is not None:
            return self.output_tokens
        return self.answer_events

    @property
    def ttft(self) -> float | None:
        """Seconds from the scheduled start to the first answer text (streams)."""
        return None if self.first_token is None else self.first_token - self.scheduled

    @property
    def ttft_reasoning(self) -> float | None:
        """Seconds from the scheduled start to the first reasoning text."""
        return None if self.first_reasoning is None else self.first_reasoning - self.scheduled

    @property
    def tpot(self) -> float | None:
        """Seconds per output token after the first (streams with two tokens or more)."""
        n = self.generated_tokens
        if self.first_token is None or self.last_token is None or n < 2:
            return None
        return (self.last_token - self.first_token) / (n - 1)

    @property
    def itls(self) -> list[float]:
        """The gaps between successive events with new text, in seconds."""
        times = self.token_times
        return [b - a for a, b in itertools.pairwise(times)]

    @property
    def e2e(self) -> float:
        """Seconds from the scheduled start to the end."""
        return self.end - self.scheduled

    @property
    def lag(self) -> float:
        """How late it was sent: ``sent - scheduled`` in seconds."""
        return self.sent - self.scheduled

    def to_dict(self, origin: float) -> dict[str, Any]:
        """The JSON form: times in milliseconds, instants after ``origin`` (the step start).

        Keys: ``index``, ``ok``, ``scheduled_ms``, ``sent_ms``, ``lag_ms``, ``ttft_ms``,
        ``ttft_reasoning_ms``, ``tpot_ms``, ``e2e_ms``, ``itl_ms`` (a list), ``input_tokens``,
        ``usage_input_tokens``, ``output_tokens``, ``chunks`` (the stream events that
        carried answer text), ``finish_reason``, ``error``
        (``{"type", "message", "status"}`` or null).
        """

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000.0, 4)

        return {
            "index": self.index,
            "ok": self.ok,
            "scheduled_ms": ms(self.scheduled - origin),
            "sent_ms": ms(self.sent - origin),
            "lag_ms": ms(self.lag),
            "ttft_ms": ms(self.ttft),
            "ttft_reasoning_ms": ms(self.ttft_reasoning),
            "tpot_ms": ms(self.tpot),
            "e2e_ms": ms(self.e2e),
            "itl_ms": [round(gap * 1000.0, 4) for gap in self.itls],
            "input_tokens": self.input_tokens,
            "usage_input_tokens": self.usage_input_tokens,
            "output_tokens": self.generated_tokens,
            "chunks": self.answer_events,
            "finish_reason": self.finish_reason,
            "error": None
            if self.ok
            else {"type": self.error_type, "message": self.error, "status": self.status},
        }
