"""The sans-I/O server-sent-events decoder."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable, Iterable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reka_async import ResponseTooLargeError
from reka_async._sse import ServerSentEvent, SSEDecoder


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
    # A CR ends its line at once (an LF right after it, maybe in the next chunk, is the rest
    # of a CRLF): a CR-only stream is not held back by one chunk.
    assert decoder.feed(b"o" + nl + nl) == [ServerSentEvent(data="two")]
    assert decoder.feed(b"") == []


def test_lf_after_a_cr_that_ended_a_chunk_is_not_a_second_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the LF of "\r\n", not a blank line
    assert decoder.feed(b"\r") == [ServerSentEvent(data="a")]


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


@pytest.mark.parametrize(
    "tail", [b"data: last", b"data: last\n", b"data: last\r\n", b"event: x\ndata: last\r"]
)
def test_an_event_without_its_blank_line_is_discarded_at_end_of_input(tail: bytes) -> None:
    # "Once the end of the file is reached, any pending data must be discarded."
    decoder = SSEDecoder()
    assert decoder.feed(b"data: first\n\n" + tail) == [ServerSentEvent(data="first")]
    assert decoder.flush() == []
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


# --- the WHATWG specification's own examples (HTML, 9.2.6) ---------------------------------------

#: Each example stream of "Interpreting an event stream", as bytes, and the events the text
#: says it fires. Where the spec says "once followed by a blank line", the blank line is there.
SPEC_EXAMPLES = [
    pytest.param(
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        [ServerSentEvent(data="YHOO\n+2\n10")],
        id="three-data-lines",
    ),
    pytest.param(
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n",
        [
            ServerSentEvent(data="first event", id="1"),
            ServerSentEvent(data="second event", id=""),  # "id" alone resets the last id
            ServerSentEvent(data=" third event", id=""),  # one leading space stripped
        ],
        id="four-blocks",
    ),
    pytest.param(
        # "the end of the stream is not enough to trigger the dispatch of the last event"
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n",
        [
            ServerSentEvent(data="first event", id="1"),
            ServerSentEvent(data="second event", id=""),
        ],
        id="four-blocks-without-the-last-blank-line",
    ),
    pytest.param(
        b"data\n\ndata\ndata\n\ndata:",
        [ServerSentEvent(data=""), ServerSentEvent(data="\n")],
        id="two-events-last-block-discarded",
    ),
    pytest.param(
        b"data:test\n\ndata: test\n\n",
        [ServerSentEvent(data="test"), ServerSentEvent(data="test")],
        id="two-identical-events",
    ),
    pytest.param(
        # The introduction's stream with two event types.
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [
            ServerSentEvent(event="add", data="73857293"),
            ServerSentEvent(event="remove", data="2153"),
            ServerSentEvent(event="add", data="113411"),
        ],
        id="event-types",
    ),
]


@pytest.mark.parametrize(("stream", "events"), SPEC_EXAMPLES)
@pytest.mark.parametrize("nl", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["no-BOM", "BOM"])
def test_spec_examples_whole_and_byte_by_byte(
    stream: bytes, events: list[ServerSentEvent], nl: bytes, bom: bytes
) -> None:
    payload = bom + stream.replace(b"\n", nl)
    assert decode(payload) == events
    assert decode(*(payload[i : i + 1] for i in range(len(payload)))) == events


def test_only_one_leading_bom_is_stripped() -> None:
    bom = b"\xef\xbb\xbf"
    # A second BOM is part of the first line: its field name is "\ufeffdata", an unknown one.
    assert decode(bom + bom + b"data: x\n\ndata: y\n\n") == [ServerSentEvent(data="y")]
    # A BOM anywhere but at the very start is data.
    assert decode(b"data: " + bom + b"\n\n") == [ServerSentEvent(data="\ufeff")]


def test_a_stream_of_only_part_of_a_bom_dispatches_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"\xbb") == []
    assert decoder.flush() == []
    # Not a BOM after all: the bytes are the start of the first line.
    assert decode(b"\xef\xbb", b"data: x\n\n") == []  # field "\ufffddata": ignored
    assert decode(b"\xef", b"\n", b"data: x\n\n") == [ServerSentEvent(data="x")]


# --- bounded memory, linear cost ---------------------------------------------------------------


def test_an_event_over_the_limit_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    assert decoder.feed(b"data: " + b"x" * 80 + b"\n\n") == [ServerSentEvent(data="x" * 80)]
    with pytest.raises(ResponseTooLargeError) as info:
        decoder.feed(b"data: " + b"y" * 60 + b"\ndata: " + b"y" * 60 + b"\n\n")
    assert info.value.limit == 100
    assert "max_response_bytes (100 bytes)" in str(info.value)


def test_an_unterminated_line_over_the_limit_raises_before_it_ends() -> None:
    decoder = SSEDecoder(max_event_bytes=10_000)
    with pytest.raises(ResponseTooLargeError):  # noqa: PT012 - it fails part-way through
        for _ in range(10):
            decoder.feed(b"x" * 4096)


def test_comments_count_towards_the_event_and_a_dispatch_resets_the_count() -> None:
    decoder = SSEDecoder(max_event_bytes=64)
    for i in range(100):  # far more than 64 bytes in all, but never 64 in one event
        assert decoder.feed(b": ping\ndata: %d\n\n" % i) == [ServerSentEvent(data=str(i))]
    with pytest.raises(ResponseTooLargeError):
        decoder.feed(b": ping\n" * 10)


def peak_bytes_while(feed: Callable[[], None]) -> int:
    """The most memory allocated at once (tracemalloc's peak) while ``feed`` runs."""
    tracemalloc.start()
    try:
        feed()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("megabytes", [2, 8])
def test_a_long_line_fed_in_small_pieces_is_held_once_until_it_ends(megabytes: int) -> None:
    size = megabytes * 1024 * 1024
    decoder = SSEDecoder()
    piece = b"x" * 4096
    assert decoder.feed(b"data: ") == []

    def feed() -> None:
        for _ in range(size // len(piece)):
            assert decoder.feed(piece) == []

    # The pieces are kept as they came and joined once, when the line ends: a decoder that
    # joined the pending line again for every piece (the characters copied growing with the
    # square of the line) holds the old copy and the new one at once, twice the line.
    assert peak_bytes_while(feed) < 1.3 * size
    assert decoder.feed(b"\n\n") == [ServerSentEvent(data="x" * size)]


def test_many_events_in_small_pieces_hold_only_their_own_bytes() -> None:
    payload = b"".join(b'data: {"n": %d}\n\n' % i for i in range(20_000))
    decoder = SSEDecoder()
    count = 0

    def feed() -> None:
        nonlocal count
        for i in range(0, len(payload), 7):
            count += len(decoder.feed(payload[i : i + 7]))

    # What is pending is only the current line: memory stays a small fraction of the stream.
    assert peak_bytes_while(feed) < len(payload) / 8
    assert count == 20_000


# --- the fast path for chunks of whole events -----------------------------------------------

USUAL = [
    b'data: {"a":1}\n\n',
    b'data: {"a":1}\n\ndata: {"b":2}\n\n',  # several whole events in one read
    b"data: one\ndata: two\n\ndata: three\n\n",  # a multi-line event among them
    b"event: delta\ndata: x\n\n\n\ndata:y\n\n",  # a named event, blank lines, no space
    b": keep-alive\n\ndata: after a comment\n\n",
    b"id: 7\ndata: with an id\n\ndata: the id persists\n\n",
    b"data: caf\xc3\xa9 \xff\n\n",  # UTF-8, and an invalid byte replaced
    b"data: [DONE]\n\n",
]


@pytest.mark.parametrize("chunk", USUAL)
def test_whole_events_decode_as_the_general_rules_do(chunk: bytes) -> None:
    byte_by_byte = decode(*[chunk[i : i + 1] for i in range(len(chunk))])
    fast = SSEDecoder()
    fast.feed(b"")  # the stream's start (no BOM) is behind it, as on a real stream
    assert fast.feed(chunk) + fast.flush() == byte_by_byte
    assert byte_by_byte  # every case has events


def test_state_from_earlier_chunks_carries_into_whole_events() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: first\n\n") == [ServerSentEvent(data="first")]
    assert decoder.feed(b"id: 9\nretry: 50\n") == []  # fields without their blank line yet
    assert decoder.feed(b"\ndata: next\n\n") == [ServerSentEvent(data="next", id="9", retry=50)]
    assert decoder.feed(b"event: named\n") == []
    assert decoder.feed(b"data: typed\n\n") == [
        ServerSentEvent(event="named", data="typed", id="9", retry=50)
    ]
    assert decoder.feed(b"data: plain\n\n") == [ServerSentEvent(data="plain", id="9", retry=50)]


def test_the_limit_holds_on_whole_events() -> None:
    decoder = SSEDecoder(max_event_bytes=20)
    assert decoder.feed(b"data: " + b"x" * 13 + b"\n\n") == [ServerSentEvent(data="x" * 13)]
    with pytest.raises(ResponseTooLargeError):
        decoder.feed(b"data: ok\n\ndata: " + b"x" * 14 + b"\n\n")


def test_a_character_split_across_reads_is_decoded_once_it_is_whole() -> None:
    payload = "data: café ✓ 𝄞\n\n".encode()
    for cut in range(len(payload) + 1):  # every cut, inside each multi-byte character too
        assert decode(payload[:cut], payload[cut:]) == [ServerSentEvent(data="café ✓ 𝄞")]
    # A sequence that never completes is one U+FFFD, as when decoded whole.
    assert decode(b"data: a\xe2\x9c", b"b\n\n") == [ServerSentEvent(data="a\ufffdb")]


def test_a_read_of_whole_events_and_part_of_the_next() -> None:
    decoder = SSEDecoder()
    # A large read ends mid-event (the usual case when the server writes faster than the
    # client reads): the whole events come out at once, the rest waits for its end.
    assert decoder.feed(b"data: a\n\ndata: b\n\nid: 3\ndata: c") == [
        ServerSentEvent(data="a"),
        ServerSentEvent(data="b"),
    ]
    assert decoder.feed(b"d\n") == []
    assert decoder.feed(b"\ndata: e\n\nevent: x\n") == [
        ServerSentEvent(data="cd", id="3"),
        ServerSentEvent(data="e", id="3"),
    ]
    assert decoder.feed(b"data: f\n\n") == [ServerSentEvent(event="x", data="f", id="3")]


def test_cr_line_ends_split_between_reads() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r\ndata: b\r\revent: x\r") == [
        ServerSentEvent(data="a"),
        ServerSentEvent(data="b"),
    ]
    # The LF that ends this read's CRLF is not a blank line (which would reset the type).
    assert decoder.feed(b"\ndata: c\n\n") == [ServerSentEvent(event="x", data="c")]
