"""The OpenTelemetry example (``examples/opentelemetry_tracing.py``): the client's hooks as
spans with the GenAI semantic-convention attributes, checked with the SDK's in-memory
exporter."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, FAST_POLICY
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from reka_async import AsyncClient, Client
from reka_async.testing import MockRekaServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MSGS = [{"role": "user", "content": "What is the fifth prime number?"}]


@pytest.fixture(scope="module")
def tracing_module() -> Iterator[Any]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import opentelemetry_tracing

        yield opentelemetry_tracing
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture
def otel(tracing_module: Any) -> Iterator[tuple[Any, InMemorySpanExporter, Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    yield tracing_module.GenAITracing(tracer), exporter, tracer
    provider.shutdown()


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_chat_call_is_a_client_span_with_genai_attributes(
    server: MockRekaServer, otel: tuple[Any, InMemorySpanExporter, Any], api: Any
) -> None:
    tracing, exporter, tracer = otel
    async with AsyncClient(API_KEY, server.base_url, api=api, **tracing.hooks()) as client:
        with tracer.start_as_current_span("handler") as parent:
            response = await client.chat.create(
                messages=MSGS, model="reka-flash", max_tokens=64, temperature=0.2
            )
    spans = exporter.get_finished_spans()
    chat, handler = spans
    assert chat.name == "chat reka-flash"
    assert chat.kind is SpanKind.CLIENT
    assert chat.parent is not None
    assert chat.parent.span_id == parent.get_span_context().span_id
    attributes = _attrs(chat)
    assert attributes["gen_ai.system"] == "reka"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "reka-flash"
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.response.id"] == response.id
    assert attributes["gen_ai.response.model"] == response.model
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == response.usage.input_tokens > 0
    assert attributes["gen_ai.usage.output_tokens"] == response.usage.output_tokens > 0
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.port
    assert attributes["http.response.status_code"] == 200
    assert attributes["reka.request_id"] == response.request_id
    assert chat.status.status_code is StatusCode.UNSET
    assert handler.name == "handler"
    # No prompt or answer text on any span.
    for span in spans:
        for value in _attrs(span).values():
            assert "fifth prime" not in str(value)
            assert response.text not in str(value)


async def test_a_retried_call_is_one_span_per_attempt(
    server: MockRekaServer, otel: tuple[Any, InMemorySpanExporter, Any]
) -> None:
    tracing, exporter, tracer = otel
    async with AsyncClient(
        API_KEY, server.base_url, retry_policy=FAST_POLICY, **tracing.hooks()
    ) as client:
        server.inject("503")
        with tracer.start_as_current_span("handler"):
            await client.chat.create(messages=MSGS, model="reka-flash")
    failed, ok, handler = exporter.get_finished_spans()
    assert _attrs(failed)["http.response.status_code"] == 503
    assert _attrs(failed)["error.type"] == "InternalServerError"
    assert failed.status.status_code is StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in _attrs(failed)
    assert _attrs(ok)["http.request.resend_count"] == 1
    assert _attrs(ok)["gen_ai.usage.output_tokens"] > 0
    (event,) = handler.events
    assert event.name == "reka.retry"
    assert dict(event.attributes or {})["error.type"] == "InternalServerError"


async def test_a_stream_is_traced_without_usage(
    server: MockRekaServer, otel: tuple[Any, InMemorySpanExporter, Any]
) -> None:
    tracing, exporter, _ = otel
    async with AsyncClient(API_KEY, server.base_url, **tracing.hooks()) as client:
        async for _ in client.chat.create_stream(messages=MSGS, model="reka-flash"):
            pass
        await client.models.list()  # not a GenAI operation: no span
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat reka-flash"
    assert _attrs(span)["http.response.status_code"] == 200
    assert "gen_ai.usage.input_tokens" not in _attrs(span)


def test_the_sync_client_is_traced_too(otel: tuple[Any, InMemorySpanExporter, Any]) -> None:
    tracing, exporter, _ = otel
    with (
        MockRekaServer.in_thread(api_key=API_KEY) as server,
        Client(API_KEY, server.base_url, **tracing.hooks()) as client,
    ):
        client.chat.create(messages=MSGS, model="reka-flash")
    (span,) = exporter.get_finished_spans()
    assert _attrs(span)["gen_ai.usage.input_tokens"] > 0
