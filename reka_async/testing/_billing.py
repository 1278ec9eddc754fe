"""How the mock bills an answer's ``usage``: its words (the default), or like a server whose
billing a client's estimate must survive.

``Billing`` makes the mock bill by bytes, the most a byte-level tokenizer can make of a
request: one input token per UTF-8 byte of the request body as compact JSON, each media part
(a content part whose ``type`` is not ``"text"``) billed ``media_tokens`` instead of its
bytes, plus ``message_overhead`` per message; and ``max_tokens`` output tokens (1024 when
absent), whatever the reply's length. ``extra_input`` and ``extra_output`` bill that much more
on every answer: a server beyond that bound (reasoning billed above ``max_tokens``, a template
heavier than the overhead). Written here, apart from the client's own bound, so the mock stays
an independent oracle of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Billing"]

_DEFAULT_MAX_TOKENS: Final = 1024


def _media(part: Any) -> bool:
    return isinstance(part, dict) and "type" in part and part["type"] != "text"


@dataclass(frozen=True, slots=True)
class Billing:
    """Byte billing (the module docstring).

    Args:
        message_overhead: input tokens billed per message on top of the bytes.
        media_tokens: input tokens billed per media part.
        extra_input: input tokens billed on top of all that, per answer.
        extra_output: output tokens billed beyond ``max_tokens``, per answer.
    """

    message_overhead: int = 0
    media_tokens: int = 0
    extra_input: int = 0
    extra_output: int = 0

    def usage(self, body: dict[str, Any]) -> tuple[int, int]:
        """``(input_tokens, output_tokens)`` billed for a valid request ``body``."""
        messages = body.get("messages")
        media = 0
        counted_messages: list[Any] = []
        for message in messages if isinstance(messages, list) else []:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                kept: list[Any] = []
                for part in content:
                    if _media(part):
                        media += 1
                        kept.append({})
                    else:
                        kept.append(part)
                message = dict(message, content=kept)
            counted_messages.append(message)
        counted = dict(body, messages=counted_messages) if isinstance(messages, list) else body
        size = len(json.dumps(counted, ensure_ascii=False, separators=(",", ":")).encode())
        n = len(counted_messages)
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            max_tokens = body.get("max_completion_tokens")
        output = max_tokens if isinstance(max_tokens, int) else _DEFAULT_MAX_TOKENS
        return (
            size + self.message_overhead * n + self.media_tokens * media + self.extra_input,
            output + self.extra_output,
        )
