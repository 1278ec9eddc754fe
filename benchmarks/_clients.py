"""The clients under comparison, each reduced to one ``call()`` coroutine.

Every factory is an async context manager that opens the client, yields ``call`` and closes
the client. ``call()`` performs one chat request (or one whole stream) and returns the number
of stream chunks it consumed (1 for a non-streaming request). Imports of optional packages
happen inside the factories so that a missing package skips one client, not the harness.

``reka_async_batch`` (BatchRunner) and ``reka_async_sync`` (the sync facade) do not fit the
``call()`` shape; ``worker.py`` drives them itself.

Dialects: ``reka_async`` and ``aiohttp_raw`` speak both the native API (``POST /chat``,
``X-Api-Key``) and the OpenAI-compatible one (``POST /chat/completions``, ``Authorization:
Bearer``), the same messages and model either way (``api=``); the other clients are native only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from ._common import API_KEY, MODEL, PROMPT

__all__ = [
    "CHAT_CLIENTS",
    "LABELS",
    "STREAM_CLIENTS",
    "SYNC_CLIENTS",
    "DIALECT_CLIENTS",
    "Call",
    "ClientUnavailable",
    "open_client",
]

Call = Callable[[], Awaitable[int]]

#: Non-streaming clients, in report order. ``aiohttp_raw`` is the reference for ratios.
CHAT_CLIENTS: Final = (
    "reka_async",
    "reka_async_batch",
    "aiohttp_raw",
    "aiohttp_json",
    "httpx",
    "reka_api",
)
STREAM_CLIENTS: Final = ("reka_async", "aiohttp_raw", "httpx", "reka_api")
SYNC_CLIENTS: Final = ("reka_async", "reka_async_sync")
#: The clients that speak both dialects (``api="native"`` and ``api="openai"``).
DIALECT_CLIENTS: Final = ("reka_async", "aiohttp_raw")
APIS: Final = ("native", "openai")

LABELS: Final = {
    "reka_async": "reka_async AsyncClient (full SDK path)",
    "reka_async_batch": "reka_async BatchRunner.stream()",
    "reka_async_sync": "reka_async.Client (sync facade)",
    "aiohttp_raw": "raw aiohttp, pre-serialised body",
    "aiohttp_json": "raw aiohttp, json= per request",
    "httpx": "httpx.AsyncClient, json= per request",
    "reka_api": "reka-api 3.2.0 AsyncReka (as shipped)",
}

HEADERS: Final = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}
OPENAI_HEADERS: Final = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


class ClientUnavailable(Exception):
    """The client cannot run here (a package is missing); the run is skipped, not failed."""


def _payload(*, stream: bool, prompt: str = PROMPT) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return body


def _check_status(status: int, client: str) -> None:
    if status != 200:
        raise RuntimeError(f"{client}: HTTP {status} from the mock server")


# --------------------------------------------------------------------------- reka_async


@contextlib.asynccontextmanager
async def _reka_async(
    url: str, concurrency: int, stream: bool, api: str, prompt: str
) -> AsyncIterator[Call]:
    from reka_async import AsyncClient

    messages: list[Any] = [{"role": "user", "content": prompt}]
    async with AsyncClient(
        api_key=API_KEY,
        base_url=url,
        max_connections=max(concurrency, 1024),
        api="openai" if api == "openai" else "native",
    ) as client:
        if stream:

            async def call() -> int:
                chunks = 0
                async with client.chat.create_stream(messages=messages, model=MODEL) as s:
                    async for _ in s:
                        chunks += 1
                return chunks

        else:

            async def call() -> int:
                await client.chat.create(messages=messages, model=MODEL)
                return 1

        yield call


# --------------------------------------------------------------------------- raw aiohttp


@contextlib.asynccontextmanager
async def _aiohttp(
    url: str, concurrency: int, stream: bool, *, prebuilt: bool, api: str, prompt: str
) -> AsyncIterator[Call]:
    import aiohttp

    openai = api == "openai"
    chat_url = url + ("/chat/completions" if openai else "/chat")
    payload = _payload(stream=stream, prompt=prompt)
    body = json.dumps(payload, separators=(",", ":")).encode()
    name = "aiohttp_raw" if prebuilt else "aiohttp_json"
    connector = aiohttp.TCPConnector(limit=0)  # unlimited: the workers bound concurrency
    headers = OPENAI_HEADERS if openai else HEADERS
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        if stream:

            async def call() -> int:
                chunks = 0
                kwargs: dict[str, Any] = {"data": body} if prebuilt else {"json": payload}
                async with session.post(chat_url, **kwargs) as resp:
                    _check_status(resp.status, name)
                    # A minimal SSE reader: the mock sends one ``data:`` line per event; an
                    # OpenAI stream (and a native one with --sse-done) ends with [DONE].
                    async for line in resp.content:
                        if line.startswith(b"data:"):
                            data = line[5:].strip()
                            if data == b"[DONE]":
                                break
                            json.loads(data)
                            chunks += 1
                return chunks

        elif prebuilt:

            async def call() -> int:
                async with session.post(chat_url, data=body) as resp:
                    raw = await resp.read()
                    _check_status(resp.status, name)
                json.loads(raw)
                return 1

        else:

            async def call() -> int:
                async with session.post(chat_url, json=payload) as resp:
                    _check_status(resp.status, name)
                    await resp.json()
                return 1

        yield call


# --------------------------------------------------------------------------- httpx


@contextlib.asynccontextmanager
async def _httpx(url: str, concurrency: int, stream: bool) -> AsyncIterator[Call]:
    try:
        import httpx
    except ImportError as exc:
        raise ClientUnavailable(f"httpx is not installed ({exc})") from exc

    chat_url = url + "/chat"
    payload = _payload(stream=stream)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=300.0, headers=HEADERS) as client:
        if stream:

            async def call() -> int:
                chunks = 0
                async with client.stream("POST", chat_url, json=payload) as resp:
                    _check_status(resp.status_code, "httpx")
                    async for line in resp.aiter_lines():
                        if line.startswith("data:"):
                            data = line[5:].strip()
                            if data != "[DONE]":
                                json.loads(data)
                                chunks += 1
                return chunks

        else:

            async def call() -> int:
                resp = await client.post(chat_url, json=payload)
                _check_status(resp.status_code, "httpx")
                resp.json()
                return 1

        yield call


# --------------------------------------------------------------------------- reka-api


@contextlib.asynccontextmanager
async def _reka_api(url: str, concurrency: int, stream: bool) -> AsyncIterator[Call]:
    try:
        from reka import ChatMessage
        from reka.client import AsyncReka
    except ImportError as exc:
        raise ClientUnavailable(f"reka-api is not installed ({exc})") from exc

    # Used as its documentation shows, with its default httpx pool (100 connections).
    client = AsyncReka(api_key=API_KEY, base_url=url)
    try:
        if stream:

            async def call() -> int:
                chunks = 0
                # create_stream is an async generator function: iterate it, don't await it.
                async for _ in client.chat.create_stream(
                    messages=[ChatMessage(role="user", content=PROMPT)], model=MODEL
                ):
                    chunks += 1
                return chunks

        else:

            async def call() -> int:
                await client.chat.create(
                    messages=[ChatMessage(role="user", content=PROMPT)], model=MODEL
                )
                return 1

        yield call
    finally:
        # AsyncReka has no close(): its httpx client would leak; close it by hand.
        await client._client_wrapper.httpx_client.httpx_client.aclose()


# --------------------------------------------------------------------------- dispatch


def open_client(
    name: str,
    url: str,
    concurrency: int,
    *,
    stream: bool,
    api: str = "native",
    prompt: str = PROMPT,
) -> contextlib.AbstractAsyncContextManager[Call]:
    """Open the client ``name`` against ``url``; the result yields its ``call`` coroutine.

    ``api`` picks the dialect (``"native"`` or ``"openai"``; only `DIALECT_CLIENTS` speak
    ``"openai"``); ``prompt`` is the user message (the mock's reply echoes it, so a longer
    prompt gives longer streams with non-empty chunks).

    Raises:
        ValueError: an unknown client name (or one that has no ``call()`` form), an unknown
            dialect, or the OpenAI dialect for a client that only speaks the native one.
    """
    if api not in APIS:
        raise ValueError(f"unknown api {api!r}; choose from {list(APIS)}")
    if api != "native" and name not in DIALECT_CLIENTS:
        raise ValueError(
            f"{name} speaks only the native dialect; {list(DIALECT_CLIENTS)} speak both"
        )
    if name == "reka_async":
        return _reka_async(url, concurrency, stream, api, prompt)
    if name == "aiohttp_raw":
        return _aiohttp(url, concurrency, stream, prebuilt=True, api=api, prompt=prompt)
    if name == "aiohttp_json":
        return _aiohttp(url, concurrency, stream, prebuilt=False, api=api, prompt=prompt)
    if name == "httpx":
        return _httpx(url, concurrency, stream)
    if name == "reka_api":
        return _reka_api(url, concurrency, stream)
    raise ValueError(f"unknown client {name!r}")
