"""A sans-I/O server-sent-events decoder, fed arbitrary byte splits.

``SSEDecoder`` follows the WHATWG rules for interpreting an event stream (HTML, "Server-sent
events", 9.2.6) to the letter:

* the stream is decoded as UTF-8 (an invalid sequence becoming U+FFFD, a character split
  across chunks decoded once it is whole) and one leading byte order mark is stripped;
* a line ends with CRLF, LF or CR; a blank line dispatches the event, unless no ``data``
  field was seen since the last one (then the event type is reset and nothing is dispatched);
* ``data`` lines are joined with LF; ``event`` names the next event (``message`` when unset);
  ``id`` (ignored when it holds U+0000) persists across events; ``retry`` is kept when it is
  ASCII digits only; lines starting with ``:`` are comments; other fields are ignored;
* at the end of the stream any pending data is discarded: an event without its final blank
  line is never dispatched.

As the standard describes it, the bytes are decoded first and the lines found in the text:
each chunk is decoded once, as a whole, then cut at its line ends with ``str.find``. The cost
is linear in the input however it is split: only the new text is scanned for line ends, and
the pieces of a line that spans many chunks are joined once, when it ends (the decoder this
replaced re-scanned and copied the whole pending line on every chunk).

``max_event_bytes`` bounds the memory one event may take: the characters of its lines, the
one still being received included, since the previous dispatch. For ASCII (every JSON event
the API sends) a character is a byte; other text has fewer characters than bytes.
"""

from __future__ import annotations

from codecs import utf_8_decode
from typing import Final

import attrs

from ._exceptions import ResponseTooLargeError
from ._wire._build import builder

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM: Final = "\ufeff"


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
        max_event_bytes: the most characters (bytes, for ASCII) one event may span: its
            lines since the previous event, comments included; more raises
            ``ResponseTooLargeError``. ``None``: no limit.
    """

    __slots__ = (
        "_data",
        "_event",
        "_id",
        "_limit",
        "_pending",
        "_pending_size",
        "_retry",
        "_size",
        "_skip_lf",
        "_start",
        "_undecoded",
    )

    def __init__(self, *, max_event_bytes: int | None = None) -> None:
        self._limit = max_event_bytes
        self._start = True  # nothing decoded yet: a BOM may come first
        self._undecoded = b""  # the start of a UTF-8 sequence the next chunk completes
        self._pending: list[str] = []  # the pieces of a line not yet ended
        self._pending_size = 0
        self._skip_lf = False  # the last text ended in CR: an LF next is part of that CRLF
        self._size = 0  # characters of the current event's complete lines
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode more bytes; return the events completed by them.

        Raises:
            ResponseTooLargeError: the current event passed ``max_event_bytes``.
        """
        if self._undecoded:
            chunk = self._undecoded + chunk
        text, used = utf_8_decode(chunk, "replace", False)
        self._undecoded = chunk[used:] if used < len(chunk) else b""
        if self._start:
            if not text:
                return []
            self._start = False
            if text[0] == _BOM:
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        if "\r" in text:  # CR and CRLF line ends (rare): made LF, and the LF path reads them
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        events: list[ServerSentEvent] = []
        pos = 0
        if self._pending:  # a line begun in earlier reads: only that line is joined
            end = text.find("\n")
            if end < 0:
                self._pending.append(text)  # the line goes on: no copy of what came before
                self._pending_size += len(text)
                self._check(0)
                return events
            self._pending.append(text[:end])
            line = "".join(self._pending)
            self._pending = []
            self._pending_size = 0
            self._line(line, events)
            pos = end + 1
        return self._lines(text, pos, events)

    def _lines(self, text: str, pos: int, events: list[ServerSentEvent]) -> list[ServerSentEvent]:
        """``events`` and those of ``text`` from ``pos``, which starts a line (LF line ends)."""
        find = text.find
        limit = self._limit
        while (end := find("\n", pos)) >= 0:
            # The usual event, one "data: " line and its blank line, made straight from the
            # line when nothing of another event is pending: it saves two ``_line`` calls a
            # chunk, 18 of a native chunk's 180 traced lines and about 8 % of its instructions
            # (``python -m benchmarks.budget --instructions``; benchmarks/README.md, "Fast
            # paths"). Any other line goes through the general rules, ``_line``, so the events
            # are the same: ``tests/unit/test_fast_paths_match_the_general_ones.py`` decodes
            # any stream whole (this path) and byte by byte (the other).
            if (
                text.startswith("data: ", pos)
                and text.startswith("\n", end + 1)
                and not self._data
                and not self._event
                and (limit is None or self._size + end - pos < limit)
            ):
                events.append(_new_event("message", text[pos + 6 : end], self._id, self._retry))
                self._size = 0
                pos = end + 2
            else:
                self._line(text[pos:end], events)
                pos = end + 1
        if pos < len(text):
            tail = text[pos:] if pos else text
            self._pending = [tail]
            self._pending_size = len(tail)
            self._check(0)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of input: discard what is pending (an incomplete event is never dispatched).

        Returns:
            Always an empty list (kept so that callers may treat the end like a chunk).
        """
        self._undecoded = b""
        self._pending = []
        self._pending_size = 0
        self._start = False
        self._skip_lf = False
        self._size = 0
        self._data = []
        self._event = ""
        return []

    def _check(self, extra: int) -> None:
        limit = self._limit
        if limit is not None and self._size + self._pending_size + extra > limit:
            raise ResponseTooLargeError(
                f"a stream event is larger than max_response_bytes ({limit} bytes); the "
                "stream was dropped. Raise the client's max_response_bytes if events this "
                "large are expected",
                limit=limit,
            )

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
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
            size = self._size + len(line) + 1
            if size > self._limit:
                self._check(len(line) + 1)  # raises
            self._size = size
        if line[0] == ":":  # a comment
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
