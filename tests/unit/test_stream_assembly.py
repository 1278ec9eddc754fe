"""The stream assembler (sans-I/O): cumulative or delta from evidence (and pinned by
``stream_mode``), rewrites, the finish, trailers, empty events, tool-call fragments and
Research pieces."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reka_async import Annotation, ReasoningStep, ToolCall, UrlCitation, Usage
from reka_async._assemble import Assembler
from reka_async._wire.events import ChoicePiece, StreamEvent, ToolCallPiece


def event(*pieces: ChoicePiece, usage: Usage | None = None, deltas: bool = False) -> StreamEvent:
    return StreamEvent(id="c1", model="m", choices=list(pieces), usage=usage, deltas=deltas)


def text(content: str | None, finish: str | None = None, **kw: Any) -> ChoicePiece:
    return ChoicePiece(role="assistant", content=content, finish_reason=finish, **kw)


def feed_all(asm: Assembler, *events: StreamEvent) -> list[tuple[str, bool]]:
    out = []
    for e in events:
        chunk = asm.feed(e)
        if chunk is not None:
            out.append((chunk.delta, chunk.rewrite))
    return out


@pytest.mark.parametrize(
    ("contents", "deltas", "expected"),
    [
        (["Hel", "Hello", "Hello!"], ["Hel", "lo", "!"], "Hello!"),  # cumulative
        (["Hel", "lo", "!"], ["Hel", "lo", "!"], "Hello!"),  # deltas
        (["He", "llo", " wo", "rld"], ["He", "llo", " wo", "rld"], "Hello world"),
        (["Hello", "Hello", "Hello world"], ["Hello", "", " world"], "Hello world"),
    ],
    ids=["cumulative", "delta", "delta-long", "cumulative-repeat"],
)
def test_native_content_is_cumulative_or_delta_per_stream(
    contents: list[str], deltas: list[str], expected: str
) -> None:
    asm = Assembler()
    events = [event(text(c)) for c in contents[:-1]] + [event(text(contents[-1], "stop"))]
    assert feed_all(asm, *events) == [(d, False) for d in deltas]
    assert asm.text == expected
    response = asm.response()
    assert response is not None
    assert response.text == expected
    assert response.finish_reason == "stop"


def test_every_chunk_holds_the_cumulative_text() -> None:
    asm = Assembler()
    chunks = [asm.feed(event(text(c))) for c in ("Hel", "lo", "!")]
    assert [c.responses[0].chunk.content for c in chunks if c] == ["Hel", "Hello", "Hello!"]
    assert [c.text for c in chunks if c] == ["Hel", "Hello", "Hello!"]


def test_an_event_that_does_not_extend_the_text_proves_deltas_and_the_text_is_rebuilt() -> None:
    # (The old reading took "Goodbye" as a cumulative rewrite and kept only it: withdrawn.)
    asm = Assembler()
    got = feed_all(asm, event(text("Hello")), event(text("Hello wor")), event(text("Goodbye")))
    assert got == [("Hello", False), (" wor", False), ("HelloHello worGoodbye", True)]
    assert asm.text == "HelloHello worGoodbye"


@pytest.mark.parametrize(
    ("pieces", "expected", "deltas"),
    [
        (["1", "1", ":00 is the time"], "11:00 is the time", ["1", "", "1:00 is the time"]),
        (["--", "--", "-|"], "-----|", ["--", "", "---|"]),
        (["ab", "abc", "x"], "ababcx", ["ab", "c", "ababcx"]),
    ],
    ids=["time", "dashes", "rewrite"],
)
def test_a_delta_stream_is_rebuilt_from_every_piece_once_an_event_proves_it(
    pieces: list[str], expected: str, deltas: list[str]
) -> None:
    asm = Assembler()
    events = [event(text(p)) for p in pieces[:-1]] + [event(text(pieces[-1], "stop"))]
    got = feed_all(asm, *events)
    assert [d for d, _ in got] == deltas
    assert [r for _, r in got] == [False, False, not expected.startswith(pieces[-2])]
    assert asm.text == expected
    response = asm.response()
    assert response is not None
    assert response.text == expected


def test_once_deltas_are_proved_every_piece_is_new_text() -> None:
    # (The old reading took a piece that starts with the text so far as cumulative: withdrawn.)
    asm = Assembler()
    got = feed_all(asm, event(text("Hel")), event(text("lo")), event(text("Hello world")))
    assert got == [("Hel", False), ("lo", False), ("Hello world", False)]
    assert asm.text == "HelloHello world"


def test_a_final_event_may_trim_trailing_whitespace_and_stay_cumulative() -> None:
    asm = Assembler()
    got = feed_all(asm, event(text("Hello ")), event(text("Hello", "stop")))
    assert got == [("Hello ", False), ("", False)]
    assert asm.text == "Hello"


def test_a_trim_that_is_not_final_proves_deltas() -> None:
    asm = Assembler()
    feed_all(asm, event(text("Hello ")), event(text("Hello")), event(text("!", "stop")))
    assert asm.text == "Hello Hello!"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("auto", "ha!"), ("cumulative", "ha!"), ("delta", "hahaha!")],
)
def test_a_stream_consistent_with_both_readings_is_read_as_the_mode_says(
    mode: Any, expected: str
) -> None:
    asm = Assembler(mode)
    got = feed_all(asm, event(text("ha")), event(text("ha")), event(text("ha!", "stop")))
    assert asm.text == expected
    assert "".join(d for d, _ in got) == expected
    assert not any(r for _, r in got)


def test_pinned_cumulative_content_that_does_not_extend_the_text_replaces_it() -> None:
    asm = Assembler("cumulative")
    got = feed_all(asm, event(text("Hello")), event(text("Bye", "stop")))
    assert got == [("Hello", False), ("Bye", True)]
    assert asm.text == "Bye"


def test_the_openai_dialect_is_deltas_whatever_the_mode() -> None:
    asm = Assembler("cumulative")
    feed_all(asm, event(text("ha"), deltas=True), event(text("ha!", "stop"), deltas=True))
    assert asm.text == "haha!"


@given(st.lists(st.text(alphabet="ab! ", min_size=1, max_size=4), min_size=1, max_size=12))
def test_any_delta_stream_gives_its_text_or_a_consistent_cumulative_reading(
    pieces: list[str],
) -> None:
    # Auto: the delta text whenever some event proves deltas; else each piece extended the
    # one before (or the last trimmed it), and the cumulative reading is the last piece.
    asm = Assembler()
    events = [event(text(p)) for p in pieces[:-1]] + [event(text(pieces[-1], "stop"))]
    got = feed_all(asm, *events)
    consistent = all(b.startswith(a) for a, b in itertools.pairwise(pieces[:-1])) and (
        len(pieces) < 2 or pieces[-1].startswith(pieces[-2]) or pieces[-1] == pieces[-2].rstrip()
    )
    assert asm.text == (pieces[-1] if consistent else "".join(pieces))
    # The deltas handed out, restarted at each rewrite, add up to the text (but for the
    # whitespace a trimming final event takes back).
    shown = ""
    for delta, rewrite in got:
        shown = delta if rewrite else shown + delta
    assert shown.rstrip() == asm.text.rstrip()
    delta_mode = Assembler("delta")
    feed_all(delta_mode, *events)
    assert delta_mode.text == "".join(pieces)


def test_a_usage_trailer_after_the_finish_merges_its_usage() -> None:
    asm = Assembler()
    assert asm.feed(event(text("Hi", "stop"))) is not None
    assert asm.finished
    assert asm.feed(event(usage=Usage(input_tokens=3, output_tokens=1))) is None
    response = asm.response()
    assert response is not None
    assert response.usage == Usage(input_tokens=3, output_tokens=1)
    assert response.text == "Hi"


def test_events_after_the_finish_are_ignored() -> None:
    asm = Assembler()
    feed_all(asm, event(text("Hi", "stop")))
    assert asm.feed(event(text("Hi there"))) is None
    assert asm.text == "Hi"


def test_an_event_with_no_answers_carries_no_text_and_resets_nothing() -> None:
    asm = Assembler()
    got = feed_all(asm, event(text("Hel")), event(), event(text("Hello", "stop")))
    assert got == [("Hel", False), ("lo", False)]
    assert asm.text == "Hello"


def test_a_role_only_first_event_then_openai_deltas() -> None:
    asm = Assembler()
    got = feed_all(
        asm,
        event(ChoicePiece(role="assistant", content=""), deltas=True),
        event(ChoicePiece(content="Hel"), deltas=True),
        event(ChoicePiece(content="Hel"), deltas=True),  # a delta that repeats: appended
        event(ChoicePiece(finish_reason="stop"), deltas=True),
    )
    assert got == [("", False), ("Hel", False), ("Hel", False), ("", False)]
    assert asm.text == "HelHel"


def test_openai_tool_call_fragments_are_joined_by_index() -> None:
    asm = Assembler()
    pieces = [
        [ToolCallPiece(index=0, id="call_1", name="get_weather", arguments="")],
        [ToolCallPiece(index=0, arguments='{"ci'), ToolCallPiece(index=1, id="c2", name="t")],
        [ToolCallPiece(index=0, arguments='ty": "Paris"}'), ToolCallPiece(index=1, arguments="{}")],
    ]
    for calls in pieces:
        asm.feed(event(ChoicePiece(tool_calls=calls), deltas=True))
    asm.feed(event(ChoicePiece(finish_reason="tool_calls"), deltas=True))
    response = asm.response()
    assert response is not None
    assert response.tool_calls == [
        ToolCall(id="call_1", name="get_weather", parameters={"city": "Paris"}),
        ToolCall(id="c2", name="t", parameters={}),
    ]
    assert response.finish_reason == "tool_calls"


def test_unparsable_tool_arguments_are_kept_raw() -> None:
    asm = Assembler()
    asm.feed(
        event(
            ChoicePiece(tool_calls=[ToolCallPiece(index=0, id="a", name="f", arguments="{oops")]),
            deltas=True,
        )
    )
    response = asm.response()
    assert response is not None
    assert response.tool_calls[0].parameters == {"_raw": "{oops"}


def test_native_whole_tool_calls_pass_through() -> None:
    asm = Assembler()
    call = ToolCallPiece(index=0, id="t1", name="f", parameters={"x": 1})
    asm.feed(event(ChoicePiece(content="", tool_calls=[call], finish_reason="tool_calls")))
    response = asm.response()
    assert response is not None
    assert response.tool_calls == [ToolCall(id="t1", name="f", parameters={"x": 1})]


def test_research_pieces_accumulate() -> None:
    asm = Assembler()
    step = ReasoningStep(role="assistant", reasoning_content="search")
    note = Annotation(url_citation=UrlCitation(url="https://a.example", start_index=0))
    asm.feed(event(ChoicePiece(reasoning_content="Let me "), deltas=True))
    asm.feed(event(ChoicePiece(reasoning_content="think.", reasoning_steps=[step]), deltas=True))
    asm.feed(event(ChoicePiece(content="Answer", annotations=[note]), deltas=True))
    asm.feed(event(ChoicePiece(finish_reason="stop"), deltas=True))
    response = asm.response()
    assert response is not None
    message = response.responses[0].message
    assert message.reasoning_content == "Let me think."
    assert message.reasoning_steps == [step]
    assert message.annotations == [note]
    assert message.content == "Answer"


def test_several_answers_finish_together() -> None:
    asm = Assembler()
    asm.feed(event(ChoicePiece(index=0, content="A", finish_reason="stop"), deltas=True))
    asm.feed(event(ChoicePiece(index=1, content="B"), deltas=True))
    assert not asm.finished
    assert asm.feed(event(ChoicePiece(index=0, content="more"), deltas=True)) is None
    chunk = asm.feed(event(ChoicePiece(index=1, content="C", finish_reason="stop"), deltas=True))
    assert asm.finished
    assert chunk is not None
    assert [r.chunk.content for r in chunk.responses] == ["A", "BC"]
    assert chunk.delta == ""  # the first answer had nothing new in this event


def test_no_events_means_no_response() -> None:
    asm = Assembler()
    assert asm.response() is None
    assert not asm.started
    assert asm.feed(event(usage=Usage(input_tokens=1))) is None
    assert not asm.started
