"""Fast constructors of the attrs objects built per response and per stream event.

Why: an attrs ``__init__`` of a frozen class sets each field through a bound
``object.__setattr__`` and takes keyword arguments; a response builds four such objects and
a stream event three to seven, so on the hot paths these constructors are a visible share
of the client's own CPU: the four objects of a stream chunk cost 1.25 µs less this way, 9 % of
a chunk's CPU, and those of a response 1.1 µs (``python -m benchmarks.fastpaths``;
``benchmarks/README.md``, "Fast paths"). ``builder(cls)`` makes a plain function that
allocates the instance and stores each slot through the slot's own descriptor, positional
arguments in field order.

What it skips, so what a class must not have (checked when the builder is made, and the test
``tests/unit/test_fast_builders.py`` compares every builder with the class's own ``__init__``):
validators, converters, ``__attrs_post_init__``, non-slotted storage. Defaults are kept when
they are plain values (``None``, numbers, strings, booleans); a field with a factory default
must be passed. The instance is indistinguishable from one made by ``cls(...)``: same type,
same slots, equal, same hash and repr.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from .._models import ChatChunk, ChatResponse, ChunkResponse, Message, MessageResponse, Usage
from .events import ChoicePiece, StreamEvent

T = TypeVar("T")

__all__ = [
    "builder",
    "new_chat_chunk",
    "new_chat_response",
    "new_choice_piece",
    "new_chunk_response",
    "new_message",
    "new_message_response",
    "new_stream_event",
    "new_usage",
]

_PLAIN_DEFAULTS = (type(None), bool, int, float, str)


def builder(cls: type[T]) -> Callable[..., T]:
    """A positional constructor of the slotted attrs class ``cls`` (see the module docstring).

    Raises:
        TypeError: ``cls`` has something the builder would skip.
    """
    if not attrs.has(cls) or ("__dict__" in dir(cls) and not hasattr(cls, "__slots__")):
        raise TypeError(f"{cls.__name__}: a slotted attrs class is needed")
    if hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__"):
        raise TypeError(f"{cls.__name__}: has an init hook the builder would skip")
    params: list[str] = []
    body: list[str] = []
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for field in attrs.fields(cls):
        if field.validator is not None or field.converter is not None or not field.init:
            raise TypeError(f"{cls.__name__}.{field.name}: validators and converters are skipped")
        slot = getattr(cls, field.name, None)
        if not isinstance(slot, types.MemberDescriptorType):
            raise TypeError(f"{cls.__name__}.{field.name}: not stored in a slot")
        namespace[f"_set_{field.name}"] = slot.__set__
        default = field.default
        if default is attrs.NOTHING or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            if params and "=" in params[-1]:
                raise TypeError(f"{cls.__name__}.{field.name}: a required field after defaults")
            params.append(field.name)
        elif isinstance(default, _PLAIN_DEFAULTS):
            namespace[f"_default_{field.name}"] = default
            params.append(f"{field.name}=_default_{field.name}")
        else:
            raise TypeError(f"{cls.__name__}.{field.name}: a default the builder cannot share")
        body.append(f"    _set_{field.name}(self, {field.name})")
    source = (
        f"def build_{cls.__name__}({', '.join(params)}):\n"
        "    self = _new(_cls)\n" + "\n".join(body) + "\n    return self\n"
    )
    exec(compile(source, f"<builder of {cls.__qualname__}>", "exec"), namespace)
    build: Callable[..., T] = namespace[f"build_{cls.__name__}"]
    build.__doc__ = f"``{cls.__name__}(...)`` with positional arguments in field order."
    return build


# The builders of the hot paths (imported where responses and stream events are structured).

new_message = builder(Message)
new_usage = builder(Usage)
new_message_response = builder(MessageResponse)
new_chat_response = builder(ChatResponse)
new_chunk_response = builder(ChunkResponse)
new_chat_chunk = builder(ChatChunk)
new_stream_event = builder(StreamEvent)
new_choice_piece = builder(ChoicePiece)
