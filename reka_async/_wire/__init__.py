"""Bytes to typed objects and back, in exactly one way per type.

``request`` validates a chat request and builds its (native, canonical) wire body; ``native``
decodes the native dialect's responses; ``openai`` derives the ``/chat/completions`` body from
the canonical one and decodes that dialect's responses and stream events; ``events`` is what
both dialects' stream decoders produce; ``_convert`` holds the private cattrs converter;
``_json`` the JSON backend.
"""

from ._convert import converter
from ._json import dumps, loads
from .native import (
    load_chat_response,
    load_models,
    parse_chat_response,
    parse_chunk_event,
    parse_models,
)
from .openai import load_completion, parse_completion, parse_completion_chunk, to_openai_body
from .request import chat_body, request_body, request_from_model, wire_messages

__all__ = [
    "chat_body",
    "converter",
    "dumps",
    "load_chat_response",
    "load_completion",
    "load_models",
    "loads",
    "parse_chat_response",
    "parse_chunk_event",
    "parse_completion",
    "parse_completion_chunk",
    "parse_models",
    "request_body",
    "request_from_model",
    "to_openai_body",
    "wire_messages",
]
