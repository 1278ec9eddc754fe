"""Tracing with OpenTelemetry: the client's hooks become spans with the GenAI attributes.

pip install "reka-async[otel]"
python examples/opentelemetry_tracing.py --mock                # native dialect
python examples/opentelemetry_tracing.py --mock --api openai   # the OpenAI-compatible one

Each HTTP attempt is one CLIENT span named ``chat <model>``, a child of whatever span is
current when the call is made, with the attributes of the OpenTelemetry semantic conventions
for generative AI: ``gen_ai.system``, ``gen_ai.operation.name``, ``gen_ai.request.*``,
``gen_ai.response.*``, ``gen_ai.usage.input_tokens``/``output_tokens``, ``server.*``,
``http.response.status_code`` and ``error.type``. A retry adds an event to the caller's span.
Prompts and answers are not recorded (they are personal data more often than not).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from _support import connection, parse_args
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from reka_async import AsyncClient, ChatResponse, RequestEvent, ResponseEvent, RetryEvent

#: Request fields and the attribute each one becomes.
REQUEST_ATTRIBUTES = {
    "max_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}


class GenAITracing:
    """``on_request``/``on_response``/``on_retry`` hooks that trace chat calls.

    Use as ``AsyncClient(**GenAITracing(tracer).hooks())`` (or ``Client(...)``).
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._spans: dict[RequestEvent, Span] = {}  # one per attempt in flight

    def hooks(self) -> dict[str, Any]:
        """The keyword arguments that install these hooks on a client."""
        return {
            "on_request": self.on_request,
            "on_response": self.on_response,
            "on_retry": self.on_retry,
        }

    def on_request(self, event: RequestEvent) -> None:
        if not event.path.startswith("/chat"):
            return  # only chat calls are GenAI operations
        body = json.loads(event.body) if event.body else {}
        url = urlsplit(event.url)
        model = body.get("model", "")
        attributes: dict[str, Any] = {
            "gen_ai.system": "reka",
            "gen_ai.provider.name": "reka",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "server.address": url.hostname or "",
            "server.port": url.port or (443 if url.scheme == "https" else 80),
            "http.request.method": event.method,
        }
        for field, name in REQUEST_ATTRIBUTES.items():
            if body.get(field) is not None:
                attributes[name] = body[field]
        if event.attempt:
            attributes["http.request.resend_count"] = event.attempt
        self._spans[event] = self._tracer.start_span(
            f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes
        )

    def on_response(self, event: ResponseEvent) -> None:
        span = self._spans.pop(event.request, None)
        if span is None:
            return
        if event.status_code is not None:
            span.set_attribute("http.response.status_code", event.status_code)
        if event.request_id:
            span.set_attribute("reka.request_id", event.request_id)
        response = event.response
        if isinstance(response, ChatResponse):
            span.set_attribute("gen_ai.response.id", response.id)
            span.set_attribute("gen_ai.response.model", response.model)
            reasons = [r.finish_reason for r in response.responses if r.finish_reason]
            span.set_attribute("gen_ai.response.finish_reasons", reasons)
            span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
        if event.error is not None:
            span.set_attribute("error.type", type(event.error).__name__)
            span.set_status(Status(StatusCode.ERROR, type(event.error).__name__))
        span.end()

    def on_retry(self, event: RetryEvent) -> None:
        trace.get_current_span().add_event(
            "reka.retry",
            {
                "reka.attempt": event.attempt,
                "reka.delay_s": event.delay,
                "error.type": type(event.error).__name__,
            },
        )


async def main() -> None:
    args = parse_args(__doc__ or "")
    # In production: a BatchSpanProcessor with an OTLP exporter instead of the in-memory one.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("reka-example")
    tracing = GenAITracing(tracer)
    async with connection(args) as conn, AsyncClient(**conn, **tracing.hooks()) as client:
        with tracer.start_as_current_span("answer a question"):
            response = await client.chat.create(
                messages=[{"role": "user", "content": "What is the fifth prime number?"}],
                model="reka-flash",
                max_tokens=64,
            )
    print(f"answer: {response.text}")
    for span in exporter.get_finished_spans():
        attributes = dict(span.attributes or {})
        if "gen_ai.system" not in attributes:
            continue  # the example's own parent span
        usage = (
            attributes.get("gen_ai.usage.input_tokens"),
            attributes.get("gen_ai.usage.output_tokens"),
        )
        print(f"span {span.name}: system={attributes.get('gen_ai.system')} usage={usage}")


if __name__ == "__main__":
    asyncio.run(main())
