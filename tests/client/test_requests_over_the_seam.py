"""AsyncClient request building, configuration, error mapping and lifecycle: every attempt is
answered in-process by a ``MockTransport``; the few tests about aiohttp's own behaviour (what it
raises, redirects) run over a real loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from _seam import answers, client_over
from aiohttp import web

from reka_async import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    ImagePart,
    InternalServerError,
    InvalidRequestError,
    Message,
    MissingAPIKeyError,
    Model,
    RetryPolicy,
    TextPart,
    Timeout,
    __version__,
)
from reka_async.testing import MockRekaServer, MockResponse, MockTransport

BASE = "https://api.reka.ai/v1"
CHAT_URL = f"{BASE}/chat"
MODELS_URL = f"{BASE}/models"
SECRET = "sk-very-secret-key-0123456789"
HI = [{"role": "user", "content": "Hi"}]

REPLY = {
    "id": "chat-1",
    "model": "reka-flash",
    "responses": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "Hello"}}],
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


def chat(*responses: MockResponse | BaseException, repeat: bool = False) -> MockTransport:
    """A transport answering ``POST /v1/chat`` (any other request fails the test)."""
    return answers(*responses, repeat=repeat, url=CHAT_URL)


def client_of(transport: MockTransport, **options: Any) -> AsyncClient:
    """A client with the secret key whose attempts all go to ``transport``."""
    return client_over(transport, SECRET, **options)


BUSY = MockResponse(503, content=b"busy")


# --- what goes on the wire ------------------------------------------------------------------


async def test_default_headers_are_sent() -> None:
    transport = chat(MockResponse(json=REPLY))
    async with client_of(transport) as client:
        await client.chat.create(model="reka-flash", messages=HI)
    (request,) = transport.requests
    headers = request.headers
    assert headers["X-Api-Key"] == SECRET
    assert headers["User-Agent"] == f"reka-async/{__version__}"
    assert headers["Content-Type"] == "application/json"


async def test_json_body_has_the_documented_shape() -> None:
    transport = chat(MockResponse(json=REPLY))
    async with client_of(transport) as client:
        await client.chat.create(
            model="reka-core",
            messages=[
                Message(
                    role="user",
                    content=[ImagePart(image_url="https://x/c.png"), TextPart(text="?")],
                ),
                {"role": "assistant", "content": "A cat"},
                {"role": "user", "content": "Sure?"},
            ],
            max_tokens=32,
            temperature=0.0,
            stop=("END",),
        )
    (request,) = transport.requests
    assert request.json() == {
        "model": "reka-core",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": "https://x/c.png"},
                    {"type": "text", "text": "?"},
                ],
            },
            {"role": "assistant", "content": "A cat"},
            {"role": "user", "content": "Sure?"},
        ],
        "max_tokens": 32,
        "temperature": 0.0,
        "stop": ["END"],
    }


async def test_response_is_parsed() -> None:
    async with client_of(chat(MockResponse(json=REPLY))) as client:
        resp = await client.chat.create(model="reka-flash", messages=HI)
    assert resp.text == "Hello"
    assert resp.responses[0].message.content == "Hello"
    assert resp.usage.output_tokens == 1


async def test_a_single_stop_string_is_sent_as_one_stop_sequence() -> None:
    transport = chat(MockResponse(json=REPLY))
    async with client_of(transport) as client:
        await client.chat.create(model="reka-flash", messages=HI, stop="END")
    (request,) = transport.requests
    assert request.json()["stop"] == ["END"]


@pytest.mark.parametrize("kwargs", [{"stop": 5}, {"tools": 5}, {"temperature": "warm"}])
async def test_invalid_arguments_raise_before_anything_is_sent(kwargs: dict[str, Any]) -> None:
    transport = chat()
    async with client_of(transport) as client:
        with pytest.raises(InvalidRequestError):
            await client.chat.create(model="reka-flash", messages=HI, **kwargs)
        with pytest.raises(InvalidRequestError):
            client.chat.create_stream(model="reka-flash", messages=HI, **kwargs)
    assert transport.requests == []


async def test_extra_headers_are_added_to_one_request() -> None:
    transport = chat(MockResponse(json=REPLY), repeat=True)
    async with client_of(transport) as client:
        await client.chat.create(model="reka-flash", messages=HI, extra_headers={"X-Trace": "t1"})
        await client.chat.create(model="reka-flash", messages=HI)
    first, second = transport.requests
    assert first.headers["X-Trace"] == "t1"
    assert first.headers["X-Api-Key"] == SECRET
    assert "X-Trace" not in second.headers


async def test_extra_headers_cannot_set_the_api_key() -> None:
    transport = chat()
    async with client_of(transport) as client:
        with pytest.raises(ValueError, match="api_key"):
            await client.chat.create(
                model="reka-flash", messages=HI, extra_headers={"x-api-key": "other"}
            )
    assert transport.requests == []


async def test_default_headers_are_sent_with_every_request() -> None:
    transport = chat(MockResponse(json=REPLY))
    async with client_of(transport, default_headers={"X-Team": "search"}) as client:
        await client.chat.create(model="reka-flash", messages=HI)
    (request,) = transport.requests
    assert request.headers["X-Team"] == "search"


async def test_extra_body_is_merged_into_the_sent_json() -> None:
    transport = chat(MockResponse(json=REPLY))
    async with client_of(transport) as client:
        await client.chat.create(
            model="reka-flash", messages=HI, extra_body={"new_feature": {"on": True}}
        )
    (request,) = transport.requests
    assert request.json() == {"model": "reka-flash", "messages": HI, "new_feature": {"on": True}}


async def test_per_request_max_retries_zero_sends_once() -> None:
    transport = chat(BUSY, repeat=True)
    async with client_of(transport, max_retries=3) as client:
        with pytest.raises(InternalServerError):
            await client.chat.create(model="reka-flash", messages=HI, max_retries=0)
    assert len(transport.requests) == 1


async def test_client_max_retries_bounds_the_attempts() -> None:
    transport = chat(BUSY, repeat=True)
    async with client_of(transport, max_retries=3) as client:
        with pytest.raises(InternalServerError):
            await client.chat.create(model="reka-flash", messages=HI)
    assert len(transport.requests) == 4


async def test_retry_then_success_returns_the_response() -> None:
    transport = chat(MockResponse(500, content=b"oops"), MockResponse(json=REPLY))
    async with client_of(transport) as client:
        resp = await client.chat.create(model="reka-flash", messages=HI)
    assert resp.text == "Hello"
    assert len(transport.requests) == 2


async def test_retry_policy_max_retries_bounds_the_attempts() -> None:
    # Regression: RetryPolicy.max_retries was never read, so a policy's count did nothing.
    transport = chat(BUSY, repeat=True)
    policy = RetryPolicy(max_retries=4, base=0.001, cap=0.01)
    async with client_of(transport, retry_policy=policy) as client:
        assert client.max_retries == 4
        with pytest.raises(InternalServerError):
            await client.chat.create(model="reka-flash", messages=HI)
    assert len(transport.requests) == 5


def test_max_retries_keyword_overrides_the_policy() -> None:
    client = AsyncClient(SECRET, max_retries=1, retry_policy=RetryPolicy(max_retries=6, base=2.0))
    assert client.retry_policy == RetryPolicy(max_retries=1, base=2.0)
    assert client.max_retries == 1


def test_retry_policy_gives_up_after_its_own_max_retries() -> None:
    error = InternalServerError("HTTP 503", status_code=503, body=None)
    policy = RetryPolicy(max_retries=1)
    assert policy.delay_for(error, 0) is not None
    assert policy.delay_for(error, 1) is None
    assert policy.delay_for(error, 1, 3) is not None  # a call's own budget wins


async def test_client_timeout_number_is_coerced_like_a_call_timeout() -> None:
    # Regression: AsyncClient(timeout=5) kept connect=10 while a call's timeout=5 capped it.
    expected = Timeout(connect=5.0, read=5.0, total=5.0)
    assert AsyncClient(SECRET, timeout=5).timeout == expected
    assert AsyncClient(SECRET, timeout=5.0).timeout == expected
    transport = chat(MockResponse(json=REPLY))
    async with client_of(transport) as client:
        await client.chat.create(model="reka-flash", messages=HI, timeout=5)
    (request,) = transport.requests
    assert request.timeout == expected
    # What the network transport hands aiohttp for a plain request.
    converted = request.timeout.to_aiohttp_plain()
    assert converted.sock_connect == expected.connect
    assert converted.total == expected.total


@pytest.mark.parametrize("value", [0, -1, 0.0, float("nan"), True, "5"])
async def test_invalid_timeout_is_rejected_by_the_client_and_by_a_call(value: Any) -> None:
    # Regression: the client accepted timeout=0 while a call rejected it.
    with pytest.raises(ValueError, match="timeout: must be a positive number"):
        AsyncClient(SECRET, timeout=value)
    async with AsyncClient(SECRET) as client:
        with pytest.raises(ValueError, match="timeout: must be a positive number"):
            await client.chat.create(model="reka-flash", messages=HI, timeout=value)


@pytest.mark.parametrize("value", [-1, True])
def test_invalid_max_retries_is_rejected(value: Any) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        AsyncClient(SECRET, max_retries=value)


@pytest.mark.parametrize("value", [0, -2.5, "10"])
async def test_invalid_per_request_timeout_is_rejected(value: Any) -> None:
    transport = chat()
    async with client_of(transport) as client:
        with pytest.raises(ValueError, match="timeout"):
            await client.chat.create(model="reka-flash", messages=HI, timeout=value)
    assert transport.requests == []


# --- configuration ----------------------------------------------------------------------------


def test_missing_key_names_the_environment_variable() -> None:
    with pytest.raises(MissingAPIKeyError, match="REKA_API_KEY"):
        AsyncClient()


def test_empty_key_is_missing() -> None:
    with pytest.raises(MissingAPIKeyError):
        AsyncClient(api_key="")


async def test_environment_is_read_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REKA_API_KEY", "env-key")
    monkeypatch.setenv("REKA_BASE_URL", "https://proxy.example.com/reka/v1")
    transport = answers(MockResponse(json=REPLY), url="https://proxy.example.com/reka/v1/chat")
    client = AsyncClient(transport=transport)
    monkeypatch.setenv("REKA_API_KEY", "changed-later")
    monkeypatch.setenv("REKA_BASE_URL", "https://elsewhere.example.com/v1")
    async with client:
        assert client.base_url == "https://proxy.example.com/reka/v1"
        await client.chat.create(model="reka-flash", messages=HI)
    (request,) = transport.requests
    assert str(request.url) == "https://proxy.example.com/reka/v1/chat"
    assert request.headers["X-Api-Key"] == "env-key"


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REKA_API_KEY", "env-key")
    monkeypatch.setenv("REKA_BASE_URL", "https://proxy.example.com/v1")
    client = AsyncClient("arg-key", "https://api.example.org/v1/")
    assert client.base_url == "https://api.example.org/v1"


def test_default_base_url() -> None:
    assert AsyncClient(SECRET).base_url == "https://api.reka.ai/v1"


@pytest.mark.parametrize(
    "url",
    ["http://api.example.com/v1", "http://10.0.0.5:8000/v1", "http://127.0.0.1.example.com/v1"],
)
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="allow_insecure_http"):
        AsyncClient(SECRET, url)


def test_plain_http_to_a_remote_host_is_allowed_on_request() -> None:
    client = AsyncClient(SECRET, "http://10.0.0.5:8000/v1", allow_insecure_http=True)
    assert client.base_url == "http://10.0.0.5:8000/v1"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/v1",
        "http://127.0.0.1:8000/v1",
        "http://127.5.6.7/v1",
        "http://[::1]:8000/v1",
        "http://api.localhost/v1",
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert AsyncClient(SECRET, url).base_url == url


@pytest.mark.parametrize("url", ["ftp://api.example.com/v1", "api.reka.ai/v1", "https:///v1"])
def test_base_url_must_be_http_or_https(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        AsyncClient(SECRET, url)


# --- secrets ----------------------------------------------------------------------------------


def test_key_is_not_in_repr_of_the_client() -> None:
    client = AsyncClient(SECRET)
    assert SECRET not in repr(client)
    assert "api.reka.ai" in repr(client)


def assert_no_secret(err: APIError) -> None:
    for text in (str(err), repr(err), str(err.__cause__), repr(err.__cause__), repr(vars(err))):
        assert SECRET not in text


@pytest.mark.parametrize(
    "answer",
    [
        MockResponse(401, content=json.dumps({"error": {"type": "authentication_error"}})),
        MockResponse(500, content="<html>oops</html>"),
        MockResponse(200, content="not json"),
        ConnectionRefusedError("Connection refused"),
        ConnectionResetError("Connection reset by peer"),
        asyncio.TimeoutError(),
    ],
    ids=["401", "500", "bad-200", "refused", "reset", "timeout"],
)
async def test_key_is_not_in_any_raised_error(answer: MockResponse | BaseException) -> None:
    async with client_of(chat(answer), max_retries=0) as client:
        with pytest.raises(APIError) as info:
            await client.chat.create(model="reka-flash", messages=HI)
    assert_no_secret(info.value)


@contextlib.asynccontextmanager
async def refused_url() -> AsyncIterator[str]:
    """The base URL of a mock server that has stopped: connecting to it is refused."""
    async with MockRekaServer() as gone:
        url = gone.base_url
    yield url


@contextlib.asynccontextmanager
async def faulty_url(fault: str) -> AsyncIterator[str]:
    """The base URL of a mock server whose next request suffers ``fault``."""
    async with MockRekaServer(api_key=SECRET) as server:
        server.inject(fault)
        yield server.base_url


#: aiohttp's own failures over a real socket: how to provoke each and what aiohttp raises.
AIOHTTP_FAILURES = {
    "connection": (refused_url, aiohttp.ClientConnectionError),
    "disconnected": (lambda: faulty_url("drop"), aiohttp.ServerDisconnectedError),
    "payload": (lambda: faulty_url("cut"), aiohttp.ClientPayloadError),
}


@pytest.mark.parametrize("kind", ["connection", "disconnected"])
async def test_key_is_not_in_an_aiohttp_error(kind: str) -> None:
    provoke, cause = AIOHTTP_FAILURES[kind]
    async with provoke() as url, AsyncClient(SECRET, url, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.chat.create(model="reka-flash", messages=HI)
    assert isinstance(info.value.__cause__, cause)
    assert_no_secret(info.value)


@contextlib.asynccontextmanager
async def serving(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """An aiohttp application answering every path with ``handle`` on a free loopback port;
    yields its URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_redirect_is_not_followed() -> None:
    # Over a socket: whether a redirect is followed is aiohttp's behaviour (allow_redirects).
    seen: list[str] = []

    async def collect(request: web.Request) -> web.Response:
        seen.append(f"collector {request.method} {request.path}")
        return web.json_response(REPLY)

    async with serving(collect) as collector:
        target = f"{collector}/collect"

        async def redirect(request: web.Request) -> web.Response:
            seen.append(f"api {request.method} {request.path}")
            return web.Response(status=307, headers={"Location": target, "x-request-id": "req_r"})

        async with serving(redirect) as api, AsyncClient(SECRET, f"{api}/v1") as client:
            with pytest.raises(APIStatusError) as info:
                await client.chat.create(model="reka-flash", messages=HI)
    assert type(info.value) is APIStatusError
    assert info.value.status_code == 307
    assert target in str(info.value)
    assert "req_r" in str(info.value)
    assert seen == ["api POST /v1/chat"]  # not followed, and not retried either


# --- responses that are not what they should be -------------------------------------------


async def test_html_502_becomes_internal_server_error_with_snippet() -> None:
    html = "<html><head><title>502</title></head><body><h1>Bad Gateway</h1></body></html>"
    transport = chat(
        MockResponse(
            502, content=html, headers={"content-type": "text/html", "x-request-id": "req_502"}
        )
    )
    async with client_of(transport, max_retries=0) as client:
        with pytest.raises(InternalServerError) as info:
            await client.chat.create(model="reka-flash", messages=HI)
    err = info.value
    assert err.status_code == 502
    assert err.body == html
    assert "Bad Gateway" in str(err)
    assert err.request_id == "req_502"


async def test_non_json_200_becomes_response_validation_error() -> None:
    transport = chat(
        MockResponse(200, content="Hello, I am not JSON", headers={"x-request-id": "r1"}),
        repeat=True,
    )
    async with client_of(transport) as client:
        with pytest.raises(APIResponseValidationError) as info:
            await client.chat.create(model="reka-flash", messages=HI)
    err = info.value
    assert err.status_code == 200
    assert err.body == "Hello, I am not JSON"
    assert "Hello, I am not JSON" in str(err)
    assert err.request_id == "r1"
    assert len(transport.requests) == 1  # a complete (if bad) answer is not retried


async def test_wrong_shape_200_becomes_response_validation_error() -> None:
    transport = chat(MockResponse(json={"choices": [{"text": "this is another API"}]}))
    async with client_of(transport) as client:
        with pytest.raises(APIResponseValidationError, match="choices"):
            await client.chat.create(model="reka-flash", messages=HI)


async def test_401_becomes_authentication_error_and_is_not_retried() -> None:
    error = {"error": {"type": "authentication_error", "message": "Invalid key"}}
    transport = chat(MockResponse(401, content=json.dumps(error)), repeat=True)
    async with client_of(transport, max_retries=3) as client:
        with pytest.raises(AuthenticationError, match="Invalid key"):
            await client.chat.create(model="reka-flash", messages=HI)
    assert len(transport.requests) == 1


@pytest.mark.parametrize(
    ("exception", "cls"),
    [
        (ConnectionRefusedError("refused"), APIConnectionError),
        (ConnectionResetError("reset by peer"), APIConnectionError),
        (asyncio.TimeoutError(), APITimeoutError),
    ],
    ids=["refused", "reset", "timeout"],
)
async def test_network_exceptions_are_translated(
    exception: Exception, cls: type[Exception]
) -> None:
    async with client_of(chat(exception), max_retries=0) as client:
        with pytest.raises(cls) as info:
            await client.chat.create(model="reka-flash", messages=HI)
    assert type(info.value) is cls
    assert info.value.__cause__ is exception


@pytest.mark.parametrize("kind", ["connection", "disconnected", "payload"])
async def test_aiohttp_exceptions_are_translated(kind: str) -> None:
    # Over a socket: these are raised by aiohttp itself, not by a transport of the tests.
    provoke, cause = AIOHTTP_FAILURES[kind]
    async with provoke() as url, AsyncClient(SECRET, url, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.chat.create(model="reka-flash", messages=HI)
    assert type(info.value) is APIConnectionError
    assert isinstance(info.value.__cause__, cause)


# --- models -------------------------------------------------------------------------------


async def test_models_list() -> None:
    transport = answers(
        MockResponse(json=[{"id": "reka-core"}, {"id": "reka-flash", "extra": 1}]),
        url=MODELS_URL,
        method="GET",
    )
    async with client_of(transport) as client:
        models = await client.models.list()
    assert models == [Model(id="reka-core"), Model(id="reka-flash")]
    (request,) = transport.requests
    assert request.headers["X-Api-Key"] == SECRET


async def test_models_get_is_the_vendor_alias() -> None:
    transport = answers(MockResponse(json=[{"id": "reka-edge"}]), url=MODELS_URL, method="GET")
    async with client_of(transport) as client:
        assert await client.models.get() == [Model(id="reka-edge")]


# --- lifecycle ------------------------------------------------------------------------------


async def test_unclosed_client_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions: list[aiohttp.ClientSession] = []
    real_session = aiohttp.ClientSession

    def recording_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        sessions.append(real_session(*args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr(aiohttp, "ClientSession", recording_session)
    client = AsyncClient(SECRET)
    await client.__aenter__()  # opens the pool without closing it
    (session,) = sessions
    try:
        # gc.collect() frees the client even if a reference cycle holds it.
        with pytest.warns(ResourceWarning, match="never closed"):  # noqa: PT031
            del client
            gc.collect()
    finally:
        await session.close()


async def test_unopened_client_does_not_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = AsyncClient(SECRET)
        del client
        gc.collect()  # frees the client even if a reference cycle holds it
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_closing_twice_is_fine() -> None:
    client = AsyncClient(SECRET)
    async with client:
        assert not client.is_closed
    await client.aclose()
    assert client.is_closed
    assert "closed" in repr(client)


async def test_closed_client_cannot_be_used() -> None:
    transport = answers()
    async with client_of(transport) as client:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await client.chat.create(model="reka-flash", messages=HI)
    with pytest.raises(RuntimeError, match="closed"):
        await client.models.list()
    with pytest.raises(RuntimeError, match="closed"):
        async for _ in client.chat.create_stream(model="reka-flash", messages=HI):
            pass
    assert transport.requests == []
    assert transport.closed


async def test_closed_client_cannot_be_reopened() -> None:
    client = AsyncClient(SECRET)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass
