"""``Client``: the blocking facade over ``AsyncClient``, and its ``chat`` and ``models``.

The ``AsyncClient`` lives in a ``LoopThread`` and does all the work; the facade only hands it
coroutines and waits for them, so sync and async share one implementation.
"""

from __future__ import annotations

import builtins
import copy
import inspect
import warnings
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, overload

from .._chat import ParsedResponse
from .._client import AsyncClient
from .._http import TimeoutLike, display_url
from .._http.accounting import Budget
from .._http.options import resolve_api_key
from .._http.quota import Quota, RateLimit
from .._models import ChatResponse, Model
from .._raw import RawResponse
from .._tools import DEFAULT_MAX_ROUNDS, FunctionTool, ToolLoop, ToolRun
from .._types import NOT_GIVEN, NotGiven
from ..batch import BatchResult, BatchRunner, BatchStream
from ._bridge import LoopThread
from ._iterators import BatchResultIterator, ChatStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._client import ClientOptions, CopyOptions
    from .._types import ChatArgs, ParseArgs, ToolRunArgs
    from ..batch import BatchOptions

T = TypeVar("T")

__all__ = ["Chat", "ChatWithRawResponse", "Client", "Models", "ModelsWithRawResponse"]


class ChatWithRawResponse:
    """``client.chat.with_raw_response`` (blocking): ``create`` returning a ``RawResponse``."""

    __slots__ = ("_loop", "_raw")

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._raw = client.chat.with_raw_response
        self._loop = loop

    def create(self, **args: Unpack[ChatArgs]) -> RawResponse[ChatResponse]:
        """``chat.create`` with the HTTP answer (status, headers, the body as received);
        ``raw.parse()`` is the ``ChatResponse``.

        Raises:
            RekaError: as ``chat.create`` raises.
        """
        return self._loop.run(self._raw.create(**args))


_THREAD_NAME: Final = "reka-async-portal"


class Chat:
    """``client.chat``: chat completions, plain and streamed (blocking)."""

    __slots__ = ("_chat", "_loop", "with_raw_response")

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._chat = client.chat
        self._loop = loop
        self.with_raw_response = ChatWithRawResponse(client, loop)

    @overload
    def create(
        self, *, stream: Literal[False] = False, **args: Unpack[ChatArgs]
    ) -> ChatResponse: ...

    @overload
    def create(self, *, stream: Literal[True], **args: Unpack[ChatArgs]) -> ChatStream: ...

    @overload
    def create(self, *, stream: bool, **args: Unpack[ChatArgs]) -> ChatResponse | ChatStream: ...

    def create(
        self, *, stream: bool = False, **args: Unpack[ChatArgs]
    ) -> ChatResponse | ChatStream:
        """Generate a reply to a conversation (blocking).

        Args:
            stream: ``True`` returns the ``ChatStream`` of ``create_stream(...)`` instead
                (openai-python's spelling).
            **args: the keys of ``reka_async.types.ChatArgs``, below (as in
                ``AsyncClient.chat.create``); ``None``, or leaving a key out, keeps the
                server's default.

        Keyword Args:
            messages: the conversation, as ``Message`` models or dicts
                (``{"role": "user", "content": "..."}``); required.
            model: e.g. ``"reka-flash"``, ``"reka-core"``; required.
            max_tokens: the most tokens to generate (at least 1).
            temperature: sampling temperature (at least 0).
            top_p: nucleus sampling mass, in (0, 1].
            top_k: sample from the k most likely tokens.
            stop: a stop string or a list of them.
            seed: for reproducible sampling.
            presence_penalty: penalty for tokens already present.
            frequency_penalty: penalty by how often a token appeared.
            tools: functions the model may call (``Tool`` models or dicts, ours or OpenAI's).
            tool_choice: ``"auto"``, ``"none"`` or ``"tool"`` (OpenAI's ``"required"``).
            use_search_engine: let the model search the web (native dialect).
            research: ``Research`` options or a dict (OpenAI dialect only).
            response_format: ``JsonSchemaFormat`` or a dict (OpenAI dialect only).
            api: ``"native"`` or ``"openai"``, this call's dialect (default: the client's).
            timeout: a ``Timeout``, seconds (total), or ``None`` for none (default: the
                client's).
            max_retries: retries for this call (default: the client's).
            extra_headers: headers added to this request.
            extra_body: fields merged into the JSON body as they are.
            stream_mode: ``"auto"``, ``"cumulative"`` or ``"delta"``: how a native stream's
                content is read (streams only; default: the client's).

        Returns:
            The ``ChatResponse``; ``response.text`` is the first answer's text. With
            ``stream=True``, the stream (its request starts on first iteration).

        Raises:
            TypeError: ``stream`` is not a bool.
            InvalidRequestError: an argument is invalid (nothing was sent).
            APIStatusError: the server answered with an error (a subclass per status).
            APIConnectionError: no complete answer (``APITimeoutError`` on a timeout).
            RuntimeError: the client is closed.
            KeyboardInterrupt: re-raised after cancelling the request in flight.
        """
        if stream is True:
            return self.create_stream(**args)
        if stream is not False:
            raise TypeError(f"create(): stream must be True or False, got {stream!r}")
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

    def parse(self, **args: Unpack[ParseArgs[T]]) -> ParsedResponse[T]:
        """Ask for an answer in a given structure and return it structured (blocking).

        Args:
            **args: as in ``AsyncClient.chat.parse``: those of ``create``, and
                ``response_format`` (required): an attrs class, a dataclass, a TypedDict, a
                pydantic v2 model or a JSON schema dict.

        Returns:
            A ``ParsedResponse``: ``parsed`` and ``response``.

        Raises:
            InvalidRequestError: the class has no JSON schema, or another argument is invalid.
            APIResponseValidationError: the answer is not JSON, or does not fit the class.
            RuntimeError: the client is closed.
        """
        return self._loop.run(self._chat.parse(**args))

    def run_tools(
        self,
        *,
        tools: Sequence[Callable[..., Any] | FunctionTool],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        raise_tool_errors: bool = False,
        **args: Unpack[ToolRunArgs],
    ) -> ToolRun:
        """Run a conversation in which the model may call Python functions (blocking).

        As ``AsyncClient.chat.run_tools``; the tools run in the calling thread (an ``async``
        tool runs on the client's loop).

        Returns:
            A ``ToolRun`` (``response``, ``messages``, ``calls``, ``rounds``, ``finished``).

        Raises:
            InvalidRequestError: an argument is invalid.
            APIError: a request failed.
        """
        if "messages" not in args:
            raise TypeError("run_tools() missing required keyword argument: 'messages'")
        loop = ToolLoop(
            tools,
            args["messages"],
            max_rounds=max_rounds,
            tool_choice=args.get("tool_choice"),
            raise_tool_errors=raise_tool_errors,
        )
        rest: Any = {k: v for k, v in args.items() if k not in ("messages", "tool_choice")}
        while True:
            calls = loop.answered(self.create(**rest, **loop.next_request()))
            if not calls:
                return loop.result()
            for call in calls:
                prepared = loop.prepare(call)
                if prepared is None:
                    continue
                function, kwargs = prepared
                try:
                    value = function(**kwargs)
                    if inspect.iscoroutine(value):
                        value = self._loop.run(value)
                except Exception as exc:
                    loop.finish(call, error=exc)
                else:
                    loop.finish(call, value=value)


class ModelsWithRawResponse:
    """``client.models.with_raw_response`` (blocking): ``list`` returning a ``RawResponse``."""

    __slots__ = ("_loop", "_raw")

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._raw = client.models.with_raw_response
        self._loop = loop

    def list(
        self,
        *,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> RawResponse[builtins.list[Model]]:
        """``models.list`` with the HTTP answer; ``raw.parse()`` is the ``Model`` list."""
        return self._loop.run(
            self._raw.list(timeout=timeout, max_retries=max_retries, extra_headers=extra_headers)
        )


class Models:
    """``client.models``: the models this key may use (blocking)."""

    __slots__ = ("_loop", "_models", "with_raw_response")

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._models = client.models
        self._loop = loop
        self.with_raw_response = ModelsWithRawResponse(client, loop)

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
            ``allow_insecure_http``, the hooks, ``proxy``, ``trust_env``, ``ssl``,
            ``connector_factory``, ``max_response_bytes``, ``rpm``, ``tpm``, ``rate_budget``),
            documented on ``reka_async.ClientOptions``. Hooks and ``connector_factory`` run
            in the client's loop thread.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
        InvalidRequestError: the key holds a control character.
        ValueError: an option is invalid.
    """

    chat: Chat
    """Chat completions (blocking): ``create``, ``create_stream``, ``run_tools``."""
    models: Models
    """The models of this key: ``list``."""

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
        self._owner = True  # closing stops the loop (false for with_options copies)
        self._closed = False
        self._adopt(client, loop)

    def _adopt(self, client: AsyncClient, loop: LoopThread) -> None:
        self._async = client
        self._loop = loop
        self.chat = Chat(client, loop)
        self.models = Models(client, loop)

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        shown = display_url(self.base_url)  # credentials hidden
        return f"<Client base_url={shown!r} {state}{'' if self._owner else ' (copy)'}>"

    def with_options(self, **options: Unpack[CopyOptions]) -> Client:
        """A copy of this client with other settings, on the same loop thread; closing the
        copy leaves this client open.

        Without another ``api_key`` or ``base_url`` the copy shares the pool, the cooldown
        and the budgets; with either it has its own pool, key header, cooldown, window and
        cache identity (as ``AsyncClient.with_options``), closed by its ``close()`` or, at
        the latest, when this client closes.

        Args:
            **options: as ``AsyncClient.with_options`` (``api_key``, ``base_url``, ``api``,
                ``max_retries``, ``timeout``, ``max_retry_wait``, ``retry_policy``,
                ``default_headers``, the hooks), documented on ``reka_async.CopyOptions``.

        Raises:
            ValueError: an option is invalid.
            RuntimeError: this client is closed.
        """
        if self.is_closed:
            raise RuntimeError("this Client is closed; create a new one")
        new = copy.copy(self)
        new._owner = False
        new._closed = False
        if options.get("api_key") is None and options.get("base_url") is None:
            client = self._async.with_options(**options)
        else:
            # A pool of its own: entered in the loop like the client's, so that stopping
            # the loop (this client's close) closes it too if the copy was never closed.
            client = self._loop.enter(lambda: self._async.with_options(**options))
        new._adopt(client, self._loop)
        return new

    copy = with_options  # openai-python's other name for it

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate-limit headers of the latest answer (see ``AsyncClient.rate_limit``)."""
        return self._async.rate_limit

    @property
    def rate_budget(self) -> Budget | None:
        """The client's budget (see ``AsyncClient.rate_budget``), or ``None``."""
        return self._async.rate_budget

    @property
    def quota(self) -> Quota:
        """The key's rate-limit window as the server's ``x-ratelimit-*`` headers describe it."""
        return self._async.quota

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
        """True after ``close()`` (of this copy, or of the client it was copied from)."""
        return self._closed or self._loop.closed

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
            items: as in ``batch``.
            **options: as in ``batch``.
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
        """Close the connection pool, stop the loop and join its thread (idempotent). A
        ``with_options`` copy closes only itself: the pool and the loop stay.

        Calls still in flight in other threads are cancelled and raise ``RuntimeError``.

        Raises:
            RuntimeError: called from the client's own loop thread.
        """
        if not self._owner:
            if not self._closed and not self._loop.closed:
                self._loop.run(self._async.aclose())
            self._closed = True
            return
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
        if loop is not None and getattr(self, "_owner", False) and not loop.closed:
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
