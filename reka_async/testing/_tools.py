"""Tool calls of the mock server: when a reply calls a tool, and the call on both dialects.

A reply calls tools when the request has ``tools`` and either ``tool_choice`` forces a call
(native ``"tool"``; OpenAI ``"required"`` or ``{"type": "function", "function": {"name": N}}``),
which calls the first (or the named) tool, or the last message's text holds directives
``[[tool:NAME]]``, which call each named tool in order (``tool_choice: "none"`` wins over
directives). The arguments are a deterministic instance of the tool's ``parameters`` schema
(see `_schema`): required properties only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ._schema import instance

_TOOL_DIRECTIVE_RE: Final = re.compile(r"\[\[tool:([^\[\]]+)\]\]")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call of a tool, rendered per dialect by `native` and `openai`."""

    id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        """The arguments as the JSON string of the OpenAI dialect."""
        return json.dumps(self.arguments, ensure_ascii=False)

    def native(self) -> dict[str, Any]:
        """``{"id", "name", "parameters": {...}}``."""
        return {"id": self.id, "name": self.name, "parameters": self.arguments}

    def openai(self) -> dict[str, Any]:
        """``{"id", "type": "function", "function": {"name", "arguments": "<JSON>"}}``."""
        function = {"name": self.name, "arguments": self.arguments_json}
        return {"id": self.id, "type": "function", "function": function}


def _native_tools(tools: list[Any]) -> dict[str, Mapping[str, Any]]:
    return {t["name"]: t.get("parameters") or {} for t in tools}


def _openai_tools(tools: list[Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        function = tool.get("function") or {}
        found[function["name"]] = function.get("parameters") or {}
    return found


def _forced(choice: Any, names: list[str], *, openai: bool) -> list[str]:
    if not names:
        return []
    if openai:
        if choice == "required":
            return names[:1]
        if isinstance(choice, Mapping):
            name = (choice.get("function") or {}).get("name")
            return [name] if name in names else []
        return []
    return names[:1] if choice == "tool" else []


def tool_calls(
    body: Mapping[str, Any], text: str, call_id: Callable[[], str], *, openai: bool
) -> list[ToolCall] | None:
    """The calls a validated request's reply makes, or None for a text reply.

    Args:
        body: The request body (native or OpenAI, per ``openai``).
        text: The text of the last message, where ``[[tool:NAME]]`` directives stand.
        call_id: Hands out call ids.
        openai: Whether ``body`` is in the OpenAI dialect.
    """
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    schemas = _openai_tools(tools) if openai else _native_tools(tools)
    names = _forced(choice, list(schemas), openai=openai)
    if not names and "[[tool:" in text:
        names = [n for m in _TOOL_DIRECTIVE_RE.finditer(text) if (n := m.group(1).strip())]
        names = [n for n in names if n in schemas]
    if not names:
        return None
    calls = []
    for name in names:
        schema = {"type": "object", **schemas[name]}
        arguments = instance(schema)
        calls.append(ToolCall(call_id(), name, arguments if isinstance(arguments, dict) else {}))
    return calls


def argument_fragments(arguments: str, pieces: int = 3) -> list[str]:
    """Split an arguments string into up to ``pieces`` fragments (at least two when it can)."""
    count = max(min(pieces, len(arguments)), 1)
    bounds = [(i * len(arguments)) // count for i in range(count)] + [len(arguments)]
    return [arguments[bounds[i] : bounds[i + 1]] for i in range(count)]
