"""Types shared by every layer: the "not given" sentinel, the Literals, the chat arguments.

This module sits at the top of the layout and imports nothing from the rest of the package at
run time (the names under ``TYPE_CHECKING`` are for annotations only).

The shapes of the plain dicts a caller may write are declared here too, as TypedDicts with
``Literal`` roles and part types (``MessageParam``, ``ContentPartParam``, ``ToolParam``,
``ToolCallParam``, ...), so a type checker and an editor reject ``{"role": "usr"}`` or a
misspelled key before anything is sent. At run time they are plain dicts; validation of what
arrives stays in ``_wire/request.py``.

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
    from ._models import ContentPart, Message, TextPart, Tool, ToolCall, ToolOutput
    from ._research import Research, ResponseFormat

__all__ = [
    "APIS",
    "NOT_GIVEN",
    "OPTION_NAMES",
    "PARAM_NAMES",
    "ROLES",
    "STREAM_MODES",
    "TOOL_CHOICES",
    "Api",
    "AssistantMessageParam",
    "AudioPartParam",
    "ChatArgs",
    "ChatParams",
    "ContentPartParam",
    "FunctionCallParam",
    "FunctionDefinitionParam",
    "FunctionToolParam",
    "ImagePartParam",
    "MediaUrlParam",
    "MessageParam",
    "NotGiven",
    "OpenAIToolCallParam",
    "PdfPartParam",
    "Role",
    "StreamMode",
    "SystemMessageParam",
    "TextPartParam",
    "ToolCallParam",
    "ToolChoice",
    "ToolMessageParam",
    "ToolOutputMessageParam",
    "ToolOutputParam",
    "check_stream_mode",
    "ToolParam",
    "ToolRunArgs",
    "UserMessageParam",
    "VideoPartParam",
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

#: How a native stream's ``chunk.content`` is read: ``"auto"`` (cumulative until an event
#: proves deltas), or pinned ``"cumulative"`` / ``"delta"``. The OpenAI dialect sends deltas.
StreamMode = Literal["auto", "cumulative", "delta"]
STREAM_MODES: Final[frozenset[str]] = frozenset(("auto", "cumulative", "delta"))


def check_stream_mode(value: Any) -> StreamMode:
    """``value`` as a ``StreamMode``, or ``ValueError`` saying what to write."""
    if not isinstance(value, str) or value not in STREAM_MODES:
        raise ValueError(f"stream_mode: must be 'auto', 'cumulative' or 'delta', got {value!r}")
    return value  # type: ignore[return-value]


#: ``"required"`` (the OpenAI word) is the same as ``"tool"``: the model must call a tool. Either
#: is accepted; the request body carries ``"tool"`` on ``/chat`` and ``"required"`` on
#: ``/chat/completions``.
ToolChoice = Literal["auto", "none", "tool", "required"]
TOOL_CHOICES: Final[frozenset[str]] = frozenset(("auto", "none", "tool", "required"))


# --------------------------------------------------------------------------- message dicts


class TextPartParam(TypedDict):
    """``{"type": "text", "text": "..."}``."""

    type: Literal["text"]
    text: str


class MediaUrlParam(TypedDict, total=False):
    """The OpenAI form of a media URL: ``{"url": "...", "detail": ...}``."""

    url: Required[str]
    detail: str


class ImagePartParam(TypedDict):
    """``{"type": "image_url", "image_url": "https://... or data:..."}`` (or OpenAI's
    ``{"url": ...}`` object)."""

    type: Literal["image_url"]
    image_url: str | MediaUrlParam


class VideoPartParam(TypedDict):
    """``{"type": "video_url", "video_url": "..."}``."""

    type: Literal["video_url"]
    video_url: str | MediaUrlParam


class AudioPartParam(TypedDict):
    """``{"type": "audio_url", "audio_url": "..."}``."""

    type: Literal["audio_url"]
    audio_url: str | MediaUrlParam


class PdfPartParam(TypedDict):
    """``{"type": "pdf_url", "pdf_url": "..."}``."""

    type: Literal["pdf_url"]
    pdf_url: str | MediaUrlParam


#: A content part as a dict.
ContentPartParam = TextPartParam | ImagePartParam | VideoPartParam | AudioPartParam | PdfPartParam


class ToolOutputParam(TypedDict):
    """One tool result in a ``tool_output`` message: ``{"tool_call_id", "output"}``."""

    tool_call_id: str
    output: str


class ToolCallParam(TypedDict):
    """An assistant's tool call, native form: ``{"id", "name", "parameters": {...}}``."""

    id: str
    name: str
    parameters: Mapping[str, Any]


class FunctionCallParam(TypedDict):
    """The ``function`` of an OpenAI tool call: ``arguments`` is a JSON string."""

    name: str
    arguments: str


class OpenAIToolCallParam(TypedDict):
    """An assistant's tool call, OpenAI form: ``{"id", "type": "function", "function"}``."""

    id: str
    type: Literal["function"]
    function: FunctionCallParam


class SystemMessageParam(TypedDict):
    """``{"role": "system", "content": ...}``."""

    role: Literal["system"]
    content: str | Sequence[TextPartParam | TextPart]


class UserMessageParam(TypedDict):
    """``{"role": "user", "content": ...}``: text, or parts (media first works best)."""

    role: Literal["user"]
    content: str | Sequence[ContentPartParam | ContentPart]


class AssistantMessageParam(TypedDict, total=False):
    """``{"role": "assistant", "content": ..., "tool_calls": [...]}``; as the last message, a
    prefill the answer continues."""

    role: Required[Literal["assistant"]]
    content: str | Sequence[ContentPartParam | ContentPart] | None
    tool_calls: Sequence[ToolCallParam | OpenAIToolCallParam | ToolCall]


class ToolOutputMessageParam(TypedDict):
    """``{"role": "tool_output", "content": [{"tool_call_id", "output"}, ...]}``."""

    role: Literal["tool_output"]
    content: Sequence[ToolOutputParam | ToolOutput]


class ToolMessageParam(TypedDict):
    """OpenAI's tool result, ``{"role": "tool", "tool_call_id", "content"}``: accepted and
    sent as a ``tool_output`` message."""

    role: Literal["tool"]
    tool_call_id: str
    content: str


#: A message as a dict, one shape per role.
MessageParam = (
    SystemMessageParam
    | UserMessageParam
    | AssistantMessageParam
    | ToolOutputMessageParam
    | ToolMessageParam
)


class ToolParam(TypedDict, total=False):
    """A tool, native form: ``{"name", "description", "parameters": <JSON schema>}``."""

    name: Required[str]
    description: str
    parameters: Mapping[str, Any]


class FunctionDefinitionParam(TypedDict, total=False):
    """The ``function`` of an OpenAI tool: ``{"name", "description", "parameters"}``."""

    name: Required[str]
    description: str
    parameters: Mapping[str, Any]


class FunctionToolParam(TypedDict):
    """A tool, OpenAI form: ``{"type": "function", "function": {...}}``."""

    type: Literal["function"]
    function: FunctionDefinitionParam


# --------------------------------------------------------------------------- chat arguments


class _SamplingParams(TypedDict, total=False):
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    top_k: int | None
    stop: str | Sequence[str] | None
    seed: int | None
    presence_penalty: float | None
    frequency_penalty: float | None


class _ToolParams(TypedDict, total=False):
    tools: Sequence[Tool | ToolParam | FunctionToolParam] | None
    tool_choice: ToolChoice | None


class _SearchParams(TypedDict, total=False):
    use_search_engine: bool | None
    research: Research | Mapping[str, Any] | None


class _SharedParams(_SamplingParams, _ToolParams, _SearchParams, total=False):
    # ChatParams but response_format, which chat.parse declares its own way. The bases keep
    # the declaration order of the keys (PARAM_NAMES, the body's key order).
    pass


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
    messages: Required[Sequence[Message | MessageParam]]
    model: Required[str]
    api: Api | None
    timeout: TimeoutLike | NotGiven
    max_retries: int | None
    extra_headers: Mapping[str, str] | None
    extra_body: Mapping[str, Any] | None
    stream_mode: StreamMode | None


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
        stream_mode: how ``create_stream`` reads a native stream's content: ``"auto"``
            (cumulative until an event proves deltas), ``"cumulative"`` or ``"delta"``
            (default: the client's); ``create`` ignores it.
    """


class ToolRunArgs(_SamplingParams, _SearchParams, _CallArgs, total=False):
    """The keywords of ``chat.run_tools`` besides ``tools`` and ``max_rounds``: those of
    ``chat.create`` but ``tools`` (given as functions there) and ``response_format``.

    Keys:
        tool_choice: for the first round only (``"tool"`` forces a call); later rounds use
            ``"auto"``, so the model can answer.
    """

    tool_choice: ToolChoice | None


if TYPE_CHECKING:
    from typing_extensions import TypedDict as GenericTypedDict

    _T = TypeVar("_T")

    class ParseArgs(_SharedParams, _CallArgs, GenericTypedDict, Generic[_T], total=False):
        """The keywords of ``chat.parse``: those of ``chat.create``, with ``response_format``
        required and either a class (an attrs class, a dataclass, a TypedDict or a pydantic
        v2 model: the answer is structured into it) or a JSON schema dict."""

        response_format: Required[type[_T] | Mapping[str, Any]]


#: The request parameters of ``ChatParams``, in declaration order.
PARAM_NAMES: Final[tuple[str, ...]] = tuple(ChatParams.__annotations__)
#: The per-call options of ``ChatArgs`` that are not part of the request body's parameters.
OPTION_NAMES: Final[frozenset[str]] = frozenset(
    ("api", "timeout", "max_retries", "extra_headers", "extra_body", "stream_mode")
)
