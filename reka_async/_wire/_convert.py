"""The private cattrs converter (models to wire dicts) and the content-part structuring that
requests and responses share.

One converter, built once with ``cattrs.Converter``; never the global ``cattrs.structure``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .._models import (
    AudioPart,
    ChatRequest,
    ImagePart,
    Message,
    PdfPart,
    TextPart,
    Tool,
    ToolCall,
    ToolOutput,
    Usage,
    VideoPart,
)
from .._types import Role
from ._build import new_message, new_stream_event, new_usage
from .events import ChoicePiece, StreamEvent, TextEvent

__all__ = [
    "PART_FIELD",
    "as_str",
    "content_text",
    "converter",
    "decode_event",
    "opt_int",
    "opt_str",
    "structure_content",
    "structure_message",
    "structure_usage",
    "text_fields",
]


# The coercions both dialects' decoders share: a value of the right type (the normal case)
# skips the conversion call.
def as_str(value: Any) -> str:
    """``value`` as a string (``str()`` of anything else)."""
    return value if type(value) is str else str(value)


def opt_str(value: Any) -> str | None:
    """``None`` kept, anything else as a string."""
    return value if value is None or type(value) is str else str(value)


def opt_int(value: Any) -> int | None:
    """``None`` kept, anything else through ``int()`` (``TypeError``/``ValueError`` if not)."""
    return value if value is None or type(value) is int else int(value)


def structure_usage(data: Any) -> Usage:
    """``Usage`` from either dialect's names (``input_tokens``/``output_tokens``, or OpenAI's
    ``prompt_tokens``/``completion_tokens`` when the native names are absent)."""
    if not data:
        return new_usage()
    if type(data) is not dict and not isinstance(data, Mapping):  # no ABC check for a dict
        raise TypeError(f"usage must be an object, got {type(data).__name__}")
    given = data.get("input_tokens")
    if given is None:
        given = data.get("prompt_tokens") or 0
    taken = data.get("output_tokens")
    if taken is None:
        taken = data.get("completion_tokens") or 0
    return new_usage(
        given if type(given) is int else int(given), taken if type(taken) is int else int(taken)
    )


_PART_TYPES: Final[dict[str, type[Any]]] = {
    "text": TextPart,
    "image_url": ImagePart,
    "video_url": VideoPart,
    "audio_url": AudioPart,
    "pdf_url": PdfPart,
}
#: The field that holds a part's payload, by part type (``{"type": "image_url", "image_url": ..}``).
PART_FIELD: Final[dict[str, str]] = {name: name for name in _PART_TYPES}


def structure_content(content: Any) -> Any:
    """Message content from the wire: a string, or a list of typed parts.

    Parts of a type this version does not know are kept as plain dicts rather than rejected.
    """
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        return str(content)
    parts: list[Any] = []
    for item in content:
        if isinstance(item, Mapping):
            ptype = item.get("type")
            cls = _PART_TYPES.get(ptype) if isinstance(ptype, str) else None
            field = PART_FIELD.get(ptype) if isinstance(ptype, str) else None
            if cls is not None and field is not None and isinstance(item.get(field), str):
                parts.append(cls(**{field: item[field]}))
            elif "tool_call_id" in item and "output" in item:
                parts.append(
                    ToolOutput(tool_call_id=str(item["tool_call_id"]), output=str(item["output"]))
                )
            else:
                parts.append(dict(item))  # unknown part type: keep it as data
        else:
            parts.append(item)
    return parts


def content_text(content: Any) -> str:
    """The text of wire content that is not a plain string (text parts joined)."""
    return Message(role="assistant", content=structure_content(content)).text


def structure_message(data: Any, _: Any = None) -> Message:
    """A ``Message`` from a wire dict (tolerant: unknown keys ignored, role defaulted)."""
    if type(data) is not dict and not isinstance(data, Mapping):
        raise TypeError(f"message must be an object, got {type(data).__name__}")
    tool_calls = data.get("tool_calls")
    content = data.get("content")
    content = content if type(content) is str else structure_content(content)
    # A role this version does not know is kept as the server sent it (no ``cast()``: a
    # call per response).
    role: Role = data.get("role", "assistant")
    if type(role) is not str:
        role = str(role)  # type: ignore[assignment]
    if not tool_calls:
        return new_message(role, content)
    return Message(
        role=role,
        content=content,
        tool_calls=[converter.structure(tc, ToolCall) for tc in tool_calls],
    )


def text_fields(
    data: dict[str, Any], role: Any, content: Any, reason: Any, *, deltas: bool
) -> TextEvent | None:
    """The ``TextEvent`` of an event whose one answer is text only (both dialects' fast
    path), or ``None`` when a value is not of its usual type (then it is decoded in full)."""
    id_, model = data.get("id"), data.get("model")
    if (
        (content is None or type(content) is str)
        and (role is None or type(role) is str)
        and (reason is None or type(reason) is str)
        and type(id_) is str
        and type(model) is str
    ):
        usage = data.get("usage")
        return (
            id_,
            model,
            role,
            content,
            reason,
            None if usage is None else structure_usage(usage),
            deltas,
        )
    return None


def decode_event(
    data: Any, key: str, piece: Callable[[Any, int], ChoicePiece], *, deltas: bool
) -> StreamEvent:
    """A ``StreamEvent`` from a decoded event of either dialect: ``data[key]`` (``responses``
    or ``choices``) decoded item by item with ``piece(item, position)``."""
    items = data[key]
    if type(items) is not list:
        raise TypeError(f"{key} must be a list")
    usage = data.get("usage")
    id_, model = data["id"], data["model"]
    # Per stream event, so the coercions are inline (no call when the type is already right).
    return new_stream_event(
        id_ if type(id_) is str else str(id_),
        model if type(model) is str else str(model),
        # One answer (the usual case) without a comprehension frame.
        [piece(items[0], 0)]
        if len(items) == 1
        else [piece(item, i) for i, item in enumerate(items)],
        None if usage is None else structure_usage(usage),
        deltas,
    )


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(Message, structure_message)
    conv.register_structure_hook(ToolCall, make_dict_structure_fn(ToolCall, conv))
    for part_cls in (TextPart, ImagePart, VideoPart, AudioPart, PdfPart, ToolOutput, ToolCall):
        conv.register_unstructure_hook(part_cls, make_dict_unstructure_fn(part_cls, conv))
    for omit_defaults in (Tool, Message):
        conv.register_unstructure_hook(
            omit_defaults,
            make_dict_unstructure_fn(omit_defaults, conv, _cattrs_omit_if_default=True),
        )
    conv.register_unstructure_hook(
        ChatRequest,
        make_dict_unstructure_fn(
            ChatRequest, conv, _cattrs_omit_if_default=True, extra_body=override(omit=True)
        ),
    )
    return conv


converter: Final = _make_converter()
