"""Types shared by every layer: the "not given" sentinel, the Literals, the chat arguments.

This module sits at the top of the layout and imports nothing from the rest of the package at
run time (the names under ``TYPE_CHECKING`` are for annotations only).

The chat arguments are declared once, here, as the ``ChatArgs`` TypedDict. ``chat.create``,
``chat.create_stream`` and the sync facade's methods take ``**args: Unpack[ChatArgs]``, so an
editor completes and a type checker checks every keyword, and the body is built from the
keywords the caller actually passed (never from a method's ``locals()``). A test pins the
request parameters to the fields of ``ChatRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypedDict, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Required

    from ._http.options import TimeoutLike
    from ._models import Message, Tool
    from ._research import Research, ResponseFormat

__all__ = [
    "APIS",
    "NOT_GIVEN",
    "OPTION_NAMES",
    "PARAM_NAMES",
    "ROLES",
    "TOOL_CHOICES",
    "ChatArgs",
    "Api",
    "ChatParams",
    "NotGiven",
    "Role",
    "ToolChoice",
]


class NotGiven:
    """Sentinel for "argument not given", where ``None`` has a meaning of its own.

    ``timeout=None`` means "no timeout", so "use the client's timeout" needs another value:
    ``NOT_GIVEN``, the only instance. It is falsy.
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "NOT_GIVEN"  # pickles (Ray, multiprocessing) as the same singleton


NOT_GIVEN: Final = NotGiven()

Role = Literal["user", "assistant", "system", "tool_output"]
ROLES: Final[frozenset[str]] = frozenset(("user", "assistant", "system", "tool_output"))

#: The two dialects of the API: ``POST /chat`` and the OpenAI-compatible ``/chat/completions``.
Api = Literal["native", "openai"]
APIS: Final[frozenset[str]] = frozenset(("native", "openai"))

#: ``"required"`` (the OpenAI word) is the same as ``"tool"``: the model must call a tool. Either
#: is accepted; the request body carries ``"tool"`` on ``/chat`` and ``"required"`` on
#: ``/chat/completions``.
ToolChoice = Literal["auto", "none", "tool", "required"]
TOOL_CHOICES: Final[frozenset[str]] = frozenset(("auto", "none", "tool", "required"))


class _SharedParams(TypedDict, total=False):
    # ChatParams but response_format, which chat.parse declares its own way.
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    top_k: int | None
    stop: str | Sequence[str] | None
    seed: int | None
    presence_penalty: float | None
    frequency_penalty: float | None
    tools: Sequence[Tool | Mapping[str, Any]] | None
    tool_choice: ToolChoice | None
    use_search_engine: bool | None
    research: Research | Mapping[str, Any] | None


class ChatParams(_SharedParams, total=False):
    """The generation parameters of a chat request, as in the API; all optional.

    ``None`` (or leaving a key out) keeps the server's default.

    Keys:
        max_tokens: the most tokens to generate (at least 1).
        temperature: sampling temperature.
        top_p: nucleus sampling mass.
        top_k: sample from the k most likely tokens.
        stop: a stop string or a list of them.
        seed: for reproducible sampling.
        presence_penalty: penalty for tokens already present.
        frequency_penalty: penalty by how often a token appeared.
        tools: functions the model may call (``Tool`` models or dicts, ours or OpenAI's).
        tool_choice: ``"auto"``, ``"none"`` or ``"tool"`` (OpenAI's ``"required"``).
        use_search_engine: let the model search the web (native dialect).
        research: Research options (``Research`` or a dict: web search, parallel thinking);
            OpenAI dialect only, so a request with it goes to ``/chat/completions``.
        response_format: structured output (``JsonSchemaFormat`` or a dict); OpenAI dialect
            only, like ``research``.
    """

    response_format: ResponseFormat | Mapping[str, Any] | None


class _CallArgs(TypedDict, total=False):
    messages: Required[Sequence[Message | Mapping[str, Any]]]
    model: Required[str]
    api: Api | None
    timeout: TimeoutLike | NotGiven
    max_retries: int | None
    extra_headers: Mapping[str, str] | None
    extra_body: Mapping[str, Any] | None


class ChatArgs(ChatParams, _CallArgs, total=False):
    """Every keyword of ``chat.create`` / ``chat.create_stream``: the conversation, the model,
    the ``ChatParams`` and the per-call options.

    Keys:
        messages: the conversation, as ``Message`` models or dicts
            (``{"role": "user", "content": "..."}``); required. End with an ``assistant``
            message to prefill the start of the answer.
        model: e.g. ``"reka-flash"``, ``"reka-core"``; required. ``"reka-flash-research"``
            is served by the OpenAI dialect only, so it goes there whatever ``api`` says.
        api: ``"native"`` or ``"openai"``: the dialect of this call (default: the client's).
        timeout: a ``Timeout``, seconds (total, capping connect and read), or ``None`` for no
            timeout; this call only (default: the client's).
        max_retries: retries for this call (default: the client's).
        extra_headers: headers added to this request.
        extra_body: fields merged into the JSON body as they are, for fields this version
            does not know.
    """


if TYPE_CHECKING:
    from typing_extensions import TypedDict as GenericTypedDict

    _T = TypeVar("_T")

    class ParseArgs(_SharedParams, _CallArgs, GenericTypedDict, Generic[_T], total=False):
        """The keywords of ``chat.parse``: those of ``chat.create``, with ``response_format``
        required and either an attrs class (the answer is structured into it) or a JSON
        schema dict."""

        response_format: Required[type[_T] | Mapping[str, Any]]


#: The request parameters of ``ChatParams``, in declaration order.
PARAM_NAMES: Final[tuple[str, ...]] = tuple(ChatParams.__annotations__)
#: The per-call options of ``ChatArgs`` that are not part of the request body's parameters.
OPTION_NAMES: Final[frozenset[str]] = frozenset(
    ("api", "timeout", "max_retries", "extra_headers", "extra_body")
)
