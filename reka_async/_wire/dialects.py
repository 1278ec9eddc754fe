"""The two dialects of the API, and which one a call goes to.

A ``Dialect`` bundles what differs between ``POST /chat`` (native) and the OpenAI-compatible
``POST /chat/completions``: the path, the body encoder (from the canonical native body this
package builds), the response decoder, the stream event decoder and the auth header.

``choose`` decides a call's dialect: the call's ``api=``, else the client's default; but
Research, structured outputs and ``reka-flash-research`` exist on the compatible endpoint only,
so a request with any of them goes there whatever the *default* says (an explicit
``api="native"`` with them is an ``InvalidRequestError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from .._exceptions import InvalidRequestError
from .._models import ChatResponse
from .._types import APIS, Api
from .events import StreamEvent, TextEvent
from .native import load_chat_response, parse_chunk_event, text_event
from .openai import (
    load_completion,
    parse_completion_chunk,
    text_completion_chunk,
    to_openai_body,
)

__all__ = [
    "DIALECTS",
    "NATIVE",
    "OPENAI",
    "OPENAI_ONLY_MODELS",
    "Dialect",
    "check_api",
    "choose",
]

#: Models served by the OpenAI-compatible endpoint only.
OPENAI_ONLY_MODELS: Final = frozenset(("reka-flash-research",))


@attrs.frozen(kw_only=True)
class Dialect:
    """What one dialect of the API needs on the wire."""

    name: Api
    path: str
    #: From the canonical (native) body to this dialect's; ``None``: sent as it is.
    encode: Callable[[Mapping[str, Any]], dict[str, Any]] | None
    #: ``load(raw, request_id)``: the response body structured.
    load: Callable[[bytes, str | None], ChatResponse]
    decode_event: Callable[[Any], StreamEvent]
    #: The usual event's fields, or ``None`` for any other (then ``decode_event`` decodes it).
    text_event: Callable[[Any], TextEvent | None]
    bearer: bool


NATIVE: Final = Dialect(
    name="native",
    path="/chat",
    encode=None,
    load=load_chat_response,
    decode_event=parse_chunk_event,
    text_event=text_event,
    bearer=False,
)


OPENAI: Final = Dialect(
    name="openai",
    path="/chat/completions",
    encode=to_openai_body,
    load=load_completion,
    decode_event=parse_completion_chunk,
    text_event=text_completion_chunk,
    bearer=True,
)

#: Every dialect by name.
DIALECTS: Final[dict[str, Dialect]] = {"native": NATIVE, "openai": OPENAI}


def check_api(value: Any) -> Api:
    """``value`` as an ``Api``, or ``ValueError`` saying what to write."""
    if not isinstance(value, str) or value not in APIS:
        raise ValueError(f"api: must be 'native' or 'openai', got {value!r}")
    return value  # type: ignore[return-value]


def choose(
    api: Any, body: Mapping[str, Any], default: Dialect, dialects: Mapping[str, Dialect]
) -> Dialect:
    """The dialect of one call (see the module docstring).

    Args:
        api: the call's ``api=`` (``None``: not given).
        body: the canonical (native) body of the request.
        default: the client's dialect.
        dialects: every dialect by name.

    Raises:
        InvalidRequestError: ``api`` is invalid, or ``api="native"`` with options only the
            OpenAI dialect serves.
    """
    needs_openai = (
        body.get("research") is not None
        or body.get("response_format") is not None
        or body.get("model") in OPENAI_ONLY_MODELS
    )
    if api is None:
        return dialects["openai"] if needs_openai else default
    try:
        name = check_api(api)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    if name == "native" and needs_openai:
        raise InvalidRequestError(
            "api='native': research, response_format and reka-flash-research are served by "
            "the OpenAI-compatible endpoint only; drop api= (or pass api='openai')"
        )
    return dialects[name]
