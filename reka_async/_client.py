"""``AsyncClient``: ``chat.create``, ``chat.create_stream``, ``chat.send_body`` and
``models.list`` over one connection pool."""

from __future__ import annotations

import os
import warnings
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, TypedDict, TypeVar

import attrs

from ._exceptions import APIResponseValidationError, MissingAPIKeyError, body_snippet
from ._http import (
    DEFAULT_TIMEOUT,
    ClientState,
    RetryHook,
    RetryPolicy,
    Timeout,
    TimeoutLike,
    Transport,
    check_base_url,
    coerce_timeout,
)
from ._http.options import check_max_retries
from ._models import ChatResponse, Model
from ._stream import AsyncChatStream
from ._types import NOT_GIVEN, Api, NotGiven
from ._wire import chat_body, dumps, load_models, loads
from ._wire.dialects import DIALECTS, OPENAI_ONLY_MODELS, Dialect, check_api, choose
from ._wire.schema import response_format_for, structure_answer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._types import ChatArgs, ParseArgs

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_CONNECTIONS",
    "AsyncClient",
    "ClientOptions",
    "ParsedResponse",
]

T = TypeVar("T")

DEFAULT_BASE_URL: Final = "https://api.reka.ai/v1"
DEFAULT_MAX_CONNECTIONS: Final = 1024


class AsyncChat:
    """``client.chat``: chat completions, plain, streamed and parsed, on either dialect."""

    __slots__ = ("_dialect", "_transport")

    def __init__(self, transport: Transport, dialect: Dialect) -> None:
        self._transport = transport
        self._dialect = dialect

    def _route(self, body: Mapping[str, Any], api: Any) -> Dialect:
        if (
            api is None
            and "research" not in body
            and "response_format" not in body
            and body["model"] not in OPENAI_ONLY_MODELS
        ):
            return self._dialect
        return choose(api, body, self._dialect, DIALECTS)

    async def create(self, **args: Unpack[ChatArgs]) -> ChatResponse:
        """Generate a reply to a conversation.

        Args:
            **args: ``messages`` and ``model`` (required), the generation parameters
                (``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``stop``, ``seed``,
                ``presence_penalty``, ``frequency_penalty``, ``tools``, ``tool_choice``,
                ``use_search_engine``, ``research``, ``response_format``; ``None`` leaves
                the server default) and the per-call options ``api``, ``timeout``,
                ``max_retries``, ``extra_headers``, ``extra_body``. Every key is documented
                on ``reka_async.ChatArgs``.

        Returns:
            The ``ChatResponse``, the same on both dialects; ``response.text`` is the first
            answer's text.

        Raises:
            InvalidRequestError: an argument is invalid (nothing was sent).
            APIStatusError: the server answered with an error (a subclass per status).
            APIConnectionError: no complete answer (``APITimeoutError`` on a timeout).
            APIResponseValidationError: the 2xx body was not the documented shape.
        """
        body = chat_body(args, stream=False, what="create")
        return await self.send_body(
            body,
            api=args.get("api"),
            timeout=args.get("timeout", NOT_GIVEN),
            max_retries=args.get("max_retries"),
            extra_headers=args.get("extra_headers"),
        )

    def create_stream(self, **args: Unpack[ChatArgs]) -> AsyncChatStream:
        """Stream a reply as it is generated.

        Takes the same arguments as ``create``. Iterate the result with ``async for``
        (or use it with ``async with``): each ``ChatChunk`` has ``delta`` (the new text) and
        ``responses[0].chunk.content`` (the whole text so far, whether the server sent
        cumulative content or deltas). The request is retried while nothing has been received
        yet; a break afterwards raises ``StreamError``, a stall ``APITimeoutError``.

        Raises:
            InvalidRequestError: at once, when an argument is invalid.
        """
        body = chat_body(args, stream=True, what="create_stream")
        dialect = self._route(body, args.get("api"))
        wire = body if dialect.encode is None else dialect.encode(body)
        t = self._transport
        opts = t.default_options.override(
            timeout=args.get("timeout", NOT_GIVEN),
            max_retries=args.get("max_retries"),
            extra_headers=args.get("extra_headers"),
        )
        return AsyncChatStream(
            transport=t,
            path=dialect.path,
            body=dumps(wire),
            opts=opts,
            decode=dialect.decode_event,
            bearer=dialect.bearer,
        )

    async def parse(self, **args: Unpack[ParseArgs[T]]) -> ParsedResponse[T]:
        """Ask for an answer in a given structure and return it structured (OpenAI dialect).

        Args:
            **args: as in ``create``, and ``response_format`` (required): an attrs class (its
                JSON schema is sent, strict, and the answer is structured into it), or a JSON
                schema dict (the answer is returned decoded).

        Returns:
            A ``ParsedResponse``: ``parsed`` (the instance, or the decoded JSON for a dict
            schema) and ``response`` (the ``ChatResponse``).

        Raises:
            InvalidRequestError: the class has a field type with no JSON schema, or another
                argument is invalid.
            APIResponseValidationError: the answer is not JSON, or does not fit the class.
        """
        target: Any = args.get("response_format")
        if target is None:
            raise TypeError("parse() missing required keyword argument: 'response_format'")
        call: Any = {**args, "response_format": response_format_for(target)}
        response = await self.create(**call)
        try:
            data = loads(response.text)
        except ValueError as exc:
            raise _unfit(response, f"the answer is not JSON ({exc})") from exc
        if isinstance(target, Mapping):
            return ParsedResponse(parsed=data, response=response)
        try:
            parsed = structure_answer(data, target)
        except ValueError as exc:
            raise _unfit(response, str(exc)) from exc
        return ParsedResponse(parsed=parsed, response=response)

    def send_body(
        self,
        body: Mapping[str, Any],
        /,
        *,
        api: Api | None = None,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        on_retry: RetryHook | None = None,
    ) -> Coroutine[Any, Any, ChatResponse]:
        """Send a body that is already built and validated (the canonical, native form).

        For code that builds bodies itself, such as ``BatchRunner`` (its ``prepare`` returns
        one). The dialect is chosen as for ``create`` and the body converted for it. Awaiting
        the result sends the request; invalid options raise here, before that.

        Args:
            body: the JSON body, e.g. from ``BatchRunner.prepare``.
            api, timeout, max_retries, extra_headers: as in ``create``.
            on_retry: called with a ``RetryEvent`` before each retry's wait.

        Returns:
            A coroutine of the ``ChatResponse``.
        """
        # A plain function returning the transport's coroutine: awaiting it costs no extra
        # coroutine frame on the hot path.
        if (
            api is None
            and "research" not in body
            and "response_format" not in body
            and body["model"] not in OPENAI_ONLY_MODELS
        ):
            dialect = self._dialect  # the common case, checked inline: no call on the hot path
        else:
            dialect = choose(api, body, self._dialect, DIALECTS)
        t = self._transport
        opts = t.default_options.override(
            timeout=timeout, max_retries=max_retries, extra_headers=extra_headers, on_retry=on_retry
        )
        return t.request(
            "POST",
            dialect.path,
            body=dumps(body if dialect.encode is None else dialect.encode(body)),
            opts=opts,
            parse=dialect.load,
            bearer=dialect.bearer,
        )


@attrs.frozen(kw_only=True)
class ParsedResponse(Generic[T]):
    """The answer of ``chat.parse``: structured, with the response it came in.

    Attributes:
        parsed: the answer structured into the requested class (or decoded JSON).
        response: the whole ``ChatResponse``.
    """

    parsed: T
    response: ChatResponse

    @property
    def text(self) -> str:
        """The answer's raw text (the JSON)."""
        return self.response.text


def _unfit(response: ChatResponse, problem: str) -> APIResponseValidationError:
    return APIResponseValidationError(
        f"structured output: {problem}; the answer starts: {body_snippet(response.text)!r}",
        status_code=200,
        body=response.text,
        request_id=None,
    )


class AsyncModels:
    """``client.models``: the models this key may use."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def list(
        self,
        *,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> list[Model]:
        """List the available models.

        Args:
            timeout, max_retries, extra_headers: as in ``chat.create``.

        Returns:
            ``Model`` entries; ``model.id`` is the name to pass as ``model=``.
        """
        t = self._transport
        opts = t.default_options.override(
            timeout=timeout, max_retries=max_retries, extra_headers=extra_headers
        )
        return await t.request("GET", "/models", body=None, opts=opts, parse=load_models)

    get = list  # the official SDK's name


class ClientOptions(TypedDict, total=False):
    """The keyword options of ``AsyncClient`` (and of the sync ``Client``, which passes them
    on); each is documented on ``AsyncClient``. A test pins these keys to its signature."""

    api: Api
    max_retries: int | None
    timeout: TimeoutLike
    max_connections: int
    max_retry_wait: float | None
    retry_policy: RetryPolicy | None
    default_headers: Mapping[str, str] | None
    allow_insecure_http: bool


class AsyncClient:
    """Async client for the Reka Chat API.

    Use it as ``async with AsyncClient() as client: ...`` or call ``await client.aclose()``.
    One client holds one connection pool; share it across tasks rather than making one per call.

    Args:
        api_key: the API key; default ``REKA_API_KEY`` from the environment.
        base_url: default ``REKA_BASE_URL``, else ``https://api.reka.ai/v1``.
        api: the default dialect: ``"native"`` (``POST /chat``) or ``"openai"`` (the
            compatible ``POST /chat/completions``); a call may override it with ``api=``.
            Research, structured outputs and ``reka-flash-research`` always use the latter.
        max_retries: retries per request (408, 409, rate-limit 429, 5xx, connection errors and
            timeouts); 0 disables them. Default: ``retry_policy.max_retries`` (2).
        timeout: a ``Timeout`` (connect/read/total), seconds (the total of one attempt, also
            capping connect and read), or ``None`` for none.
        max_connections: size of the connection pool (the most requests in flight at once).
        max_retry_wait: the longest server-requested wait (``retry-after``) slept through;
            a longer one is raised at once with ``retry_after`` on the error. Default:
            ``retry_policy.max_server_wait`` (120 s).
        retry_policy: the whole ``RetryPolicy`` (backoff base and cap too); ``max_retries``
            and ``max_retry_wait``, when given, override its fields.
        default_headers: headers sent with every request.
        allow_insecure_http: allow ``http://`` to a host that is not loopback.

    Raises:
        MissingAPIKeyError: no key given and ``REKA_API_KEY`` unset.
        ValueError: an option is invalid (the message says which and why).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        api: Api = "native",
        max_retries: int | None = None,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_retry_wait: float | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("REKA_API_KEY")
        if not key:
            raise MissingAPIKeyError(
                "no API key: pass api_key=... or set the REKA_API_KEY environment variable"
            )
        url = check_base_url(
            base_url or os.environ.get("REKA_BASE_URL") or DEFAULT_BASE_URL,
            allow_insecure_http=allow_insecure_http,
        )
        check_max_retries(max_retries, allow_none=True)
        dialect = DIALECTS[check_api(api)]
        if isinstance(max_connections, bool) or max_connections < 1:
            raise ValueError(f"max_connections: must be at least 1, got {max_connections!r}")
        policy = retry_policy if retry_policy is not None else RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        if max_retry_wait is not None:
            policy = attrs.evolve(policy, max_server_wait=max_retry_wait)
        self._transport = Transport(
            api_key=key,
            base_url=url,
            timeout=coerce_timeout(timeout),
            retry_policy=policy,
            max_connections=max_connections,
            default_headers=default_headers,
        )
        self.chat: Final = AsyncChat(self._transport, dialect)
        self.models: Final = AsyncModels(self._transport)

    def __repr__(self) -> str:
        t = self._transport
        return f"<AsyncClient base_url={str(t.base_url)!r} {t.state.value}>"

    @property
    def base_url(self) -> str:
        """The API base URL this client talks to."""
        return str(self._transport.base_url)

    @property
    def api(self) -> Api:
        """The default dialect of chat calls."""
        return self.chat._dialect.name

    @property
    def timeout(self) -> Timeout:
        """The default timeout of every request."""
        return self._transport.timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy of every request."""
        return self._transport.retry_policy

    @property
    def max_connections(self) -> int:
        """Size of the connection pool."""
        return self._transport.max_connections

    @property
    def max_retries(self) -> int:
        """Default retries per request."""
        return self._transport.retry_policy.max_retries

    @property
    def state(self) -> ClientState:
        """``UNOPENED`` (no connection yet), ``OPEN`` or ``CLOSED``: a ``ClientState``."""
        return self._transport.state

    @property
    def is_closed(self) -> bool:
        """True after ``aclose()``."""
        return self._transport.state is ClientState.CLOSED

    @property
    def cooldown_remaining(self) -> float:
        """Seconds until requests may start again after a rate-limit 429 (0 when none)."""
        return self._transport.cooldown.remaining()

    @property
    def connections_in_use(self) -> int:
        """Connections currently held by a request or an open stream (0 when idle)."""
        return self._transport.connections_in_use

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
        if transport is not None and transport.state is ClientState.OPEN:
            # Only warn: scheduling cleanup from __del__ is unsafe (the loop may be gone).
            warnings.warn(
                "AsyncClient was never closed; use 'async with AsyncClient()' or "
                "'await client.aclose()'",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )
