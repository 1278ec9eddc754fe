"""``Client``: the blocking facade over ``AsyncClient``, and its ``chat`` and ``models``.

The ``AsyncClient`` lives in a ``LoopThread`` and does all the work; the facade only hands it
coroutines and waits for them, so sync and async share one implementation.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from .._batch import BatchResult, BatchRunner, BatchStream, ResultHook
from .._client import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    AsyncClient,
    MessagesArg,
    _NotGiven,
    call_args,
)
from .._models import ChatResponse, Model, Tool
from .._transport import TimeoutLike
from ._bridge import LoopThread
from ._iterators import BatchResultIterator, ChatStream

__all__ = ["Chat", "Client", "Models"]

_THREAD_NAME: Final = "reka-async-portal"


class Chat:
    """``client.chat``: chat completions, plain and streamed (blocking)."""

    __slots__ = ("_chat", "_loop")

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._chat = client.chat
        self._loop = loop

    def create(
        self,
        *,
        messages: MessagesArg,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        use_search_engine: bool | None = None,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatResponse:
        """Generate a reply to a conversation (blocking).

        Args:
            messages: the conversation, as ``Message`` models or dicts
                (``{"role": "user", "content": "..."}``).
            model: e.g. ``"reka-flash"``, ``"reka-core"``.
            max_tokens, temperature, top_p, top_k, stop, seed, presence_penalty,
                frequency_penalty, tools, tool_choice, use_search_engine: as in the API;
                ``None`` leaves the server default.
            timeout: a ``Timeout``, total seconds, or ``None`` for no timeout (this call only).
            max_retries: retries for this call (default: the client's).
            extra_headers: headers added to this request.
            extra_body: fields merged into the JSON body as-is.

        Returns:
            The ``ChatResponse``; ``response.text`` is the first answer's text.

        Raises:
            InvalidRequestError: an argument is invalid (nothing was sent).
            APIStatusError: the server answered with an error (a subclass per status).
            APIConnectionError: no complete answer (``APITimeoutError`` on a timeout).
            RuntimeError: the client is closed.
            KeyboardInterrupt: re-raised after cancelling the request in flight.
        """
        args = locals()
        return self._loop.run(self._chat.create(**call_args(args)))

    def create_stream(
        self,
        *,
        messages: MessagesArg,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        use_search_engine: bool | None = None,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatStream:
        """Stream a reply as it is generated (blocking iterator).

        Takes the same arguments as ``create``. Use ``with client.chat.create_stream(...) as
        stream: for chunk in stream: print(chunk.delta, end="")``.

        Returns:
            A ``ChatStream``; the request starts on first iteration.

        Raises:
            InvalidRequestError: at once, when an argument is invalid.
            RuntimeError: the client is closed.
        """
        args = locals()
        if self._loop.closed:
            raise RuntimeError("this Client is closed; create a new one")
        stream = self._chat.create_stream(**call_args(args))
        return ChatStream(self._loop, stream)


class Models:
    """``client.models``: the models this key may use (blocking)."""

    __slots__ = ("_loop", "_models")

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._models = client.models
        self._loop = loop

    def list(
        self,
        *,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> list[Model]:
        """List the available models.

        Args:
            timeout: a ``Timeout``, total seconds, or ``None`` (this call only).
            max_retries: retries for this call (default: the client's).
            extra_headers: headers added to this request.

        Returns:
            ``Model`` entries; ``model.id`` is the name to pass as ``model=``.

        Raises:
            APIError: the request failed.
            RuntimeError: the client is closed.
        """
        return self._loop.run(
            self._models.list(timeout=timeout, max_retries=max_retries, extra_headers=extra_headers)
        )

    get = list  # the official SDK's name


class Client:
    """Blocking client for the Reka Chat API, for scripts, notebooks and threads.

    It runs the ``AsyncClient`` on an event loop in a background thread, so it works from
    plain code, from several threads at once (share one client), and from code that already
    runs an event loop (a Jupyter cell). Ctrl-C during a call cancels the request in flight.
    Use it as ``with Client() as client: ...`` or call ``client.close()``, which stops the loop
    and joins its thread.

    Args:
        api_key: the API key; default ``REKA_API_KEY`` from the environment.
        base_url: default ``REKA_BASE_URL``, else ``https://api.reka.ai/v1``.
        max_retries: retries per request; 0 disables them.
        timeout: a ``Timeout`` (connect/read/total) or total seconds.
        max_connections: size of the connection pool.
        max_retry_wait: the longest server-requested wait slept through.
        default_headers: headers sent with every request.
        allow_insecure_http: allow ``http://`` to a host that is not loopback.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        max_retries: int = 2,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_retry_wait: float = 120.0,
        default_headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        def factory() -> AsyncClient:
            return AsyncClient(
                api_key,
                base_url,
                max_retries=max_retries,
                timeout=timeout,
                max_connections=max_connections,
                max_retry_wait=max_retry_wait,
                default_headers=default_headers,
                allow_insecure_http=allow_insecure_http,
            )

        # The client is entered as an async context manager in a task of the loop, so that
        # stopping the loop (close(), or the loop thread being collected with an unclosed
        # Client) always closes the connection pool.
        loop = LoopThread(name=_THREAD_NAME)
        try:
            client = loop.enter(factory)
        except BaseException:
            loop.close()
            raise
        self._async = client
        self._loop = loop
        self.chat: Final = Chat(client, loop)
        self.models: Final = Models(client, loop)

    def __repr__(self) -> str:
        state = "closed" if self._loop.closed else "open"
        return f"<Client base_url={self.base_url!r} {state}>"

    @property
    def base_url(self) -> str:
        """The API base URL this client talks to."""
        return self._async.base_url

    @property
    def max_connections(self) -> int:
        """Size of the connection pool."""
        return self._async.max_connections

    @property
    def max_retries(self) -> int:
        """Default retries per request."""
        return self._async.max_retries

    @property
    def is_closed(self) -> bool:
        """True after ``close()``."""
        return self._loop.closed

    def batch(
        self,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 64,
        model: str = "reka-flash",
        rpm: float | None = None,
        tpm: float | None = None,
        adaptive: bool = True,
        fail_fast: bool = False,
        max_retries: int | None = None,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        on_result: ResultHook | None = None,
        **params: Any,
    ) -> list[BatchResult]:
        """Run many chat requests at bounded concurrency and return every result, in order.

        Items are prompt strings, message lists, dicts with ``messages`` or ``prompt`` (and
        optionally ``custom_id``, ``model`` and chat parameters), or ``ChatRequest`` models;
        they are read lazily. Each item ends as exactly one ``BatchResult`` (response or error).

        Args:
            items: the requests.
            concurrency: most requests in flight at once.
            model: model for items that name none.
            rpm: requests-per-minute budget, or ``None``.
            tpm: tokens-per-minute budget, or ``None``.
            adaptive: shrink concurrency on rate limits and timeouts, then grow it back.
            fail_fast: raise the first item error instead of collecting it.
            max_retries: retries per request (default: the client's).
            timeout: per-request timeout.
            on_result: ``hook(result, stats)`` per finished item; it runs in the client's
                loop thread, so it must be quick and must not call this client.
            **params: chat parameters (``max_tokens``, ``temperature``, ...) for every item.

        Returns:
            One ``BatchResult`` per item, in input order.

        Raises:
            InvalidRequestError: an option is invalid.
            BatchAbortedError: out of credits; ``.results`` holds the items finished.
            RuntimeError: the client is closed.
        """
        options = {
            "concurrency": concurrency,
            "model": model,
            "rpm": rpm,
            "tpm": tpm,
            "adaptive": adaptive,
            "fail_fast": fail_fast,
            "max_retries": max_retries,
            "timeout": timeout,
            "on_result": on_result,
            **params,
        }
        return self._loop.run(_run_batch(self._async, items, options))

    def batch_stream(
        self,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 64,
        model: str = "reka-flash",
        rpm: float | None = None,
        tpm: float | None = None,
        ordered: bool = False,
        adaptive: bool = True,
        fail_fast: bool = False,
        max_retries: int | None = None,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        on_result: ResultHook | None = None,
        **params: Any,
    ) -> BatchResultIterator:
        """Like ``batch``, but yield results as they complete (memory stays bounded).

        Use ``with client.batch_stream(items) as results: for r in results: ...``; leaving
        the block early cancels the requests in flight.

        Args:
            items, concurrency, model, rpm, tpm, adaptive, fail_fast, max_retries, timeout,
                on_result, **params: as in ``batch``.
            ordered: yield in input order (a bounded reorder window) instead of as completed.

        Returns:
            A ``BatchResultIterator`` of ``BatchResult``.

        Raises:
            InvalidRequestError: an option is invalid.
            BatchAbortedError: (while iterating) out of credits.
            RuntimeError: the client is closed.
        """
        options = {
            "concurrency": concurrency,
            "model": model,
            "rpm": rpm,
            "tpm": tpm,
            "adaptive": adaptive,
            "fail_fast": fail_fast,
            "max_retries": max_retries,
            "timeout": timeout,
            "on_result": on_result,
            **params,
        }
        stream = self._loop.run(_open_batch(self._async, items, options, ordered))
        return BatchResultIterator(self._loop, stream)

    def close(self) -> None:
        """Close the connection pool, stop the loop and join its thread (idempotent).

        Calls still in flight in other threads are cancelled and raise ``RuntimeError``.

        Raises:
            RuntimeError: called from the client's own loop thread.
        """
        self._loop.close()  # closes the AsyncClient, then stops the loop, joins its thread

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.closed:
            # Only warn: the LoopThread, collected with this object (and with the streams it
            # handed out), stops the loop and closes the connection pool.
            warnings.warn(
                "Client was never closed; use 'with Client() as client:' or call 'client.close()'",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )


async def _run_batch(
    client: AsyncClient, items: Iterable[Any] | AsyncIterable[Any], options: dict[str, Any]
) -> list[BatchResult]:
    return await BatchRunner(client, **options).run(items)


async def _open_batch(
    client: AsyncClient,
    items: Iterable[Any] | AsyncIterable[Any],
    options: dict[str, Any],
    ordered: bool,
) -> BatchStream:
    # Built inside the loop: the stream's queue, lock and semaphore belong to it.
    return BatchRunner(client, **options).stream(items, ordered=ordered)
