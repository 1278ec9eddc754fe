"""Bytes to typed objects and back, in exactly one way per type.

``request`` validates a chat request and builds its wire body; ``native`` decodes the native
dialect's responses; ``_convert`` holds the private cattrs converter; ``_json`` the JSON backend.
"""

from ._convert import converter
from ._json import dumps, loads
from .native import (
    load_chat_response,
    load_models,
    parse_chat_response,
    parse_chunk,
    parse_chunk_event,
    parse_models,
)
from .request import chat_body, request_body, request_from_model, wire_messages

__all__ = [
    "chat_body",
    "converter",
    "dumps",
    "load_chat_response",
    "load_models",
    "loads",
    "parse_chat_response",
    "parse_chunk",
    "parse_chunk_event",
    "parse_models",
    "request_body",
    "request_from_model",
    "wire_messages",
]
