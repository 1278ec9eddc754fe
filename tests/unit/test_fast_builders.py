"""The hot paths' fast constructors (``_wire/_build.py``) make exactly what ``cls(...)`` makes."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest

from reka_async import ChatChunk, ChatResponse, Message, MessageResponse, Usage
from reka_async._models import ChunkResponse
from reka_async._sse import ServerSentEvent, _new_event
from reka_async._wire import _build
from reka_async._wire.events import ChoicePiece, StreamEvent

_message = Message(role="assistant", content="hi")

# (builder, class, positional arguments covering every field, with non-default values)
CASES: list[tuple[Any, type[Any], tuple[Any, ...]]] = [
    (_build.new_message, Message, ("assistant", "hi", None, "why", None, None)),
    (_build.new_usage, Usage, (3, 4)),
    (_build.new_message_response, MessageResponse, (_message, "stop")),
    (
        _build.new_chat_response,
        ChatResponse,
        ("id-1", "reka-flash", [MessageResponse(message=_message)], Usage(input_tokens=1), "r"),
    ),
    (_build.new_chunk_response, ChunkResponse, (_message, "length")),
    (
        _build.new_chat_chunk,
        ChatChunk,
        ("id-1", "m", [ChunkResponse(chunk=_message)], Usage(), "hi", True),
    ),
    (_build.new_stream_event, StreamEvent, ("id-1", "m", [ChoicePiece(content="x")], None, True)),
    (_build.new_choice_piece, ChoicePiece, (2, "assistant", "x", "r", None, None, None, "stop")),
    (_new_event, ServerSentEvent, ("message", "data", "7", 100)),
]


def _ids() -> list[str]:
    return [cls.__name__ for _, cls, _ in CASES]


@pytest.mark.parametrize(("build", "cls", "values"), CASES, ids=_ids())
def test_builder_matches_the_attrs_init(
    build: Any, cls: type[Any], values: tuple[Any, ...]
) -> None:
    names = [f.name for f in attrs.fields(cls)]
    assert len(values) == len(names), "the case must cover every field"
    fast = build(*values)
    slow = cls(**dict(zip(names, values, strict=True)))
    assert type(fast) is cls
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert attrs.asdict(fast, recurse=False) == attrs.asdict(slow, recurse=False)
    assert pickle.loads(pickle.dumps(fast)) == slow
    try:
        expected = hash(slow)
    except TypeError:  # a list field: neither is hashable
        with pytest.raises(TypeError):
            hash(fast)
    else:
        assert hash(fast) == expected


@pytest.mark.parametrize(("build", "cls", "values"), CASES, ids=_ids())
def test_builder_keeps_plain_defaults(build: Any, cls: type[Any], values: tuple[Any, ...]) -> None:
    required = [
        f.name
        for f in attrs.fields(cls)
        if f.default is attrs.NOTHING or isinstance(f.default, attrs.Factory)  # type: ignore[arg-type]
    ]
    kwargs = dict(zip([f.name for f in attrs.fields(cls)], values, strict=True))
    given = {name: kwargs[name] for name in required}
    assert build(**given) == cls(**given)


def test_frozen_instances_stay_frozen() -> None:
    fast = _build.new_message("user", "hi")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.content = "changed"  # type: ignore[misc]


@attrs.frozen
class _Validated:
    x: int = attrs.field(validator=attrs.validators.instance_of(int))


@attrs.frozen
class _PostInit:
    x: int

    def __attrs_post_init__(self) -> None:
        pass


@attrs.define(slots=False)
class _NoSlots:
    x: int


@attrs.frozen
class _SharedDefault:
    x: list[int] = [1]  # noqa: RUF008  (the case under test)


@pytest.mark.parametrize("cls", [_Validated, _PostInit, _NoSlots, _SharedDefault, dict])
def test_builder_refuses_what_it_would_skip(cls: type[Any]) -> None:
    with pytest.raises(TypeError):
        _build.builder(cls)
