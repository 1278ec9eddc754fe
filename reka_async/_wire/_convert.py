"""The private cattrs converter (models to wire dicts) and the content-part structuring that
requests and responses share.

One converter, built once with ``cattrs.Converter``; never the global ``cattrs.structure``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .._models import (
    AudioPart,
    ChatRequest,
    ChunkResponse,
    ImagePart,
    Message,
    Model,
    PdfPart,
    TextPart,
    Tool,
    ToolCall,
    ToolOutput,
    VideoPart,
)
from .._types import Role

__all__ = ["PART_FIELD", "converter", "structure_content", "structure_message"]

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


def structure_message(data: Any, _: Any = None) -> Message:
    """A ``Message`` from a wire dict (tolerant: unknown keys ignored, role defaulted)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"message must be an object, got {type(data).__name__}")
    tool_calls = data.get("tool_calls")
    return Message(
        # A role this version does not know is kept as the server sent it.
        role=cast(Role, str(data.get("role", "assistant"))),
        content=structure_content(data.get("content")),
        tool_calls=[converter.structure(tc, ToolCall) for tc in tool_calls] if tool_calls else None,
    )


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(Message, structure_message)
    for cls in (ChunkResponse, Model, ToolCall):
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv))
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
