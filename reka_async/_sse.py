"""A sans-I/O server-sent-events decoder, fed arbitrary byte splits.

``SSEDecoder`` follows the WHATWG event-stream rules: CRLF/CR/LF line ends, multi-line
``data:``, ``event:``/``id:``/``retry:`` fields, comments.
"""

from __future__ import annotations

import attrs

__all__ = ["SSEDecoder", "ServerSentEvent"]


@attrs.frozen(kw_only=True)
class ServerSentEvent:
    """One dispatched server-sent event."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental, sans-I/O SSE decoder following the WHATWG event-stream rules."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_retry")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode more bytes; return the events completed by them."""
        buf = self._buf + chunk if self._buf else chunk
        if not buf:
            return []
        lines = buf.splitlines(keepends=True)
        last = lines[-1]
        # An unterminated line, or one ending in a lone CR (its LF may be in the next chunk),
        # waits for more bytes.
        if last[-1:] == b"\r" or last[-1:] != b"\n":
            self._buf = last
            del lines[-1]
        else:
            self._buf = b""
        events: list[ServerSentEvent] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r\n"), events)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """Finish at end of input: the pending line, then any event not yet dispatched."""
        events: list[ServerSentEvent] = []
        if self._buf:
            self._line(self._buf.rstrip(b"\r\n"), events)
            self._buf = b""
        self._line(b"", events)
        return events

    def _line(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        if not raw:
            if self._data:
                events.append(
                    ServerSentEvent(
                        event=self._event or "message",
                        data="\n".join(self._data),
                        id=self._id,
                        retry=self._retry,
                    )
                )
            self._data = []
            self._event = ""
            return
        line = raw.decode("utf-8", "replace")
        if line[0] == ":":
            return
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
