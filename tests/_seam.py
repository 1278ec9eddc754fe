"""Helpers for tests over the attempt seam: ``AsyncClient(transport=MockTransport(handler))``
answers every attempt in-process, with no socket (``reka_async.testing.MockTransport``)."""

from __future__ import annotations

from typing import Any

from reka_async import AsyncClient, RetryPolicy
from reka_async.testing import MockResponse, MockTransport

KEY = "sk-test"

#: Backoff in milliseconds; server-requested waits (``retry-after``) are still honoured.
FAST = RetryPolicy(base=0.001, cap=0.01)


def answers(
    *responses: MockResponse | BaseException,
    repeat: bool = False,
    url: str | None = None,
    method: str = "POST",
) -> MockTransport:
    """A transport answering each attempt with the next of ``responses`` (an exception among
    them is raised instead, as the network would); with ``repeat``, the last one answers
    every attempt from then on.

    With ``url``, every attempt must be ``method url``: any other fails the test with an
    ``AssertionError`` (which the client does not translate), as an unregistered URL did
    under aioresponses. An attempt beyond the answers given fails the test the same way.
    """
    queue = list(responses)

    def handler(request: Any) -> MockResponse:
        if url is not None:
            sent = f"{request.method} {request.url}"
            assert sent == f"{method} {url}", f"unexpected request {sent}"
        if not queue:
            raise AssertionError(f"no answer left for {request!r}")
        answer = queue[0] if repeat and len(queue) == 1 else queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return MockTransport(handler)


def client_over(transport: MockTransport, api_key: str = KEY, **options: Any) -> AsyncClient:
    """A client whose attempts all go to ``transport``, with a fast backoff unless
    ``retry_policy`` says otherwise."""
    options.setdefault("retry_policy", FAST)
    return AsyncClient(api_key, transport=transport, **options)
