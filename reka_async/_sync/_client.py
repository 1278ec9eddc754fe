"""``Client``: the blocking facade over ``AsyncClient``, and its ``chat`` and ``models``.

The ``AsyncClient`` lives in a ``LoopThread`` and does all the work; the facade only hands it
coroutines and waits for them, so sync and async share one implementation.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from .._client import AsyncClient
from .._http import TimeoutLike
from .._http.options import resolve_api_key
from .._models import ChatResponse, Model
from .._types import NOT_GIVEN, NotGiven
from ..batch import BatchResult, BatchRunner, BatchStream
from ._bridge import LoopThread
from ._iterators import BatchResultIterator, ChatStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._client import ClientOptions
    from .._types import ChatArgs
    from ..batch import BatchOptions

__all__ = ["Chat", "Client", "Models"]

_THREAD_NAME: Final = "reka-async-portal"


class Chat:
    """``client.chat``: chat completions, plain and streamed (blocking)."""

    __slots__ = ("_chat", "_loop")

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._chat = client.chat
        self._loop = loop

    def create(self, **args: Unpack[ChatArgs]) -> ChatResponse:
        """Generate a reply to a conversation (blocking).

        Args:
            **args: as in ``AsyncClient.chat.create``; every key is documented on
                ``reka_async.ChatArgs``.

        Returns:
            The ``ChatResponse``; ``response.text`` is the first answer's text.

        Raises:
            InvalidRequestError: an argument is invalid (nothing was sent).
            APIStatusError: the server answered with an error (a subclass per status).
            APIConnectionError: no complete answer (``APITimeoutError`` on a timeout).
            RuntimeError: the client is closed.
            KeyboardInterrupt: re-raised after cancelling the request in flight.
        """
        return self._loop.run(self._chat.create(**args))

    def create_stream(self, **args: Unpack[ChatArgs]) -> ChatStream:
        """Stream a reply as it is generated (blocking iterator).

        Takes the same arguments as ``create``. Use ``with client.chat.create_stream(...) as
        stream: for chunk in stream: print(chunk.delta, end="")``.

        Returns:
            A ``ChatStream``; the request starts on first iteration.

        Raises:
            InvalidRequestError: at once, when an argument is invalid.
            RuntimeError: the client is closed.
        """
        self._loop.check_open()
        return ChatStream(self._loop, self._chat.create_stream(**args))


class Models:
    """``client.models``: the models this key may use (blocking)."""

    __slots__ = ("_loop", "_models")

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._models = client.models
        self._loop = loop

    def list(
        self,
        *,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
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
    and joins its thread. One never closed does not hold up the interpreter's exit: it is
    closed then, with a ``ResourceWarning``. A child of ``fork()`` cannot use a ``Client``
    made before the fork (its loop thread stays in the parent): every call raises
    ``RuntimeError`` at once; create a new one in the child.

    Args:
        api_key: the API key; default ``REKA_API_KEY`` from the environment.
        base_url: default ``REKA_BASE_URL``, else ``https://api.reka.ai/v1``.
        **options: as in ``AsyncClient`` (``max_retries``, ``timeout``, ``max_connections``,
            ``max_retry_wait``, ``retry_policy``, ``default_headers``,
            ``allow_insecure_http``, ``max_response_bytes``), documented on
            ``reka_async.ClientOptions``.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
        InvalidRequestError: the key holds a control character.
        ValueError: an option is invalid.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        key = resolve_api_key(api_key)  # before a thread is started for nothing

        def factory() -> AsyncClient:
            return AsyncClient(key, base_url, **options)

        # The client is entered as an async context manager in the loop, so that stopping
        # the loop (close(), the exit hook, or the loop thread being collected with an
        # unclosed Client) always closes the connection pool.
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
        self, items: Iterable[Any] | AsyncIterable[Any], **options: Unpack[BatchOptions]
    ) -> list[BatchResult]:
        """Run many chat requests at bounded concurrency and return every result, in order.

        Items are prompt strings, message lists, dicts with ``messages`` or ``prompt`` (and
        optionally ``custom_id``, ``model`` and chat parameters), or ``ChatRequest`` models;
        they are read lazily. Each item ends as exactly one ``BatchResult`` (response or error).

        Args:
            items: the requests.
            **options: as in ``BatchRunner`` (``concurrency``, ``model``, ``rpm``, ``tpm``,
                ``adaptive``, ``fail_fast``, ``max_retries``, ``timeout``, ``on_result``, chat
                parameters, ...), documented on ``reka_async.BatchOptions``. ``on_result``
                runs in the client's loop thread, so it must be quick and must not call this
                client.

        Returns:
            One ``BatchResult`` per item, in input order.

        Raises:
            InvalidRequestError: an option is invalid.
            BatchAbortedError: out of credits; ``.results`` holds the items finished.
            RuntimeError: the client is closed.
        """
        return self._loop.run(_run_batch(self._async, items, options))

    def batch_stream(
        self,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        ordered: bool = False,
        **options: Unpack[BatchOptions],
    ) -> BatchResultIterator:
        """Like ``batch``, but yield results as they complete (memory stays bounded).

        Use ``with client.batch_stream(items) as results: for r in results: ...``; leaving
        the block early cancels the requests in flight.

        Args:
            items, **options: as in ``batch``.
            ordered: yield in input order (a bounded reorder window) instead of as completed.

        Returns:
            A ``BatchResultIterator`` of ``BatchResult``.

        Raises:
            InvalidRequestError: an option is invalid.
            BatchAbortedError: (while iterating) out of credits.
            RuntimeError: the client is closed.
        """
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
            # handed out), asks the loop to stop, which closes the connection pool.
            warnings.warn(
                "Client was never closed; use 'with Client() as client:' or call 'client.close()'",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )


async def _run_batch(
    client: AsyncClient, items: Iterable[Any] | AsyncIterable[Any], options: BatchOptions
) -> list[BatchResult]:
    return await BatchRunner(client, **options).run(items)


async def _open_batch(
    client: AsyncClient,
    items: Iterable[Any] | AsyncIterable[Any],
    options: BatchOptions,
    ordered: bool,
) -> BatchStream:
    # Built inside the loop: the stream's queue, lock and semaphore belong to it.
    return BatchRunner(client, **options).stream(items, ordered=ordered)
