"""``AsyncClient``: ``chat.create``, ``chat.create_stream`` and ``models.list`` over one
aiohttp session."""

from __future__ import annotations

import os
import warnings
from collections.abc import Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from ._converter import dumps, load_chat_response, loads, parse_models, request_body
from ._exceptions import MissingAPIKeyError
from ._models import ChatResponse, Message, Model, Tool
from ._streaming import AsyncChatStream
from ._transport import RetryHook, RetryPolicy, Timeout, TimeoutLike, Transport

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "NOT_GIVEN", "AsyncClient"]

DEFAULT_BASE_URL: Final = "https://api.reka.ai/v1"
DEFAULT_TIMEOUT: Final = Timeout()
DEFAULT_MAX_CONNECTIONS: Final = 1024


class _NotGiven:
    """Sentinel for "argument not given", where ``None`` has a meaning of its own."""

    _instance: _NotGiven | None = None

    def __new__(cls) -> _NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Final = _NotGiven()

MessagesArg = Sequence[Message | Mapping[str, Any]]


class AsyncChat:
    """``client.chat``: chat completions, plain and streamed."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
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
        """Generate a reply to a conversation.

        Args:
            messages: the conversation, as ``Message`` models or dicts
                (``{"role": "user", "content": "..."}``). End with an ``assistant`` message to
                prefill the start of the answer.
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
            APIResponseValidationError: the 2xx body was not the documented shape.
        """
        body = _chat_body(locals(), stream=False)
        return await self._client._send_chat(
            body, timeout=timeout, max_retries=max_retries, extra_headers=extra_headers
        )

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
    ) -> AsyncChatStream:
        """Stream a reply as it is generated.

        Takes the same arguments as ``create``. Iterate the result with ``async for``
        (or use it with ``async with``): each ``ChatChunk`` has ``delta`` (the new text) and
        ``responses[0].chunk.content`` (the whole text so far, as the server sent it).
        The request is retried while nothing has been yielded yet; a break afterwards raises
        ``StreamError``, a stall ``APITimeoutError``.

        Raises:
            InvalidRequestError: at once, when an argument is invalid.
        """
        body = _chat_body(locals(), stream=True)
        return self._client._open_stream(
            body, timeout=timeout, max_retries=max_retries, extra_headers=extra_headers
        )


class AsyncModels:
    """``client.models``: the models this key may use."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> list[Model]:
        """List the available models.

        Returns:
            ``Model`` entries; ``model.id`` is the name to pass as ``model=``.
        """
        t = self._client._transport
        opts = t.options(
            timeout=timeout,
            timeout_given=timeout is not NOT_GIVEN,
            max_retries=max_retries,
            extra_headers=extra_headers,
        )
        return await t.request("GET", "/models", body=None, opts=opts, parse=_load_models)

    get = list  # the official SDK's name


class AsyncClient:
    """Async client for the Reka Chat API.

    Use it as ``async with AsyncClient() as client: ...`` or call ``await client.aclose()``.
    One client holds one connection pool; share it across tasks rather than making one per call.

    Args:
        api_key: the API key; default ``REKA_API_KEY`` from the environment.
        base_url: default ``REKA_BASE_URL``, else ``https://api.reka.ai/v1``.
        max_retries: retries per request (408, 409, rate-limit 429, 5xx, connection errors and
            timeouts); 0 disables them.
        timeout: a ``Timeout`` (connect/read/total) or total seconds.
        max_connections: size of the connection pool (the most requests in flight at once).
        max_retry_wait: the longest server-requested wait (``retry-after``) slept through;
            a longer one is raised at once with ``retry_after`` on the error.
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
        key = api_key if api_key is not None else os.environ.get("REKA_API_KEY")
        if not key:
            raise MissingAPIKeyError(
                "no API key: pass api_key=... or set the REKA_API_KEY environment variable"
            )
        url = base_url or os.environ.get("REKA_BASE_URL") or DEFAULT_BASE_URL
        if isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError(f"max_retries: must be a non-negative integer, got {max_retries!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections: must be at least 1, got {max_connections!r}")
        self._transport = Transport(
            api_key=key,
            base_url=url,
            timeout=timeout if isinstance(timeout, Timeout) else _as_default_timeout(timeout),
            max_retries=max_retries,
            max_connections=max_connections,
            retry_policy=RetryPolicy(max_retries=max_retries, max_server_wait=max_retry_wait),
            default_headers=default_headers,
            allow_insecure_http=allow_insecure_http,
        )
        self.chat: Final = AsyncChat(self)
        self.models: Final = AsyncModels(self)

    def __repr__(self) -> str:
        t = self._transport
        state = "closed" if t.closed else ("open" if t.is_open else "unopened")
        return f"<AsyncClient base_url={str(t.base_url)!r} {state}>"

    @property
    def base_url(self) -> str:
        """The API base URL this client talks to."""
        return str(self._transport.base_url)

    @property
    def max_connections(self) -> int:
        """Size of the connection pool."""
        return self._transport.max_connections

    @property
    def max_retries(self) -> int:
        """Default retries per request."""
        return self._transport.max_retries

    @property
    def is_closed(self) -> bool:
        """True after ``aclose()``."""
        return self._transport.closed

    async def __aenter__(self) -> AsyncClient:
        self._transport.session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent; the client cannot be used afterwards."""
        await self._transport.aclose()

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and transport.is_open:
            # Only warn: scheduling cleanup from __del__ is unsafe (the loop may be gone).
            warnings.warn(
                "AsyncClient was never closed; use 'async with AsyncClient()' or "
                "'await client.aclose()'",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )

    # --- internals shared by chat, the batch runner and the sync facade -------------------

    def _send_chat(
        self,
        body: Mapping[str, Any],
        *,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        on_retry: RetryHook | None = None,
    ) -> Coroutine[Any, Any, ChatResponse]:
        # A plain function returning the transport's coroutine: awaiting it costs no extra
        # coroutine frame on the hot path. Invalid options raise here, before anything is sent.
        t = self._transport
        opts = t.options(
            timeout=timeout,
            timeout_given=timeout is not NOT_GIVEN,
            max_retries=max_retries,
            extra_headers=extra_headers,
            on_retry=on_retry,
        )
        return t.request("POST", "/chat", body=dumps(body), opts=opts, parse=load_chat_response)

    def _open_stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: TimeoutLike | _NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> AsyncChatStream:
        t = self._transport
        opts = t.options(
            timeout=timeout,
            timeout_given=timeout is not NOT_GIVEN,
            max_retries=max_retries,
            extra_headers=extra_headers,
        )
        return AsyncChatStream(transport=t, path="/chat", body=dumps(body), opts=opts)


_PARAM_NAMES: Final = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "tools",
    "tool_choice",
    "use_search_engine",
)


def _chat_body(args: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
    """The validated wire body from the arguments of ``create``/``create_stream``.

    ``args`` is the method's ``locals()``, so the parameter list is written once, in the
    signature, and the same names reach the validator.
    """
    params = {}
    for name in _PARAM_NAMES:  # a loop, not a comprehension: one frame less per request
        if args[name] is not None:
            params[name] = args[name]
    if "stop" in params:
        params["stop"] = _as_list(params["stop"])
    if "tools" in params:
        params["tools"] = _as_list(params["tools"])
    return request_body(
        model=args["model"],
        messages=args["messages"],
        params=params,
        stream=stream,
        extra_body=args["extra_body"],
    )


def _load_models(raw: bytes) -> list[Model]:
    return parse_models(loads(raw))


def call_args(frame_locals: Mapping[str, Any]) -> dict[str, Any]:
    """A method's keyword arguments from its ``locals()`` (``self`` dropped), for forwarding."""
    return {k: v for k, v in frame_locals.items() if k != "self"}


def _as_list(value: Any) -> Any:
    """A list from a sequence argument; anything else (``None``, a single ``str``, a wrong type)
    goes to validation unchanged, so ``stop="END"`` is one stop string, not three, and a wrong
    type is an ``InvalidRequestError`` rather than a ``TypeError`` from ``list()``."""
    if value is None or type(value) is list:
        return value
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return value


def _as_default_timeout(value: float | None) -> Timeout:
    if value is None:
        return Timeout(connect=None, read=None, total=None)
    return Timeout(total=float(value), read=min(float(value), DEFAULT_TIMEOUT.read or float(value)))
