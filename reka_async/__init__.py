"""reka_async: an async-first, high-throughput client for the Reka Chat API.

The top level holds what a user holds, catches or passes: the clients and their resources, the
responses, chunks, messages, parts and usage, the whole error tree, ``Timeout``,
``RetryPolicy``, the batch runner with its options, results and stats, the hook events, the
research and tool options, ``NOT_GIVEN`` and ``__version__``. The types a user spells (the
request and option TypedDicts, Literals, hook and transport protocols) are in
``reka_async.types``; batch machinery is in ``reka_async.batch``, the job format in
``reka_async.jobs``, the mock server in ``reka_async.testing``. Every other module is private.
``tests/unit/public_names.json`` pins these names (``tests/unit/test_public_names.py`` says how
to update it on purpose).
"""

from ._chat import AsyncChat, ParsedResponse
from ._client import AsyncClient, RateLimit
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchAbortedError,
    ConflictError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidRequestError,
    MethodNotAllowedError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RekaError,
    RequestTimeoutError,
    ResponseTooLargeError,
    StreamError,
    UnprocessableEntityError,
)
from ._http import RequestEvent, ResponseEvent, RetryEvent, RetryPolicy, Timeout
from ._listing import AsyncModels
from ._models import (
    Annotation,
    AudioPart,
    ChatChunk,
    ChatResponse,
    ImagePart,
    Message,
    MessageResponse,
    Model,
    PdfPart,
    ReasoningStep,
    TextPart,
    Tool,
    ToolCall,
    ToolOutput,
    UrlCitation,
    Usage,
    VideoPart,
)
from ._raw import RawResponse
from ._research import JsonSchemaFormat, ParallelThinking, Research, UserLocation, WebSearch
from ._stream import AsyncChatStream
from ._sync import Chat, ChatStream, Client, Models
from ._tools import FunctionTool, ToolRun, function_tool
from ._types import NOT_GIVEN
from ._version import __version__
from .batch import (
    BatchOptions,
    BatchResult,
    BatchRunner,
    BatchStats,
    BudgetExceededError,
    CacheError,
    ErrorRateExceededError,
    MediaTokensNeededError,
    UnpricedModelError,
    UsageAboveBoundError,
)

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "Annotation",
    "AsyncChat",
    "AsyncChatStream",
    "AsyncClient",
    "AsyncModels",
    "AudioPart",
    "AuthenticationError",
    "BadRequestError",
    "BatchAbortedError",
    "BatchOptions",
    "BatchResult",
    "BatchRunner",
    "BatchStats",
    "BudgetExceededError",
    "CacheError",
    "Chat",
    "ChatChunk",
    "ChatResponse",
    "ChatStream",
    "Client",
    "ConflictError",
    "ErrorRateExceededError",
    "FunctionTool",
    "ImagePart",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidRequestError",
    "JsonSchemaFormat",
    "Message",
    "MessageResponse",
    "MediaTokensNeededError",
    "MethodNotAllowedError",
    "MissingAPIKeyError",
    "Model",
    "Models",
    "NotFoundError",
    "ParallelThinking",
    "ParsedResponse",
    "PdfPart",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitError",
    "RawResponse",
    "ReasoningStep",
    "RekaError",
    "RequestEvent",
    "RequestTimeoutError",
    "Research",
    "ResponseEvent",
    "ResponseTooLargeError",
    "RetryEvent",
    "RetryPolicy",
    "StreamError",
    "TextPart",
    "Timeout",
    "Tool",
    "ToolCall",
    "ToolOutput",
    "ToolRun",
    "UnpricedModelError",
    "UnprocessableEntityError",
    "UsageAboveBoundError",
    "UrlCitation",
    "Usage",
    "UserLocation",
    "VideoPart",
    "WebSearch",
    "__version__",
    "function_tool",
]
