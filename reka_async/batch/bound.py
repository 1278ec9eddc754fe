"""The most a request can be billed, in tokens: the bound a ``max_cost`` budget reserves.

The assumption
--------------
A server bills a request **at most**:

* input tokens: one per UTF-8 byte of the request body written as compact JSON
  (``json.dumps(body, ensure_ascii=False, separators=(",", ":"))``: every message's content in
  every role, tool schemas, tool calls and their arguments, tool outputs, Research options,
  field names and punctuation included), where each media part (a content part whose
  ``type`` is not ``"text"``: ``image_url``, ``video_url``, ``audio_url``, ``pdf_url``...)
  counts ``media_tokens`` instead of its bytes, plus ``message_overhead`` tokens per message
  (the chat template's markers);
* output tokens: ``max_tokens``, or 1024 (the API's documented default) when none is given.

A byte-level tokenizer never makes more tokens than bytes, so the input part holds for any
such tokenizer as long as the template adds at most ``message_overhead`` per message. No
source publishes how many tokens Reka bills for an image, a video or a PDF, so a media part
is never guessed: under a budget, a request holding one needs ``media_tokens`` (refused
unsent without it, ``MediaTokensNeededError``). An answer whose ``usage`` exceeds its bound
proves the assumption wrong for that server, and the budget stops the batch
(``UsageAboveBoundError``, ``cost.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_MESSAGE_OVERHEAD", "TokenBound", "token_bound"]

#: The default ``max_tokens`` of the API (the contract): a request without one may use it.
DEFAULT_MAX_TOKENS: Final = 1024
#: The tokens per message the bound adds for the chat template (``message_overhead=``,
#: ``--message-overhead``): the JSON's punctuation already counts about 25 bytes a message.
DEFAULT_MESSAGE_OVERHEAD: Final = 8


@attrs.frozen
class TokenBound:
    """The most a request may be billed (the module docstring's assumption).

    Attributes:
        input: input tokens at most.
        output: output tokens at most.
        media_parts: how many media parts the input counts (each as ``media_tokens``).
    """

    input: int
    output: int
    media_parts: int = 0


def _is_media(part: Any) -> bool:
    return isinstance(part, Mapping) and "type" in part and part["type"] != "text"


def _without_media(messages: Any) -> tuple[Any, int]:
    """``messages`` with each media part replaced by ``{}``, and how many there were."""
    if not isinstance(messages, list):
        return messages, 0
    count = 0
    out: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(_is_media(p) for p in content):
            parts: list[Any] = []
            for part in content:
                if _is_media(part):
                    count += 1
                    parts.append({})
                else:
                    parts.append(part)
            message = {**message, "content": parts}
        out.append(message)
    return out, count


def token_bound(
    body: Mapping[str, Any],
    *,
    message_overhead: int = DEFAULT_MESSAGE_OVERHEAD,
    media_tokens: int = 0,
) -> TokenBound:
    """The token bound of a canonical request ``body`` (the module docstring's rule).

    Args:
        body: the request body.
        message_overhead: tokens added per message.
        media_tokens: tokens counted per media part (``media_parts`` says how many there
            were, so a caller can refuse a request whose media it cannot bound).

    Returns:
        The bound.
    """
    messages = body.get("messages")
    stripped, media = _without_media(messages)
    counted = body if stripped is messages else {**body, "messages": stripped}
    text = json.dumps(counted, ensure_ascii=False, separators=(",", ":"), default=str)
    n_messages = len(messages) if isinstance(messages, list) else 0
    max_tokens = body.get("max_tokens")
    output = (
        max_tokens
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 0
        else DEFAULT_MAX_TOKENS
    )
    return TokenBound(
        input=len(text.encode("utf-8", "surrogatepass"))
        + message_overhead * n_messages
        + media_tokens * media,
        output=output,
        media_parts=media,
    )
