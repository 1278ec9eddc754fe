"""The native dialect, ``POST /v1/chat``, for `MockRekaServer`; and what a dialect provides.

A research model (``reka-flash-research``) is served only by ``/v1/chat/completions``; on
``/v1/chat`` it is a 400 ``validation_error`` naming the endpoint to use (a model the server
knows, asked for on the wrong endpoint, rather than an unknown one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from ._faults import error_body
from ._replies import Reply, fallback_reply, make_reply, response_body, stream_events
from ._research import RESEARCH_MODELS
from ._validation import validate

NativeStream = Literal["cumulative", "delta"]


class Dialect(Protocol):
    """What the server's chat handler asks of an endpoint's dialect."""

    @property
    def done(self) -> bool | None:
        """Whether its streams end with ``data: [DONE]`` (None: as ``sse_done`` says)."""

    def validate(self, body: Any) -> list[dict[str, Any]]:
        """The 422 ``detail`` entries of a body; [] when valid."""

    def refuse(self, body: dict[str, Any]) -> tuple[int, bytes] | None:
        """The status and body refusing a valid request, or None to answer it."""

    def reply(self, body: dict[str, Any], call_id: Callable[[], str]) -> Reply:
        """The deterministic reply to a valid, accepted body."""

    def json_body(self, chat_id: str, model: str, reply: Reply) -> bytes:
        """The body of a non-streaming answer."""

    def events(
        self, chat_id: str, model: str, reply: Reply, stream_chunks: int | None
    ) -> list[bytes]:
        """The payload of every event of a stream."""


class NativeDialect:
    """``/v1/chat``.

    Args:
        models: The model ids accepted.
        stream: ``"cumulative"`` (``chunk.content`` is the text so far) or ``"delta"``
            (each event's new text).
        trailer: Streams end with a usage-only event with empty ``responses``, then
            ``data: [DONE]``.

    Raises:
        ValueError: ``stream`` is neither.
    """

    __slots__ = ("delta", "models", "trailer")

    def __init__(self, *, models: frozenset[str], stream: NativeStream, trailer: bool) -> None:
        if stream not in ("cumulative", "delta"):
            raise ValueError("native_stream must be 'cumulative' or 'delta'")
        self.models = models
        self.delta = stream == "delta"
        self.trailer = trailer

    @property
    def done(self) -> bool | None:
        """``[DONE]`` after a trailer; otherwise as the server's ``sse_done`` says."""
        return True if self.trailer else None

    def validate(self, body: Any) -> list[dict[str, Any]]:
        """The 422 ``detail`` entries of a body; [] when valid."""
        return validate(body)

    def refuse(self, body: dict[str, Any]) -> tuple[int, bytes] | None:
        """404 for an unknown model, 400 for a research model."""
        model: str = body["model"]
        if model in RESEARCH_MODELS:
            message = f"Model '{model}' is only available on /v1/chat/completions"
            return 400, error_body("validation_error", message)
        if model not in self.models:
            return 404, error_body("not_found_error", f"Model '{model}' not found")
        return None

    def reply(self, body: dict[str, Any], call_id: Callable[[], str]) -> Reply:
        """The deterministic reply to a valid, accepted body."""
        return make_reply(body, call_id)

    def json_body(self, chat_id: str, model: str, reply: Reply) -> bytes:
        """The body of a non-streaming answer."""
        return response_body(chat_id, model, reply)

    def events(
        self, chat_id: str, model: str, reply: Reply, stream_chunks: int | None
    ) -> list[bytes]:
        """The payload of every event of a stream."""
        return stream_events(
            chat_id, model, reply, stream_chunks, delta=self.delta, trailer=self.trailer
        )


def fault_material(
    dialect: Dialect,
    body: Any,
    call_id: Callable[[], str],
    chat_id: Callable[[], str],
    stream_chunks: int | None,
) -> tuple[Callable[[], bytes], Callable[[], list[bytes]] | None]:
    """What a fault may corrupt: the JSON body and, for a stream, its events (else None).

    A request the dialect would answer gets its real reply; any other a fallback echo.
    Both are built only when the fault needs them.
    """
    valid = not dialect.validate(body)
    model = body["model"] if valid else "reka-core"

    def reply() -> Reply:
        if valid and dialect.refuse(body) is None:
            return dialect.reply(body, call_id)
        return fallback_reply(body)

    def json_body() -> bytes:
        return dialect.json_body(chat_id(), model, reply())

    def events() -> list[bytes]:
        return dialect.events(chat_id(), model, reply(), stream_chunks)

    return json_body, events if valid and body.get("stream") is True else None
