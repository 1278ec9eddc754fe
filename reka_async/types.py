"""The types a user spells: request and option TypedDicts, Literals, aliases and protocols.

As ``openai.types``: what a caller writes in an annotation or a dict literal lives here, so the
top level (``reka_async``) holds only what a caller holds, catches or passes. The message and
part dicts (``MessageParam``, ``ContentPartParam``, ``ToolParam``, ...) are plain dicts at run
time; a type checker and an editor use them to reject ``{"role": "usr"}`` before anything is
sent. ``ChatParams``/``ChatArgs`` are the chat keywords, declared once; ``ClientOptions`` and
``CopyOptions`` are ``AsyncClient``'s and ``copy()``'s. The hook, transport and budget types
are the shapes of what a caller passes to ``AsyncClient`` (``on_request=``, ``transport=``,
``connector_factory=``, ``rate_budget=``). The ``*WithRawResponse`` classes are what
``client.chat.with_raw_response`` and ``client.models.with_raw_response`` return, for
annotations. ``BatchOptions`` stays at the top level, beside ``BatchRunner``.

This module is a door, like the package's ``__init__``: it re-exports and defines nothing, and
no module of the package imports it.
"""

from __future__ import annotations

from ._chat import AsyncChatWithRawResponse
from ._client import ClientOptions, CopyOptions
from ._http import (
    AsyncTransport,
    Budget,
    ClientState,
    ConnectorFactory,
    RequestHook,
    ResponseHook,
    RetryHook,
    TimeoutLike,
    TransportRequest,
    TransportResponse,
)
from ._http.quota import Quota
from ._listing import AsyncModelsWithRawResponse
from ._models import Content, ContentPart, ModelPricing
from ._research import ResponseFormat
from ._sync import ChatWithRawResponse, ModelsWithRawResponse
from ._tools import ToolCallRecord
from ._types import (
    Api,
    AssistantMessageParam,
    AudioPartParam,
    ChatArgs,
    ChatParams,
    ContentPartParam,
    FunctionCallParam,
    FunctionDefinitionParam,
    FunctionToolParam,
    ImagePartParam,
    MediaUrlParam,
    MessageParam,
    NotGiven,
    OpenAIToolCallParam,
    PdfPartParam,
    Role,
    SystemMessageParam,
    TextPartParam,
    ToolCallParam,
    ToolChoice,
    ToolMessageParam,
    ToolOutputMessageParam,
    ToolOutputParam,
    ToolParam,
    ToolRunArgs,
    UserMessageParam,
    VideoPartParam,
)
from .batch import ResultHook

__all__ = [
    "AsyncChatWithRawResponse",
    "AsyncModelsWithRawResponse",
    "ChatWithRawResponse",
    "ModelsWithRawResponse",
    "Api",
    "AssistantMessageParam",
    "AsyncTransport",
    "AudioPartParam",
    "Budget",
    "ChatArgs",
    "ChatParams",
    "ClientOptions",
    "ClientState",
    "ConnectorFactory",
    "Content",
    "ContentPart",
    "ContentPartParam",
    "CopyOptions",
    "FunctionCallParam",
    "FunctionDefinitionParam",
    "FunctionToolParam",
    "ImagePartParam",
    "MediaUrlParam",
    "MessageParam",
    "ModelPricing",
    "NotGiven",
    "OpenAIToolCallParam",
    "PdfPartParam",
    "Quota",
    "RequestHook",
    "ResponseFormat",
    "ResponseHook",
    "ResultHook",
    "RetryHook",
    "Role",
    "SystemMessageParam",
    "TextPartParam",
    "TimeoutLike",
    "ToolCallParam",
    "ToolCallRecord",
    "ToolChoice",
    "ToolMessageParam",
    "ToolOutputMessageParam",
    "ToolOutputParam",
    "ToolParam",
    "ToolRunArgs",
    "TransportRequest",
    "TransportResponse",
    "UserMessageParam",
    "VideoPartParam",
]
