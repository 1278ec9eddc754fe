"""The sans-I/O server-sent-events decoder."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reka_async import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def split_at(payload: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("nl", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(nl: bytes) -> None:
    stream = b"data: one" + nl + nl + b"data: two" + nl + nl
    assert decode(stream) == [ServerSentEvent(data="one"), ServerSentEvent(data="two")]


@pytest.mark.parametrize("nl", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_events_are_returned_as_soon_as_complete(nl: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one" + nl) == []
    assert decoder.feed(nl + b"data: tw") == [ServerSentEvent(data="one")]
    assert decoder.feed(b"o" + nl + nl) == ([] if nl == b"\r" else [ServerSentEvent(data="two")])
    assert decoder.feed(b"") == []


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    # "\r" then "\n" in the next chunk: one line end, so both data lines are one event.
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [ServerSentEvent(data="a\nb")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    stream = b'data: {"a":\ndata:  1,\ndata: "b": 2}\n\n'
    assert decode(stream) == [ServerSentEvent(data='{"a":\n 1,\n"b": 2}')]


def test_comments_are_ignored() -> None:
    stream = b": keep-alive\ndata: x\n: in the middle\ndata: y\n\n:\n\n"
    assert decode(stream) == [ServerSentEvent(data="x\ny")]


def test_event_id_and_retry_fields() -> None:
    stream = b"event: error\nid: 42\nretry: 1500\ndata: {}\n\n"
    assert decode(stream) == [ServerSentEvent(event="error", data="{}", id="42", retry=1500)]


def test_event_name_resets_but_id_persists() -> None:
    stream = b"event: update\nid: 7\ndata: a\n\ndata: b\n\n"
    assert decode(stream) == [
        ServerSentEvent(event="update", data="a", id="7"),
        ServerSentEvent(event="message", data="b", id="7"),
    ]


def test_value_without_space_after_colon() -> None:
    assert decode(b"data:x\n\n") == [ServerSentEvent(data="x")]


def test_only_one_leading_space_is_stripped() -> None:
    assert decode(b"data:   x\n\n") == [ServerSentEvent(data="  x")]


def test_field_without_colon_has_empty_value() -> None:
    assert decode(b"data\ndata: x\n\n") == [ServerSentEvent(data="\nx")]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode(b"\n\n\r\n\revent: ping\n\n") == []


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_id_with_nul_is_ignored() -> None:
    assert decode(b"id: 1\ndata: a\n\nid: b\x00c\ndata: b\n\n")[1].id == "1"


@pytest.mark.parametrize("value", [b"soon", b"-5", b"1.5", "\u00b2".encode(), "\u0663".encode()])
def test_non_ascii_digit_retry_is_ignored(value: bytes) -> None:
    assert decode(b"retry: " + value + b"\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_done_sentinel_is_an_ordinary_event() -> None:
    # The decoder is generic; the chat stream is what skips "[DONE]".
    assert decode(b"data: {}\n\ndata: [DONE]\n\n") == [
        ServerSentEvent(data="{}"),
        ServerSentEvent(data="[DONE]"),
    ]


def test_flush_dispatches_an_event_cut_short_at_end_of_input() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: last") == []
    assert decoder.flush() == [ServerSentEvent(data="last")]
    assert decoder.flush() == []


def test_utf8_split_inside_a_character() -> None:
    payload = "data: héllo wörld ✓\n\n".encode()
    cut = payload.index("✓".encode()) + 1
    assert decode(payload[:cut], payload[cut:]) == [ServerSentEvent(data="héllo wörld ✓")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: \xff\xfe\n\n") == [ServerSentEvent(data="\ufffd\ufffd")]


# --- properties -------------------------------------------------------------------------------

# Field values cannot contain line ends; NUL is excluded from ids (ignored by the spec).
line_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)))


@st.composite
def sse_events(draw: st.DrawFn) -> Event:
    event = draw(st.none() | line_text.filter(bool))
    event_id = draw(st.none() | line_text.filter(lambda s: "\0" not in s))
    retry = draw(st.none() | st.integers(0, 10**6))
    data = draw(st.lists(line_text, min_size=1, max_size=4))
    return event, event_id, retry, data


NLS = [b"\n", b"\r\n", b"\r"]
Event = tuple[str | None, str | None, int | None, list[str]]


def serialize(events: list[Event], line_end: Callable[[], bytes], comments: list[bool]) -> bytes:
    out = []
    for i, (event, event_id, retry, data) in enumerate(events):
        lines = []
        if comments[i % len(comments)]:
            lines.append(f": comment {i}")
        if event is not None:
            lines.append("event: " + event)
        if event_id is not None:
            lines.append("id: " + event_id)
        if retry is not None:
            lines.append(f"retry: {retry}")
        lines.extend("data: " + d for d in data)
        lines.append("")
        out.extend(line.encode() + line_end() for line in lines)
    return b"".join(out)


def expected_events(
    events: list[Event],
) -> list[ServerSentEvent]:
    out = []
    last_id: str | None = None
    last_retry: int | None = None
    for event, event_id, retry, data in events:
        last_id = event_id if event_id is not None else last_id
        last_retry = retry if retry is not None else last_retry
        out.append(
            ServerSentEvent(
                event=event or "message", data="\n".join(data), id=last_id, retry=last_retry
            )
        )
    return out


@settings(deadline=None)
@given(
    events=st.lists(sse_events(), max_size=6),
    nl=st.sampled_from(NLS),
    comments=st.lists(st.booleans(), min_size=1, max_size=3),
    data=st.data(),
)
def test_split_stream_decodes_to_the_original_events(
    events: list[Event],
    nl: bytes,
    comments: list[bool],
    data: st.DataObject,
) -> None:
    payload = serialize(events, lambda: nl, comments)
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=12), label="cuts")
    assert decode(*split_at(payload, cuts)) == expected_events(events)


@settings(deadline=None)
@given(
    events=st.lists(sse_events(), max_size=6),
    comments=st.lists(st.booleans(), min_size=1, max_size=3),
    data=st.data(),
)
def test_split_anywhere_equals_feeding_at_once_with_mixed_line_ends(
    events: list[Event],
    comments: list[bool],
    data: st.DataObject,
) -> None:
    payload = serialize(events, lambda: data.draw(st.sampled_from(NLS)), comments)
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=12), label="cuts")
    assert decode(*split_at(payload, cuts)) == decode(payload)


@settings(deadline=None)
@given(payload=st.binary(max_size=400), data=st.data())
def test_arbitrary_bytes_never_raise(payload: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=8), label="cuts")
    events = decode(*split_at(payload, cuts))
    assert all(isinstance(e, ServerSentEvent) for e in events)
    assert events == decode(payload)


@settings(deadline=None)
@given(payload=st.binary(max_size=200))
def test_byte_by_byte_equals_at_once(payload: bytes) -> None:
    one_by_one = [payload[i : i + 1] for i in range(len(payload))]
    assert decode(*one_by_one) == decode(payload)


def test_server_sent_event_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ServerSentEvent(data="x").data = "y"  # type: ignore[misc]
