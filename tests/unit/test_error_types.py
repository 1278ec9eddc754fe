"""Error mapping (status, body, headers -> exception) and the retry policy."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import pytest
from _seam import answers, client_over
from hypothesis import given, settings
from hypothesis import strategies as st

from reka_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientCreditsError,
    InternalServerError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    StreamError,
    UnprocessableEntityError,
)
from reka_async._exceptions import body_snippet, make_status_error
from reka_async._http.retry import parse_retry_after
from reka_async.testing import MockResponse

CHAT_URL = "https://api.reka.ai/v1/chat"
NOW = 1_750_000_000.0


def error_body(etype: str, message: str) -> bytes:
    return json.dumps({"error": {"type": etype, "message": message}}).encode()


# --- status -> class ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (405, MethodNotAllowedError),
        (408, RequestTimeoutError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
        (418, APIStatusError),
        (451, APIStatusError),
    ],
)
def test_status_maps_to_its_error_class(status: int, cls: type[APIStatusError]) -> None:
    err = make_status_error(status, error_body("some_error", "boom"), {})
    assert type(err) is cls
    assert err.status_code == status


# --- body shapes --------------------------------------------------------------------------------


def test_general_error_shape_is_parsed() -> None:
    raw = json.dumps(
        {"error": {"type": "validation_error", "message": "max_tokens too big", "param": "x"}}
    ).encode()
    err = make_status_error(400, raw, {})
    assert err.error_type == "validation_error"
    assert "max_tokens too big" in str(err)
    assert err.body == json.loads(raw)


def test_fastapi_detail_shape_is_parsed_with_detail_attribute() -> None:
    detail = [
        {"loc": ["body", "messages", 0, "role"], "msg": "Input should be 'user'", "type": "x"},
        {"loc": ["body", "temperature"], "msg": "Input should be a valid number", "type": "y"},
    ]
    err = make_status_error(422, json.dumps({"detail": detail}).encode(), {})
    assert isinstance(err, UnprocessableEntityError)
    assert err.detail == detail
    assert err.body == {"detail": detail}
    assert "messages.0.role: Input should be 'user'" in str(err)
    assert "temperature: Input should be a valid number" in str(err)


def test_html_body_is_kept_raw_and_summarised() -> None:
    html = "<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>"
    err = make_status_error(502, html.encode(), {"content-type": "text/html"})
    assert isinstance(err, InternalServerError)
    assert err.body == html
    assert "502 Bad Gateway" in str(err)


def test_long_body_snippet_is_bounded() -> None:
    err = make_status_error(500, b"<p>" + b"x" * 10_000 + b"</p>", {})
    assert len(str(err)) < 400
    assert err.body.endswith("</p>")  # the raw body itself is kept whole


def test_body_snippet_collapses_whitespace() -> None:
    assert body_snippet(b"a\n\n  b\tc") == "a b c"


def test_empty_body_says_so() -> None:
    err = make_status_error(503, b"", {})
    assert err.body is None
    assert "empty body" in str(err)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[1, 2]",
        b"42",
        b'"just a string"',
        b'{"error": null}',
        b'{"error": 5}',
        b'{"error": "plain message"}',
        b'{"error": {"type": 5, "message": ["x"]}}',
        b'{"detail": "Not authenticated"}',
        b'{"detail": [1, "x", null]}',
        b'{"detail": [{"loc": 5, "msg": "m"}]}',
        b'{"detail": [{"loc": null}]}',
        b'{"detail": {"loc": []}}',
        b'{"message": "top-level message"}',
        b'{"truncated": ',
        b"\xff\xfe\x00garbage",
    ],
)
@pytest.mark.parametrize("status", [400, 422, 429, 500])
def test_garbage_bodies_never_raise(status: int, raw: bytes) -> None:
    err = make_status_error(status, raw, {})
    assert isinstance(err, APIStatusError)
    assert err.status_code == status
    assert str(err).startswith(f"HTTP {status}")


keys = st.sampled_from(["error", "detail", "type", "message", "loc", "msg"]) | st.text(max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)


@settings(deadline=None)
@given(
    value=json_values
    | st.fixed_dictionaries({"error": json_values})
    | st.fixed_dictionaries({"detail": st.lists(st.dictionaries(keys, json_values), max_size=3)}),
    status=st.sampled_from([400, 401, 404, 422, 429, 500, 503]),
)
def test_any_json_body_never_raises(value: Any, status: int) -> None:
    err = make_status_error(status, json.dumps(value).encode(), {})
    assert err.body == value
    assert isinstance(err, APIStatusError)


@settings(deadline=None)
@given(raw=st.binary(max_size=300), status=st.integers(400, 599))
def test_any_bytes_body_never_raises(raw: bytes, status: int) -> None:
    err = make_status_error(status, raw, {})
    assert err.status_code == status
    str(err)
    repr(err)


# --- 429: credits versus rate limit -----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        error_body("insufficient_credits", "You have run out of credits. Please top up."),
        error_body("rate_limit_error", "Monthly quota exceeded"),
        error_body("billing_error", "Payment required"),
        json.dumps({"detail": "Your credit balance is too low"}).encode(),
        error_body("rate_limit_error", "P001: Insufficient Balance"),
        json.dumps({"error": {"code": "P001", "message": "Too many requests"}}).encode(),
        json.dumps({"error": {"message": "Key does not have enough credits"}}).encode(),
        json.dumps({"detail": "P001: Insufficient Balance"}).encode(),
        json.dumps({"detail": {"code": "P001"}}).encode(),
        json.dumps({"message": "This account does not have enough credits", "code": 429}).encode(),
    ],
    ids=[
        "credits",
        "quota",
        "billing",
        "detail-string",
        "p001-message",
        "p001-code",
        "enough-credits",
        "p001-detail",
        "p001-detail-object",
        "top-level-message",
    ],
)
def test_credits_429_is_insufficient_credits(raw: bytes) -> None:
    err = make_status_error(429, raw, {}, retry_after=None)
    assert isinstance(err, InsufficientCreditsError)
    assert "not retried" in str(err)


@pytest.mark.parametrize(
    "raw",
    [error_body("rate_limit_error", "Rate limit exceeded"), b"", b"<html>Too Many</html>"],
    ids=["json", "empty", "html"],
)
def test_rate_limit_429_is_rate_limit_not_credits(raw: bytes) -> None:
    err = make_status_error(429, raw, {"retry-after": "2"}, retry_after=2.0)
    assert type(err) is RateLimitError
    assert err.retry_after == 2.0
    assert "wait 2 s" in str(err)


def test_insufficient_capacity_429_is_a_rate_limit() -> None:
    err = make_status_error(429, error_body("rate_limit_error", "Insufficient capacity"), {})
    assert type(err) is RateLimitError


def test_405_is_method_not_allowed_with_its_detail() -> None:
    err = make_status_error(405, json.dumps({"detail": "Method Not Allowed"}).encode(), {})
    assert type(err) is MethodNotAllowedError
    assert isinstance(err, APIStatusError)
    assert str(err) == "HTTP 405: Method Not Allowed"


def test_credits_words_on_other_statuses_do_not_change_the_class() -> None:
    err = make_status_error(402, error_body("billing", "out of credits"), {})
    assert type(err) is APIStatusError


# --- request id -------------------------------------------------------------------------------


def test_request_id_is_exposed_and_shown() -> None:
    err = make_status_error(500, error_body("server_error", "oops"), {"x-request-id": "req_abc"})
    assert err.request_id == "req_abc"
    assert "req_abc" in str(err)


def test_headers_are_kept_on_the_error() -> None:
    err = make_status_error(429, b"", {"x-ratelimit-remaining": "0"})
    assert err.headers["x-ratelimit-remaining"] == "0"


# --- retry-after parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "60"}, 0.25),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "-100"}, None),
        ({"retry-after-ms": "-100", "retry-after": "2"}, 2.0),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"x-ratelimit-reset": f"{NOW + 12.5:.3f}", "x-ratelimit-remaining": "0"}, 12.5),
        # A missing remaining is no information, never a zero: the reset is not a wait.
        ({"x-ratelimit-reset": f"{NOW + 4:.3f}"}, None),
        ({"x-ratelimit-reset": f"{NOW - 4:.3f}", "x-ratelimit-remaining": "0"}, 0.0),
        ({"retry-after": "3", "x-ratelimit-reset": f"{NOW + 50}"}, 3.0),
        ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
    ],
    ids=[
        "ms",
        "ms-before-seconds",
        "seconds",
        "fractional-seconds",
        "negative-ignored",
        "nan-ignored",
        "infinity-ignored",
        "negative-ms-ignored",
        "negative-ms-falls-back-to-seconds",
        "http-date",
        "http-date-past",
        "reset-epoch",
        "reset-epoch-no-remaining",
        "reset-past",
        "retry-after-before-reset",
        "bad-ms-falls-back",
    ],
)
def testparse_retry_after(headers: dict[str, str], expected: float) -> None:
    got = parse_retry_after(headers, NOW)
    assert got == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"retry-after": "whenever"},
        {"x-ratelimit-reset": "tomorrow", "x-ratelimit-remaining": "0"},
        # The reset time rides on every response: while quota remains it is not a wait.
        {"x-ratelimit-reset": f"{NOW + 60:.3f}", "x-ratelimit-remaining": "57"},
    ],
    ids=["none", "garbage", "garbage-reset", "reset-with-quota-left"],
)
def test_parse_retry_after_gives_none(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers, NOW) is None


# --- retry policy ---------------------------------------------------------------------------


def status_error(status: int, raw: bytes = b"", retry_after: float | None = None) -> APIStatusError:
    return make_status_error(status, raw, {}, retry_after=retry_after)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 418])
def test_non_retryable_status_gives_up(status: int) -> None:
    assert RetryPolicy().delay_for(status_error(status), 0, 5) is None


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_status_waits(status: int) -> None:
    delay = RetryPolicy(base=0.5).delay_for(status_error(status), 0, 5)
    assert delay is not None
    assert 0.375 <= delay <= 0.5


def test_credits_429_is_never_retried() -> None:
    err = status_error(429, error_body("insufficient_credits", "out of credits"), retry_after=1.0)
    assert RetryPolicy().delay_for(err, 0, 10) is None


@pytest.mark.parametrize(
    "error",
    [APIConnectionError("reset by peer"), APITimeoutError("read timed out")],
    ids=["connection", "timeout"],
)
def test_connection_errors_are_retried(error: APIConnectionError) -> None:
    assert RetryPolicy().delay_for(error, 0, 1) is not None


@pytest.mark.parametrize(
    "error",
    [
        APIResponseValidationError("bad json", status_code=200, body="{"),
        StreamError("error event"),
    ],
    ids=["validation", "stream"],
)
def test_errors_after_a_complete_answer_are_not_retried(error: Any) -> None:
    assert RetryPolicy().delay_for(error, 0, 5) is None


def test_retries_stop_when_the_budget_is_spent() -> None:
    policy = RetryPolicy()
    err = status_error(503)
    assert policy.delay_for(err, 2, 3) is not None
    assert policy.delay_for(err, 3, 3) is None


def test_server_wait_is_honoured_with_a_little_jitter() -> None:
    delay = RetryPolicy().delay_for(status_error(429, retry_after=3.0), 0, 2)
    assert delay is not None
    assert 3.0 <= delay <= 3.25


def test_server_wait_above_max_server_wait_gives_up() -> None:
    policy = RetryPolicy(max_server_wait=10.0)
    assert policy.delay_for(status_error(429, retry_after=60.0), 0, 5) is None


@settings(deadline=None)
@given(attempt=st.integers(0, 60), base=st.floats(0.001, 5.0), cap=st.floats(0.01, 30.0))
def test_backoff_is_bounded_by_cap(attempt: int, base: float, cap: float) -> None:
    delay = RetryPolicy(base=base, cap=cap).delay_for(status_error(500), attempt, attempt + 1)
    assert delay is not None
    expected = min(base * 2.0**attempt, cap)
    assert 0.75 * expected - 1e-9 <= delay <= expected + 1e-9


def test_backoff_grows_exponentially_before_the_cap() -> None:
    policy = RetryPolicy(base=1.0, cap=100.0)
    delays = [policy.delay_for(status_error(500), n, 10) for n in range(4)]
    assert all(d is not None for d in delays)
    # Each step doubles; jitter takes off at most 25 %, so each range is disjoint.
    for n, d in enumerate(delays):
        assert 0.75 * 2**n <= d <= 2**n  # type: ignore[operator]


async def test_client_raises_rate_limit_error_when_server_wait_is_too_long() -> None:
    transport = answers(
        MockResponse(
            429,
            content=error_body("rate_limit_error", "Rate limit exceeded"),
            headers={"retry-after": "300", "x-request-id": "req_429"},
        ),
        repeat=True,
        url=CHAT_URL,
    )
    async with client_over(transport, max_retries=5, max_retry_wait=10.0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.chat.create(
                model="reka-flash", messages=[{"role": "user", "content": "x"}]
            )
    assert type(info.value) is RateLimitError
    assert info.value.retry_after == 300.0
    assert info.value.request_id == "req_429"
    assert len(transport.requests) == 1
