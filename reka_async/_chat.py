"""``client.chat``: the chat resource of ``AsyncClient``, on either dialect.

``AsyncChat`` builds the canonical body of a call (``_wire.request``), picks its dialect
(``_wire.dialects``: the call's ``api=``, else the client's, but Research and structured
outputs always go to the compatible endpoint), converts the body for it and sends it through
the transport; streams are ``AsyncChatStream`` objects over the same transport.

``with_raw_response`` gives the same calls with the HTTP answer around the parsed one
(``_raw.RawResponse``); ``run_tools`` runs a conversation
with Python functions as tools (``_tools.ToolLoop``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import attrs

from ._exceptions import APIResponseValidationError, InvalidRequestError, body_snippet
from ._http import Budget, Call, Hooks, ResponseHook, RetryHook, TimeoutLike, Transport
from ._http.options import RequestOptions
from ._models import ChatResponse
from ._raw import Capture, RawResponse
from ._serial import Serializable
from ._stream import AsyncChatStream
from ._tools import DEFAULT_MAX_ROUNDS, FunctionTool, ToolLoop, ToolRun
from ._types import NOT_GIVEN, Api, NotGiven, StreamMode, check_stream_mode
from ._wire import chat_body, dumps, loads
from ._wire.dialects import DIALECTS, Dialect, choose
from ._wire.schema import response_format_for, structure_answer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._types import ChatArgs, ParseArgs, ToolRunArgs

__all__ = ["AsyncChat", "AsyncChatWithRawResponse", "ParsedResponse"]

T = TypeVar("T")


class AsyncChatWithRawResponse:
    """``client.chat.with_raw_response``: the calls of ``client.chat`` returning a
    ``RawResponse`` (status, headers, the body as received, and ``.parse()``)."""

    __slots__ = ("_chat",)

    def __init__(self, chat: AsyncChat) -> None:
        self._chat = chat

    async def create(self, **args: Unpack[ChatArgs]) -> RawResponse[ChatResponse]:
        """``chat.create`` with the HTTP answer: ``raw.parse()`` is the ``ChatResponse``.

        Raises:
            RekaError: as ``chat.create`` raises.
        """
        body = chat_body(args, stream=False, what="create")
        capture = Capture()
        response = await self._chat.send_body(
            body,
            api=args.get("api"),
            timeout=args.get("timeout", NOT_GIVEN),
            max_retries=args.get("max_retries"),
            extra_headers=args.get("extra_headers"),
            on_response=capture,
        )
        return capture.raw(response)


class AsyncChat:
    """``client.chat``: chat completions, plain, streamed and parsed, on either dialect.

    ``with_raw_response`` has the same ``create`` returning the HTTP answer too.
    """

    __slots__ = ("_dialect", "_transport", "stream_mode", "with_raw_response")

    def __init__(
        self, transport: Transport, dialect: Dialect, stream_mode: StreamMode = "auto"
    ) -> None:
        self._transport = transport
        self._dialect = dialect
        #: How ``create_stream`` reads native content by default (the client's).
        self.stream_mode: StreamMode = stream_mode
        self.with_raw_response = AsyncChatWithRawResponse(self)

    @property
    def api(self) -> Api:
        """The default dialect of these calls (the client's)."""
        return self._dialect.name

    @overload
    async def create(
        self, *, stream: Literal[False] = False, **args: Unpack[ChatArgs]
    ) -> ChatResponse: ...

    @overload
    async def create(
        self, *, stream: Literal[True], **args: Unpack[ChatArgs]
    ) -> AsyncChatStream: ...

    @overload
    async def create(
        self, *, stream: bool, **args: Unpack[ChatArgs]
    ) -> ChatResponse | AsyncChatStream: ...

    async def create(
        self, *, stream: bool = False, **args: Unpack[ChatArgs]
    ) -> ChatResponse | AsyncChatStream:
        """Generate a reply to a conversation.

        Args:
            stream: ``True`` returns the ``AsyncChatStream`` of ``create_stream(...)``
                instead (openai-python's spelling; ``create_stream`` is the same call).
            **args: the keys of ``reka_async.types.ChatArgs``, below; ``None``, or leaving
                a key out, keeps the server's default.

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
            The ``ChatResponse``, the same on both dialects; ``response.text`` is the first
            answer's text. With ``stream=True``, the stream (its request starts when it is
            iterated or entered).

        Raises:
            TypeError: ``stream`` is not a bool.
            InvalidRequestError: an argument is invalid (nothing was sent).
            APIStatusError: the server answered with an error (a subclass per status).
            APIConnectionError: no complete answer (``APITimeoutError`` on a timeout).
            APIResponseValidationError: the 2xx body was not the documented shape.
        """
        if stream is True:
            return self.create_stream(**args)
        if stream is not False:
            raise TypeError(f"create(): stream must be True or False, got {stream!r}")
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

        Native content is read as cumulative until an event proves deltas (a ``rewrite``
        chunk says when the text so far changed); ``stream_mode="delta"`` or
        ``"cumulative"`` pins the reading for a server whose deltas can look cumulative.

        Raises:
            InvalidRequestError: at once, when an argument is invalid.
        """
        body = chat_body(args, stream=True, what="create_stream")
        mode = args.get("stream_mode")
        if mode is None:
            mode = self.stream_mode
        else:
            try:
                mode = check_stream_mode(mode)
            except ValueError as exc:
                raise InvalidRequestError(str(exc)) from None
        dialect = choose(args.get("api"), body, self._dialect, DIALECTS)
        wire = body if dialect.encode is None else dialect.encode(body)
        t = self._transport
        opts = t.default_options.override(
            timeout=args.get("timeout", NOT_GIVEN),
            max_retries=args.get("max_retries"),
            extra_headers=args.get("extra_headers"),
        )
        call: Call[Any] = t.call(
            "POST",
            dialect.path,
            body=dumps(wire),
            opts=opts,
            payload=body,
            bearer=dialect.bearer,
            stream=True,
        )
        return AsyncChatStream(
            transport=t,
            call=call,
            decode=dialect.decode_event,
            text_event=dialect.text_event,
            mode=mode,
        )

    async def run_tools(
        self,
        *,
        tools: Sequence[Callable[..., Any] | FunctionTool],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        raise_tool_errors: bool = False,
        **args: Unpack[ToolRunArgs],
    ) -> ToolRun:
        """Run a conversation in which the model may call Python functions.

        Each round sends the conversation with the tools' schemas; when the answer asks for
        tools, each call is run (``await``-ed if the function is ``async``; a plain function
        runs on the event loop, so keep it quick) and its output sent back in the next round,
        until the model answers without a call or ``max_rounds`` model calls were made.
        Works on both dialects.

        Args:
            tools: the functions (their schema is read from the signature and docstring, see
                ``function_tool``), or ``FunctionTool`` objects.
            max_rounds: the most model calls (at least 1).
            raise_tool_errors: raise what a tool raises (an unknown tool or arguments that do
                not fit: ``LookupError``/``TypeError``) instead of telling the model.
            **args: as in ``create`` (``messages`` and ``model`` required), but ``tools`` and
                ``response_format``; ``tool_choice`` applies to the first round only.

        Returns:
            A ``ToolRun``: the last ``response``, the whole conversation as ``messages``,
            every call made (``calls``), ``rounds`` and ``finished``.

        Raises:
            InvalidRequestError: an argument is invalid, or a tool's signature has a type with
                no JSON schema.
            APIError: a request failed (as in ``create``).
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
            response = await self.create(**rest, **loop.next_request())
            calls = loop.answered(response)
            if not calls:
                return loop.result()
            for call in calls:
                prepared = loop.prepare(call)
                if prepared is None:
                    continue
                function, kwargs = prepared
                try:
                    value = function(**kwargs)
                    if inspect.isawaitable(value):
                        value = await value
                except Exception as exc:
                    loop.finish(call, error=exc)
                else:
                    loop.finish(call, value=value)

    async def parse(self, **args: Unpack[ParseArgs[T]]) -> ParsedResponse[T]:
        """Ask for an answer in a given structure and return it structured (OpenAI dialect).

        Args:
            **args: as in ``create``, and ``response_format`` (required): a class, whose JSON
                schema is sent and into which the answer is structured (an attrs class, a
                dataclass or a TypedDict, validated by cattrs; a pydantic v2 model, validated
                by pydantic), or a JSON schema dict (the answer is returned decoded).

        Returns:
            A ``ParsedResponse``: ``parsed`` (the instance, or the decoded JSON for a dict
            schema) and ``response`` (the ``ChatResponse``).

        Raises:
            InvalidRequestError: the class has a field type with no JSON schema, or another
                argument is invalid.
            APIResponseValidationError: the answer is not JSON, or does not fit the class
                (the message names the failing field's path).
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

    async def send_body(
        self,
        body: Mapping[str, Any],
        /,
        *,
        api: Api | None = None,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        on_retry: RetryHook | None = None,
        on_response: ResponseHook | None = None,
        budgets: tuple[Budget, ...] = (),
    ) -> ChatResponse:
        """Send a body that is already built and validated (the canonical, native form).

        For code that builds bodies itself, such as ``BatchRunner`` (its ``prepare`` returns
        one). The dialect is chosen as for ``create`` and the body converted for it.

        Args:
            body: the JSON body, e.g. from ``BatchRunner.prepare``.
            api: as in ``create``.
            timeout: as in ``create``.
            max_retries: as in ``create``.
            extra_headers: as in ``create``.
            on_retry: called with a ``RetryEvent`` before each retry's wait (after the
                client's own ``on_retry``).
            on_response: called with the ``ResponseEvent`` of each attempt of this request
                (after the client's own ``on_response``).
            budgets: ``Budget`` objects every attempt reserves from on top of the
                client's (a ``BatchRunner``'s rate and cost budgets).

        Returns:
            The ``ChatResponse``.
        """
        opts = self._transport.default_options.override(
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            on_retry=on_retry,
            hooks=None if on_response is None else Hooks(on_response=[on_response]),
            budgets=budgets,
        )
        return await self._send(body, api, opts)

    async def _send(
        self, body: Mapping[str, Any], api: Api | None, opts: RequestOptions
    ) -> ChatResponse:
        """``send_body`` with its options already made (``RequestOptions``, from the client's
        ``default_options.override``): ``BatchRunner``'s workers make theirs once, not per
        item."""
        dialect = choose(api, body, self._dialect, DIALECTS)
        t = self._transport
        call = t.call(
            "POST",
            dialect.path,
            body=dumps(body if dialect.encode is None else dialect.encode(body)),
            opts=opts,
            parse=dialect.load,
            payload=body,
            bearer=dialect.bearer,
        )
        response: ChatResponse = await t.send(call)
        return response


@attrs.frozen(kw_only=True)
class ParsedResponse(Serializable, Generic[T]):
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
