"""Raw responses (``with_raw_response``), ``response.request_id``, ``client.rate_limit``, and
the public ``on_request``/``on_response``/``on_retry`` hooks."""

from __future__ import annotations

import json

import pytest
from conftest import API_KEY, FAST_POLICY

from reka_async import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncClient,
    ChatResponse,
    Client,
    InternalServerError,
    RawResponse,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
)
from reka_async.testing import MockRekaServer

MSGS = [{"role": "user", "content": "hi"}]


# --- request ids and rate limits ---------------------------------------------------------------


@pytest.mark.parametrize("api", ["native", "openai"])
async def test_a_response_carries_its_request_id(client: AsyncClient, api: str) -> None:
    response = await client.chat.create(messages=MSGS, model="reka-flash", api=api)  # type: ignore[arg-type]
    assert response.request_id is not None
    assert response.request_id.startswith("req_")
    assert "request_id" not in response.to_dict()
    again = await client.chat.create(messages=MSGS, model="reka-flash", api=api)  # type: ignore[arg-type]
    assert again.request_id != response.request_id


async def test_a_streamed_response_carries_its_request_id(client: AsyncClient) -> None:
    async with client.chat.create_stream(messages=MSGS, model="reka-flash") as stream:
        final = await stream.final_response()
    assert final.request_id == stream.request_id
    assert stream.request_id is not None
    assert stream.headers["x-ratelimit-limit"]


async def test_rate_limit_headers_are_readable_after_a_call(client: AsyncClient) -> None:
    assert client.rate_limit is None
    response = await client.chat.create(messages=MSGS, model="reka-flash")
    limit = client.rate_limit
    assert limit is not None
    assert limit.request_id == response.request_id
    assert limit.limit is not None
    assert limit.remaining is not None
    assert limit.remaining < limit.limit
    assert limit.reset is not None
    assert limit.reset_in is not None
    assert limit.reset_in >= 0
    assert client.with_options(max_retries=0).rate_limit == limit  # same key, same window


async def test_rate_limit_after_a_429_has_the_servers_wait(
    server: MockRekaServer, client: AsyncClient
) -> None:
    server.inject("rate_limit")
    with_none = client.with_options(max_retries=0)
    with pytest.raises(Exception, match="429"):
        await with_none.chat.create(messages=MSGS, model="reka-flash")
    limit = client.rate_limit
    assert limit is not None
    assert limit.retry_after is not None
    assert limit.remaining == 0


# --- raw responses ---------------------------------------------------------------------------


async def test_raw_response_gives_status_headers_body_and_the_parsed_response(
    server: MockRekaServer, client: AsyncClient
) -> None:
    raw = await client.chat.with_raw_response.create(messages=MSGS, model="reka-flash")
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers["X-Request-Id"] == raw.request_id  # case-insensitive
    assert raw.headers["x-ratelimit-remaining"]
    response = raw.parse()
    assert isinstance(response, ChatResponse)
    assert response.request_id == raw.request_id
    assert raw.json()["responses"][0]["message"]["content"] == response.text
    assert json.loads(raw.text) == raw.json()
    assert raw.retries_taken == 0
    assert raw.elapsed_s >= 0


async def test_raw_response_of_the_openai_dialect_keeps_its_body(client: AsyncClient) -> None:
    raw = await client.chat.with_raw_response.create(
        messages=MSGS, model="reka-flash", api="openai"
    )
    body = raw.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == raw.parse().text
    # The model itself is in the native layout whichever dialect answered.
    assert raw.parse().to_dict()["responses"][0]["message"]["content"] == raw.parse().text


async def test_raw_response_counts_the_retries(server: MockRekaServer, client: AsyncClient) -> None:
    server.inject("500", "502")
    raw = await client.chat.with_raw_response.create(messages=MSGS, model="reka-flash")
    assert raw.retries_taken == 2
    assert raw.status_code == 200


async def test_raw_response_raises_like_the_plain_call(
    server: MockRekaServer, client: AsyncClient
) -> None:
    server.inject("500", "500", "500")
    with pytest.raises(InternalServerError):
        await client.chat.with_raw_response.create(messages=MSGS, model="reka-flash")


async def test_raw_models_list(client: AsyncClient) -> None:
    raw = await client.models.with_raw_response.list()
    assert raw.status_code == 200
    assert [m.id for m in raw.parse()]
    assert raw.request_id


def test_raw_response_in_the_sync_client() -> None:
    with (
        MockRekaServer.in_thread(api_key=API_KEY) as server,
        Client(API_KEY, server.base_url) as client,
    ):
        raw = client.chat.with_raw_response.create(messages=MSGS, model="reka-flash")
        assert raw.status_code == 200
        assert raw.parse().request_id == raw.request_id
        assert client.models.with_raw_response.list().status_code == 200
        assert client.rate_limit is not None


# --- hooks -----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_request(self, event: RequestEvent) -> None:
        self.events.append(("request", event))

    def on_response(self, event: ResponseEvent) -> None:
        self.events.append(("response", event))

    def on_retry(self, event: RetryEvent) -> None:
        self.events.append(("retry", event))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


@pytest.fixture
async def hooked(server: MockRekaServer) -> tuple[AsyncClient, Recorder]:
    recorder = Recorder()
    client = AsyncClient(
        API_KEY,
        server.base_url,
        retry_policy=FAST_POLICY,
        on_request=recorder.on_request,
        on_response=[recorder.on_response],
        on_retry=recorder.on_retry,
    )
    return client, recorder


async def test_hooks_see_every_attempt_in_order(
    server: MockRekaServer, hooked: tuple[AsyncClient, Recorder]
) -> None:
    client, recorder = hooked
    async with client:
        server.inject("503")
        response = await client.chat.create(messages=MSGS, model="reka-flash")
    assert recorder.kinds == ["request", "response", "retry", "request", "response"]
    first, failed, retry, second, answered = (e for _, e in recorder.events)
    assert isinstance(first, RequestEvent)
    assert isinstance(second, RequestEvent)
    assert (first.method, first.path, first.attempt, first.stream) == ("POST", "/chat", 0, False)
    assert second.attempt == 1
    assert first.url == f"{server.base_url}/chat"
    assert first.body is not None
    assert json.loads(first.body)["model"] == "reka-flash"
    assert isinstance(failed, ResponseEvent)
    assert isinstance(answered, ResponseEvent)
    assert failed.request is first
    assert answered.request is second
    assert failed.status_code == 503
    assert isinstance(failed.error, InternalServerError)
    assert failed.response is None
    assert isinstance(retry, RetryEvent)
    assert retry.attempt == 0
    assert answered.status_code == 200
    assert answered.error is None
    assert answered.response == response
    assert answered.request_id == response.request_id
    assert answered.headers["x-ratelimit-limit"]
    assert answered.content is not None
    assert json.loads(answered.content)["id"] == response.id
    assert answered.elapsed_s >= 0


async def test_hooks_see_an_attempt_without_an_answer(hooked: tuple[AsyncClient, Recorder]) -> None:
    _, recorder = hooked
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncClient(
        API_KEY,
        f"http://127.0.0.1:{port}/v1",
        max_retries=0,
        on_request=recorder.on_request,
        on_response=recorder.on_response,
    ) as client:
        with pytest.raises(APIConnectionError):
            await client.models.list()
    (_, request), (_, answer) = recorder.events
    assert isinstance(answer, ResponseEvent)
    assert answer.request is request
    assert answer.status_code is None
    assert isinstance(answer.error, APIConnectionError)
    assert dict(answer.headers) == {}
    assert answer.content is None


async def test_hooks_see_a_stream_open(
    server: MockRekaServer, hooked: tuple[AsyncClient, Recorder]
) -> None:
    client, recorder = hooked
    async with client:
        server.inject("500")
        async with client.chat.create_stream(messages=MSGS, model="reka-flash") as stream:
            await stream.final_response()
    assert recorder.kinds == ["request", "response", "retry", "request", "response"]
    requests = [e for k, e in recorder.events if k == "request"]
    answers = [e for k, e in recorder.events if k == "response"]
    assert all(isinstance(r, RequestEvent) and r.stream for r in requests)
    assert [r.attempt for r in requests if isinstance(r, RequestEvent)] == [0, 1]
    assert [a.status_code for a in answers if isinstance(a, ResponseEvent)] == [500, 200]
    last = answers[-1]
    assert isinstance(last, ResponseEvent)
    assert last.request_id == stream.request_id


async def test_a_per_call_hook_comes_after_the_clients(
    server: MockRekaServer, hooked: tuple[AsyncClient, Recorder]
) -> None:
    client, recorder = hooked
    order: list[str] = []
    async with client:
        await client.chat.send_body(
            {"model": "reka-flash", "messages": MSGS},
            on_response=lambda e: order.append(f"call after {len(recorder.events)}"),
        )
    assert order == ["call after 2"]


async def test_an_exception_in_a_hook_reaches_the_caller(server: MockRekaServer) -> None:
    def broken(event: RequestEvent) -> None:
        raise RuntimeError("metrics backend down")

    async with AsyncClient(API_KEY, server.base_url, on_request=broken) as client:
        with pytest.raises(RuntimeError, match="metrics backend down"):
            await client.chat.create(messages=MSGS, model="reka-flash")
    assert server.requests == []


def test_a_hook_that_is_not_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="on_response"):
        AsyncClient(API_KEY, on_response=[print, "not a hook"])  # type: ignore[list-item]


async def test_hook_events_never_hold_the_key(
    server: MockRekaServer, hooked: tuple[AsyncClient, Recorder]
) -> None:
    client, recorder = hooked
    async with client:
        await client.chat.create(messages=MSGS, model="reka-flash", api="openai")
    for _, event in recorder.events:
        assert API_KEY not in repr(event)
        if isinstance(event, RequestEvent):
            assert event.body is not None
            assert API_KEY.encode() not in event.body


async def test_hooks_see_a_body_of_the_wrong_shape(
    server: MockRekaServer, hooked: tuple[AsyncClient, Recorder]
) -> None:
    client, recorder = hooked
    async with client:
        server.inject("wrong_shape")
        with pytest.raises(APIResponseValidationError):
            await client.chat.create(messages=MSGS, model="reka-flash")
    assert recorder.kinds == ["request", "response"]  # not retried
    answer = recorder.events[1][1]
    assert isinstance(answer, ResponseEvent)
    assert answer.status_code == 200
    assert isinstance(answer.error, APIResponseValidationError)
    assert answer.response is None
    assert answer.content


async def test_hooks_see_a_stream_attempt_that_got_no_answer(
    server: MockRekaServer, hooked: tuple[AsyncClient, Recorder]
) -> None:
    client, recorder = hooked
    async with client:
        server.inject("drop")
        async with client.chat.create_stream(messages=MSGS, model="reka-flash") as stream:
            await stream.final_response()
    answers = [e for k, e in recorder.events if k == "response"]
    first = answers[0]
    assert isinstance(first, ResponseEvent)
    assert first.status_code is None
    assert isinstance(first.error, APIConnectionError)
    assert len([k for k in recorder.kinds if k == "request"]) == len(answers)
