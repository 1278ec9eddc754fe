"""The fast paths that earned their place (``benchmarks/README.md``, "Fast paths") give what
the general path gives, for any input of their shape (property tests):

* the ``_wire/_build.py`` builders make what the attrs ``__init__`` makes;
* the usual stream event (a dialect's ``text_event`` + ``Assembler.feed_text``) assembles as
  the fully decoded event (``decode_event`` + ``Assembler.feed``);
* a plain request's timeout (``Timeout.to_aiohttp_plain``, one deadline) bounds a body that
  arrives whole as the stream's (``to_aiohttp``, a read timer) does;
* the SSE decoder's usual event (one ``data: `` line and its blank line, read whole) decodes
  as the general line rules decode it byte by byte, with and without a size limit;
* the usual request messages (plain dicts of a role and text, ``wire_messages``'s first check)
  go on the wire as the general path (``_wire_message`` each) sends them, and are refused
  with the same error when the general path refuses them.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reka_async import (
    ChatChunk,
    InvalidRequestError,
    Message,
    MessageResponse,
    ResponseTooLargeError,
    Timeout,
    Usage,
)
from reka_async._assemble import Assembler
from reka_async._models import ChunkResponse
from reka_async._sse import SSEDecoder
from reka_async._wire import _build, native, openai
from reka_async._wire import request as wire_request
from reka_async._wire._convert import decode_event

texts = st.text(max_size=12)
maybe_texts = st.none() | texts
reasons = st.none() | st.sampled_from(["stop", "length", "tool_calls"])
roles = st.sampled_from(["assistant", "user", "system"])


@given(role=roles, content=maybe_texts, reasoning=maybe_texts, reason=reasons)
def test_message_builders_make_what_init_makes(
    role: Any, content: str | None, reasoning: str | None, reason: str | None
) -> None:
    fast = _build.new_message_response(
        _build.new_message(role, content, None, reasoning, None, None), reason
    )
    slow = MessageResponse(
        message=Message(role=role, content=content, reasoning_content=reasoning),
        finish_reason=reason,
    )
    assert fast == slow
    assert repr(fast) == repr(slow)


@given(
    id_=texts,
    model=texts,
    content=maybe_texts,
    reason=reasons,
    tokens=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    delta=texts,
    rewrite=st.booleans(),
)
def test_chunk_builders_make_what_init_makes(
    id_: str,
    model: str,
    content: str | None,
    reason: str | None,
    tokens: tuple[int, int],
    delta: str,
    rewrite: bool,
) -> None:
    usage = _build.new_usage(*tokens)
    fast = _build.new_chat_chunk(
        id_,
        model,
        [_build.new_chunk_response(_build.new_message("assistant", content), reason)],
        usage,
        delta,
        rewrite,
    )
    slow = ChatChunk(
        id=id_,
        model=model,
        responses=[
            ChunkResponse(chunk=Message(role="assistant", content=content), finish_reason=reason)
        ],
        usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        delta=delta,
        rewrite=rewrite,
    )
    assert fast == slow
    assert repr(fast) == repr(slow)


def _assembled(events: list[dict[str, Any]], *, fast: Any, key: str, piece: Any, deltas: bool):  # type: ignore[no-untyped-def]
    a, b = Assembler(), Assembler()
    quick, full = [], []
    for data in events:
        fields = fast(data)
        quick.append(
            a.feed_text(fields)
            if fields is not None
            else a.feed(decode_event(data, key, piece, deltas=deltas))
        )
        full.append(b.feed(decode_event(data, key, piece, deltas=deltas)))
    assert a.response() == b.response()
    assert (a.usage, a.finished) == (b.usage, b.finished)
    return quick, full


native_events = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.just("c1"),
            "model": st.just("reka-flash"),
            "responses": st.lists(
                st.fixed_dictionaries(
                    {
                        "finish_reason": reasons,
                        "chunk": st.fixed_dictionaries(
                            {"role": st.just("assistant"), "content": maybe_texts}
                        ),
                    }
                ),
                min_size=1,
                max_size=1,
            ),
        },
        optional={
            "usage": st.fixed_dictionaries(
                {"input_tokens": st.integers(0, 99), "output_tokens": st.integers(0, 99)}
            )
        },
    ),
    min_size=1,
    max_size=8,
)


@given(events=native_events)
def test_native_usual_events_assemble_as_decoded_ones(events: list[dict[str, Any]]) -> None:
    quick, full = _assembled(
        events, fast=native.text_event, key="responses", piece=native._chunk_piece, deltas=False
    )
    assert quick == full


openai_events = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.just("c1"),
            "model": st.just("reka-flash"),
            "choices": st.lists(
                st.fixed_dictionaries(
                    {
                        "index": st.just(0),
                        "finish_reason": reasons,
                        "delta": st.fixed_dictionaries({}, optional={"content": maybe_texts}),
                    }
                ),
                min_size=1,
                max_size=1,
            ),
        }
    ),
    min_size=1,
    max_size=8,
)


@given(events=openai_events)
def test_openai_usual_events_assemble_as_decoded_ones(events: list[dict[str, Any]]) -> None:
    quick, full = _assembled(
        events,
        fast=openai.text_completion_chunk,
        key="choices",
        piece=openai._delta_piece,
        deltas=True,
    )
    assert quick == full


seconds = st.none() | st.floats(min_value=0.001, max_value=1e6)


@given(connect=seconds, read=seconds, total=seconds)
def test_a_plain_requests_deadline_is_the_streams_bound_for_a_whole_body(
    connect: float | None, read: float | None, total: float | None
) -> None:
    timeout = Timeout(connect=connect, read=read, total=total)
    plain, general = timeout.to_aiohttp_plain(), timeout.to_aiohttp()
    assert plain.sock_connect == general.sock_connect == connect
    assert plain.sock_read is None  # no timer re-armed per read: what the fast path saves
    # A body that arrives whole is one read: the general path bounds it by the tighter of
    # the read timer and the total, which is the plain path's one deadline.
    bounds = [t for t in (general.sock_read, general.total) if t is not None]
    assert plain.total == (min(bounds) if bounds else None)


sse_values = st.text(
    st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=8
)
sse_fields = st.one_of(
    sse_values.map(lambda v: f"data: {v}"),
    sse_values.map(lambda v: f"data:{v}"),
    sse_values.map(lambda v: f"event: {v}"),
    sse_values.map(lambda v: f"id: {v}"),
    st.integers(0, 99).map(lambda n: f"retry: {n}"),
    sse_values.map(lambda v: f": {v}"),
)
# Events: a few field lines each, ended by a blank line (sometimes two), so that the usual
# event comes right after fields of another one, as well as alone.
sse_events = st.lists(sse_fields, max_size=3).flatmap(
    lambda fields: st.sampled_from([[*fields, ""], [*fields, "", ""]])
)


def _sse_decode(chunks: list[bytes], limit: int | None) -> list[Any] | str:
    decoder = SSEDecoder(max_event_bytes=limit)
    events: list[Any] = []
    try:
        for chunk in chunks:
            events += decoder.feed(chunk)
    except ResponseTooLargeError:
        return "too large"
    return events + decoder.flush()


@given(events=st.lists(sse_events, max_size=8), limit=st.none() | st.integers(1, 40))
def test_sse_usual_events_decode_whole_as_byte_by_byte(
    events: list[list[str]], limit: int | None
) -> None:
    payload = "".join(f"{line}\n" for event in events for line in event).encode()
    whole = _sse_decode([b"", payload], limit)  # the stream's start (no BOM) behind it
    assert whole == _sse_decode([payload[i : i + 1] for i in range(len(payload))], limit)


# Message dicts near the usual shape: valid and invalid roles (an unhashable one too), text,
# other content, and now and then a third key, so both sides of each condition are drawn.
message_values = (
    st.sampled_from(["user", "assistant", "system", "tool_output", "tool", "robot", ""])
    | st.text(max_size=3)
    | st.none()
    | st.integers()
    | st.lists(st.just({"type": "text", "text": "hi"}), max_size=1)
)
message_dicts = st.dictionaries(
    st.sampled_from(["role", "content", "name", "tool_calls"]), message_values, max_size=3
) | st.fixed_dictionaries({"role": message_values, "content": texts | st.integers()})


def _general_messages(messages: list[Any]) -> list[Any] | str:
    try:
        return [wire_request._wire_message(m, i) for i, m in enumerate(messages)]
    except (InvalidRequestError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _messages(messages: list[Any]) -> list[Any] | str:
    try:
        return wire_request.wire_messages(messages)
    except (InvalidRequestError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"


@given(messages=st.lists(message_dicts, min_size=1, max_size=3))
def test_usual_messages_go_on_the_wire_as_the_general_path_sends_them(
    messages: list[dict[str, Any]],
) -> None:
    sent = _messages(messages)
    assert sent == _general_messages(messages)
    if isinstance(sent, list):
        assert sent is not messages  # the caller's list is never the body's
