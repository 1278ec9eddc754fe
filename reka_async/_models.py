"""Wire types of the Reka Chat API: frozen, slotted, keyword-only attrs classes with no I/O.

Field names and nesting follow the API exactly, so the vendor's attribute paths
(``response.responses[0].message.content``) work unchanged. Conversion to and from the wire
lives in ``_wire/``; ``to_dict()``/``to_json()`` on every model give its fields as plain JSON
data (the native layout, whichever dialect answered; ``_serial.Serializable``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from ._media import MAX_MEDIA_BYTES, MediaKind, bytes_data_url, file_data_url
from ._serial import NOT_DATA, Serializable
from ._types import Role, ToolChoice

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "AudioPart",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ChunkResponse",
    "Content",
    "ContentPart",
    "ImagePart",
    "Message",
    "MessageResponse",
    "Model",
    "PdfPart",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolOutput",
    "Usage",
    "VideoPart",
]


@attrs.frozen(kw_only=True)
class TextPart(Serializable):
    """A text content part: ``{"type": "text", "text": "..."}``."""

    type: Literal["text"] = "text"
    text: str


class _MediaPart(Serializable):
    """``from_file`` and ``from_bytes`` for the media parts: a ``data:`` URL in the part's
    ``*_url`` field, with the media type from the file name or its first bytes."""

    __slots__ = ()
    _KIND: ClassVar[MediaKind]

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        media_type: str | None = None,
        max_bytes: int = MAX_MEDIA_BYTES,
    ) -> Self:
        """The part from a local file, sent as a ``data:`` URL.

        Args:
            path: the file (an image: ``.png``, ``.jpg``, ``.gif``, ``.webp``; audio: ``.mp3``,
                ``.wav``, ``.ogg``, ``.flac``; video: ``.mp4``, ``.webm``, ``.mov``; ``.pdf``).
            media_type: e.g. ``"image/png"``; default: from the file name, else from its
                first bytes.
            max_bytes: the largest file accepted (default 20 MiB: the API publishes no
                limit, and a data URL travels in every request body).

        Raises:
            FileNotFoundError: no such file (``OSError`` for other read errors).
            InvalidRequestError: larger than ``max_bytes``, of another kind, or of a type that
                cannot be told (pass ``media_type=``).
        """
        url = file_data_url(path, cls._KIND, media_type=media_type, max_bytes=max_bytes)
        return cls(**{f"{cls._KIND}_url": url})

    @classmethod
    def from_bytes(
        cls, data: bytes, *, media_type: str | None = None, max_bytes: int = MAX_MEDIA_BYTES
    ) -> Self:
        """The part from bytes in memory, sent as a ``data:`` URL (the media type is sniffed
        from the first bytes when not given).

        Raises:
            InvalidRequestError: larger than ``max_bytes``, of another kind, or of an unknown
                type.
        """
        url = bytes_data_url(data, cls._KIND, media_type=media_type, max_bytes=max_bytes)
        return cls(**{f"{cls._KIND}_url": url})


@attrs.frozen(kw_only=True)
class ImagePart(_MediaPart):
    """An image given by URL (``https://`` or a ``data:`` URI)."""

    type: Literal["image_url"] = "image_url"
    image_url: str

    _KIND: ClassVar[MediaKind] = "image"


@attrs.frozen(kw_only=True)
class VideoPart(_MediaPart):
    """A short video given by URL."""

    type: Literal["video_url"] = "video_url"
    video_url: str

    _KIND: ClassVar[MediaKind] = "video"


@attrs.frozen(kw_only=True)
class AudioPart(_MediaPart):
    """An audio clip given by URL."""

    type: Literal["audio_url"] = "audio_url"
    audio_url: str

    _KIND: ClassVar[MediaKind] = "audio"


@attrs.frozen(kw_only=True)
class PdfPart(_MediaPart):
    """A PDF document given by URL."""

    type: Literal["pdf_url"] = "pdf_url"
    pdf_url: str

    _KIND: ClassVar[MediaKind] = "pdf"


@attrs.frozen(kw_only=True)
class ToolOutput(Serializable):
    """The output of a tool call, sent back in a ``tool_output`` message."""

    tool_call_id: str
    output: str


ContentPart = TextPart | ImagePart | VideoPart | AudioPart | PdfPart
#: Message content: plain text, or a list of parts. Parts of a type this version does not know
#: are kept as plain dicts rather than rejected.
Content = str | list[ContentPart | ToolOutput | dict[str, Any]]


@attrs.frozen(kw_only=True)
class ToolCall(Serializable):
    """A call to a tool requested by the model."""

    id: str
    name: str
    parameters: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Tool(Serializable):
    """A function the model may call; ``parameters`` is a JSON schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


def _content_text(content: Content | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out = []
    for part in content:
        if isinstance(part, TextPart):
            out.append(part.text)
        elif isinstance(part, dict) and part.get("type") == "text":
            out.append(str(part.get("text", "")))
    return "".join(out)


@attrs.frozen(kw_only=True)
class UrlCitation(Serializable):
    """A web page an answer cites: ``text[start_index:end_index]`` rests on ``url``."""

    url: str
    title: str | None = None
    start_index: int | None = None
    end_index: int | None = None


@attrs.frozen(kw_only=True)
class Annotation(Serializable):
    """An annotation on an answer's text (Research); ``type`` is ``"url_citation"`` so far."""

    type: str = "url_citation"
    url_citation: UrlCitation | None = None


@attrs.frozen(kw_only=True)
class ReasoningStep(Serializable):
    """One step of a Research answer's reasoning: the model's thought and tool calls (role
    ``"assistant"``), or a tool's output (role ``"tool"``, e.g. ``search_web`` results).

    Attributes:
        role: ``"assistant"`` or ``"tool"``.
        reasoning_content: the thought, on an assistant step.
        tool_calls: the calls it made (``ToolCall.parameters`` holds their ``args``).
        tool_call_id: the call a tool step answers.
        tool_name: the tool of a tool step, e.g. ``"search_web"``.
        tool_output: what the tool returned, as sent (search results: ``url``, ``title``,
            ``snippet``).
    """

    role: str
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    tool_output: Any = None


@attrs.frozen(kw_only=True)
class Message(Serializable):
    """One turn of a conversation.

    Attributes:
        role: ``"user"``, ``"assistant"``, ``"system"`` or ``"tool_output"``.
        content: a string, or a list of content parts (``ToolOutput`` items for ``tool_output``).
        tool_calls: calls the assistant asked for, if any.
        reasoning_content: the model's reasoning before the answer (Research, OpenAI dialect).
        reasoning_steps: its steps, web searches included (Research).
        annotations: citations of the answer's text (Research).
    """

    role: Role
    content: Content | None = None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None
    reasoning_steps: list[ReasoningStep] | None = None
    annotations: list[Annotation] | None = None

    @property
    def text(self) -> str:
        """The text of the content: the string itself, or the text parts joined."""
        return _content_text(self.content)


@attrs.frozen(kw_only=True)
class Usage(Serializable):
    """Token counts of a request."""

    input_tokens: int = 0
    output_tokens: int = 0


@attrs.frozen(kw_only=True)
class MessageResponse(Serializable):
    """One generated answer of a non-streamed response."""

    message: Message
    finish_reason: str | None = None


@attrs.frozen(kw_only=True)
class ChatResponse(Serializable):
    """The response to ``POST /chat``.

    ``response.responses[0].message.content`` works as in the official SDK; ``response.text``
    is the short form.
    """

    id: str
    model: str
    responses: list[MessageResponse]
    usage: Usage = attrs.field(factory=Usage)
    #: The server's ``x-request-id`` for this answer (not part of its data: left out of
    #: ``to_dict()``, equality and the repr).
    request_id: str | None = attrs.field(default=None, eq=False, repr=False, metadata=NOT_DATA)

    @property
    def text(self) -> str:
        """The text of the first response ("" when there is none)."""
        return self.responses[0].message.text if self.responses else ""

    @property
    def finish_reason(self) -> str | None:
        """The finish reason of the first response."""
        return self.responses[0].finish_reason if self.responses else None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls of the first response (empty when there are none)."""
        if self.responses and self.responses[0].message.tool_calls:
            return self.responses[0].message.tool_calls
        return []


@attrs.frozen(kw_only=True)
class ChunkResponse(Serializable):
    """One answer inside a stream event; ``chunk.content`` is cumulative."""

    chunk: Message
    finish_reason: str | None = None


@attrs.frozen(kw_only=True)
class ChatChunk(Serializable):
    """One server-sent event of a streamed chat.

    Attributes:
        responses: the answers so far; ``responses[0].chunk.content`` is the whole text so
            far, whether the server sent cumulative content or deltas.
        usage: token counts, on the event that carried them.
        delta: the text that is new since the previous chunk (computed by the client).
        rewrite: the text so far changed instead of growing: a native stream read as
            cumulative sent an event that proves deltas, and the text was rebuilt from every
            piece (or, with ``stream_mode="cumulative"``, the server's content replaced it).
            ``text`` holds the whole new text and ``delta`` is that whole text, so whoever
            printed the deltas must start over.
    """

    id: str
    model: str
    responses: list[ChunkResponse]
    usage: Usage | None = None
    delta: str = ""
    rewrite: bool = False

    @property
    def text(self) -> str:
        """The cumulative text of the first response so far."""
        return self.responses[0].chunk.text if self.responses else ""

    @property
    def finish_reason(self) -> str | None:
        """The finish reason of the first response (``None`` until the last chunk)."""
        return self.responses[0].finish_reason if self.responses else None


@attrs.frozen(kw_only=True)
class ModelPricing(Serializable):
    """Prices in USD per token, as the API sends them (decimal strings, e.g. ``"0.0000008"``)."""

    prompt: str | None = None
    completion: str | None = None


@attrs.frozen(kw_only=True)
class Model(Serializable):
    """An entry of ``GET /models``; every field but ``id`` is optional (older answers list ids
    only).

    Attributes:
        id: the name to pass as ``model=``.
        name, description: for people.
        context_length: the most tokens of a conversation.
        max_output_length: the most tokens of an answer.
        input_modalities, output_modalities: e.g. ``["text", "image"]``.
        pricing: USD per token.
        owned_by, created: as sent.
    """

    id: str
    name: str | None = None
    description: str | None = None
    context_length: int | None = None
    max_output_length: int | None = None
    input_modalities: list[str] | None = None
    output_modalities: list[str] | None = None
    pricing: ModelPricing | None = None
    owned_by: str | None = None
    created: int | None = None


@attrs.frozen(kw_only=True)
class ChatRequest(Serializable):
    """The body of ``POST /chat``. ``None`` fields are omitted on the wire.

    ``extra_body`` is merged into the JSON as-is, for fields this version does not know.
    ``research`` and ``response_format`` exist on the OpenAI dialect only (a request with
    them is sent to ``/chat/completions``).
    """

    model: str
    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    use_search_engine: bool | None = None
    research: Any = None  # a Research model or its dict (OpenAI dialect)
    response_format: Any = None  # a JsonSchemaFormat model or its dict (OpenAI dialect)
    stream: bool | None = None
    extra_body: dict[str, Any] | None = None
