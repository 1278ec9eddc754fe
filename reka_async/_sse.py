"""A sans-I/O server-sent-events decoder, fed arbitrary byte splits.

``SSEDecoder`` follows the WHATWG rules for interpreting an event stream (HTML, "Server-sent
events", 9.2.6) to the letter:

* one leading UTF-8 byte order mark is stripped; the rest is decoded as UTF-8, an invalid
  sequence becoming U+FFFD;
* a line ends with CRLF, LF or CR; a blank line dispatches the event, unless no ``data``
  field was seen since the last one (then the event type is reset and nothing is dispatched);
* ``data`` lines are joined with LF; ``event`` names the next event (``message`` when unset);
  ``id`` (ignored when it holds U+0000) persists across events; ``retry`` is kept when it is
  ASCII digits only; lines starting with ``:`` are comments; other fields are ignored;
* at the end of the stream any pending data is discarded: an event without its final blank
  line is never dispatched.

The cost is linear in the input however it is split: only the new bytes are scanned for line
ends, and the pieces of a line that spans many chunks are joined once, when it ends (the
decoder this replaced re-scanned and copied the whole pending line on every chunk).

``max_event_bytes`` bounds the memory one event may take: the bytes of its lines, the one
still being received included, since the previous dispatch.
"""

from __future__ import annotations

from typing import Final

import attrs

from ._exceptions import ResponseTooLargeError
from ._wire._build import builder

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM: Final = b"\xef\xbb\xbf"

#: Joins the pieces of a line that arrived in several chunks (a name of its own so that the
#: tests can count the bytes it copies: the decoder's cost must stay linear).
_join = b"".join


@attrs.frozen(kw_only=True)
class ServerSentEvent:
    """One dispatched server-sent event."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


#: ``ServerSentEvent(...)`` positionally, without attrs' ``__init__`` (``_wire/_build.py``):
#: built once per event.
_new_event = builder(ServerSentEvent)


class SSEDecoder:
    """Incremental, sans-I/O SSE decoder following the WHATWG event-stream rules.

    Args:
        max_event_bytes: the most bytes one event may span (its lines since the previous
            event, comments included); more raises ``ResponseTooLargeError``. ``None``: no
            limit.
    """

    __slots__ = (
        "_data",
        "_event",
        "_head",
        "_id",
        "_limit",
        "_pending",
        "_pending_size",
        "_retry",
        "_size",
        "_skip_lf",
    )

    def __init__(self, *, max_event_bytes: int | None = None) -> None:
        self._limit = max_event_bytes
        self._head: bytes | None = b""  # the stream's first bytes while a BOM may be split
        self._pending: list[bytes] = []  # the pieces of a line not yet ended
        self._pending_size = 0
        self._skip_lf = False  # the last chunk ended in CR: an LF next is part of that CRLF
        self._size = 0  # bytes of the current event's complete lines
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode more bytes; return the events completed by them.

        Raises:
            ResponseTooLargeError: the current event passed ``max_event_bytes``.
        """
        if (
            chunk[-2:] == b"\n\n"
            and self._head is None
            and not self._pending
            and not self._skip_lf
            and not self._data
            and not self._event
            and not self._size
            and b"\r" not in chunk
        ):
            return self._whole_events(chunk)
        if self._head is not None:
            chunk = self._strip_bom(chunk)
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 10:  # b"\n"
                chunk = chunk[1:]
        if not chunk:
            return []
        if self._pending:
            if b"\n" not in chunk and b"\r" not in chunk:
                self._pending.append(chunk)  # the line goes on: no copy of what came before
                self._pending_size += len(chunk)
                self._check(0)
                return []
            self._pending.append(chunk)
            chunk = _join(self._pending)
            self._pending = []
            self._pending_size = 0
        lines = chunk.splitlines(keepends=True)
        end = lines[-1][-1:]
        tail = None
        if end == b"\r":
            self._skip_lf = True
        elif end != b"\n":
            tail = lines.pop()
        events: list[ServerSentEvent] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r\n"), events)
        if tail is not None:
            self._pending = [tail]
            self._pending_size = len(tail)
            self._check(0)
        return events

    def _whole_events(self, chunk: bytes) -> list[ServerSentEvent]:
        """The fast path of ``feed``: a chunk of whole events (LF line ends, nothing pending).

        It buys about 3 of the 4 µs the general path spends per event of the usual shape,
        one ``data: `` line, by making that event straight from the line. Any other event in
        the chunk (several lines, other fields, a comment, an event over the size limit) goes
        through the general rules, ``_line``, so the result is the same event for event;
        ``tests/test_sse.py`` feeds every case whole (this path) and byte by byte (the other).
        """
        events: list[ServerSentEvent] = []
        limit = self._limit
        for part in chunk[:-2].split(b"\n\n"):
            if part[:6] == b"data: " and b"\n" not in part and (limit is None or len(part) < limit):
                events.append(
                    _new_event(
                        "message", part[6:].decode("utf-8", "replace"), self._id, self._retry
                    )
                )
            else:
                for raw in part.split(b"\n"):
                    self._line(raw, events)
                self._line(b"", events)  # the blank line that ended this part
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of input: discard what is pending (an incomplete event is never dispatched).

        Returns:
            Always an empty list (kept so that callers may treat the end like a chunk).
        """
        self._pending = []
        self._pending_size = 0
        self._head = None
        self._skip_lf = False
        self._size = 0
        self._data = []
        self._event = ""
        return []

    def _strip_bom(self, chunk: bytes) -> bytes:
        head = self._head + chunk if self._head else chunk
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head  # maybe a BOM split across chunks: wait for more
            return b""
        self._head = None
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _check(self, extra: int) -> None:
        limit = self._limit
        if limit is not None and self._size + self._pending_size + extra > limit:
            raise ResponseTooLargeError(
                f"a stream event is larger than max_response_bytes ({limit} bytes); the "
                "stream was dropped. Raise the client's max_response_bytes if events this "
                "large are expected",
                limit=limit,
            )

    def _line(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        if not raw:
            if self._data:
                data = self._data
                events.append(
                    _new_event(
                        self._event or "message",
                        data[0] if len(data) == 1 else "\n".join(data),
                        self._id,
                        self._retry,
                    )
                )
                self._data = []
            self._event = ""
            self._size = 0
            return
        if self._limit is not None:
            size = self._size + len(raw) + 1
            if size > self._limit:
                self._check(len(raw) + 1)  # raises
            self._size = size
        if raw[0] == 58:  # b":": a comment
            return
        line = raw.decode("utf-8", "replace")
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
