"""``request_hash``: the one identity of a request, shared by ``--resume`` and the request cache.

Two requests have the same hash exactly when the API would be asked the same question: the
same canonical (native) wire body (model, messages, every parameter, ``extra_body`` merged in),
sent in the same dialect to the same API host. Not part of it: ``custom_id``, metadata, the
``stream`` flag (a streamed and a whole answer are the same question), the port and scheme of
the base URL (so an in-process mock on a fresh port each run keeps its hashes), and client
options (timeouts, retries, headers).

The hash is ``"sha256:"`` and 32 hex digits (128 bits) of the canonical JSON: keys sorted,
no whitespace, non-ASCII kept. Stored in job records, so changing this function means
changing the record format (bump ``jobs`` record version and keep reading the old one).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from .dialects import DIALECTS, choose

__all__ = ["request_hash", "request_hasher_for"]

_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(body: Mapping[str, Any], *, api: str, host: str) -> str:
    """The identity of a request (see the module docstring).

    Args:
        body: the canonical (native) wire body, as ``request_body`` built it.
        api: the dialect that sends it (``"native"`` or ``"openai"``; never ``"auto"``).
        host: the API host without scheme or port, e.g. ``"api.reka.ai"``.
    """
    if "stream" in body:
        body = {k: v for k, v in body.items() if k != "stream"}
    text = _encoder.encode({"api": api, "body": body, "host": host.lower()})
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def request_hasher_for(base_url: str, api: str) -> Callable[[Mapping[str, Any]], str]:
    """``hash(body)``: the identity of a body sent to ``base_url`` in dialect ``api``
    (``"auto"`` picks the dialect each body needs, as the client does)."""
    host = urllib.parse.urlsplit(base_url).hostname or ""
    default = DIALECTS[api]

    def hash_body(body: Mapping[str, Any]) -> str:
        dialect = choose(None, body, default, DIALECTS)
        return request_hash(body, api=dialect.name, host=host)

    return hash_body
