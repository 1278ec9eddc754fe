"""Python functions as tools: their schema, and the conversation that calls them.

``function_tool`` turns a function into a ``FunctionTool``: a ``Tool`` schema from its
signature and docstring (or given explicitly) with the function beside it. ``ToolLoop`` is the
conversation, sans I/O: it says what to send next, reads each answer's tool calls, prepares
each call and records its output; ``chat.run_tools`` drives it with ``await`` and the sync
``Client`` with blocking calls, so both run the same loop.

Choices where nothing else decides:

- A tool that raises, an unknown tool name, or arguments that do not fit the function are
  reported to the model as the call's output (``"Error: ..."``), so it can correct itself;
  ``raise_tool_errors=True`` raises instead. Each record keeps the exception.
- A tool's return value goes back as it is when it is a string, else as JSON (models through
  ``to_dict()``).
- ``tool_choice`` applies to the first round only: a forced call on every round could never
  end in an answer.
- ``max_rounds`` bounds the model calls. When the last allowed answer still asks for tools,
  those calls are not run and the result says ``finished=False``.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, overload

import attrs

from ._exceptions import InvalidRequestError
from ._models import ChatResponse, Tool, ToolCall, Usage
from ._serial import NOT_DATA, Serializable, to_jsonable
from ._wire.schema import schema_of_type

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "FunctionTool",
    "ToolCallRecord",
    "ToolLoop",
    "ToolRun",
    "function_tool",
]

DEFAULT_MAX_ROUNDS: Final = 8

_SECTION: Final = re.compile(
    r"^\s*(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?):\s*$"
)
_ARG: Final = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX: Final = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def _docstring(function: Callable[..., Any]) -> tuple[str | None, dict[str, str]]:
    """The summary (text before the first section) and the per-argument descriptions of a
    Google-style ``Args:`` section or Sphinx ``:param x:`` lines."""
    doc = inspect.getdoc(function)
    if not doc:
        return None, {}
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        sphinx = _SPHINX.match(line)
        if sphinx:
            current = sphinx.group(1)
            args[current] = sphinx.group(2).strip()
            section = "sphinx"
            continue
        header = _SECTION.match(line)
        if header:
            section = header.group(1)
            current = None
            continue
        if section is None:
            summary.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            arg = _ARG.match(line)
            indent = len(line) - len(line.lstrip())
            if arg and (current is None or indent <= 4):
                current = arg.group(1)
                args[current] = arg.group(2).strip()
            elif current is not None and line.strip():
                args[current] = f"{args[current]} {line.strip()}".strip()
        elif section == "sphinx" and current is not None and line.strip():
            args[current] = f"{args[current]} {line.strip()}"
    text = " ".join(" ".join(summary).split())
    return text or None, args


def _parameters_schema(function: Callable[..., Any], name: str) -> dict[str, Any]:
    """The JSON schema of a function's keyword-callable parameters."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:
        raise InvalidRequestError(
            f"tool {name}: cannot read its type annotations ({type(exc).__name__}: {exc}); "
            "pass parameters= (a JSON schema) instead"
        ) from None
    _, described = _docstring(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    defs: dict[str, Any] = {}
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            continue
        tp = hints.get(param.name, Any)
        description = described.get(param.name)
        if typing.get_origin(tp) is typing.Annotated:
            tp, *extras = typing.get_args(tp)
            notes = [e for e in extras if isinstance(e, str)]
            description = notes[0] if notes else description
        try:
            schema, found = schema_of_type(tp, f"{name}({param.name})")
        except InvalidRequestError:
            raise InvalidRequestError(
                f"tool {name}: parameter {param.name!r} has type {tp!r}, which has no JSON "
                "schema here; use str, int, float, bool, lists, dicts, Literal, Enum, unions "
                "or attrs classes, or pass parameters= (a JSON schema)"
            ) from None
        defs.update(found)
        if description:
            schema["description"] = description
        properties[param.name] = schema
        if param.default is param.empty:
            required.append(param.name)
    out: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if defs:
        out["$defs"] = defs
    return out


@attrs.frozen(kw_only=True)
class FunctionTool:
    """A Python function the model may call, and the ``Tool`` schema it is offered as.

    Build one with ``function_tool``; ``chat.run_tools`` also takes plain functions and makes
    these itself.

    Attributes:
        function: the callable (plain or ``async``), called with the model's arguments as
            keywords.
        tool: the schema sent to the model.
    """

    function: Callable[..., Any]
    tool: Tool

    @property
    def name(self) -> str:
        """The tool's name, as the model calls it."""
        return self.tool.name


@overload
def function_tool(
    function: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> FunctionTool: ...


@overload
def function_tool(
    function: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """A ``FunctionTool`` from a function; also a decorator (``@function_tool`` or
    ``@function_tool(name=...)``).

    The schema comes from the signature: each parameter's annotation (``str``, ``int``,
    ``float``, ``bool``, lists, dicts, ``Literal``, ``Enum``, unions, attrs classes;
    ``Annotated[T, "description"]`` too), required when it has no default; the description
    from the docstring's summary, each parameter's from its ``Args:`` entry.

    Args:
        function: the function (plain or ``async``).
        name: the tool name (default: the function's ``__name__``).
        description: for the model (default: the docstring's summary).
        parameters: the JSON schema of the arguments, instead of reading the signature.

    Raises:
        InvalidRequestError: a parameter's type has no JSON schema (pass ``parameters=``).
    """

    def build(fn: Callable[..., Any]) -> FunctionTool:
        if not callable(fn):
            raise TypeError(f"function_tool: expected a function, got {type(fn).__name__}")
        tool_name = name or getattr(fn, "__name__", None)
        if not tool_name or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", tool_name):
            raise InvalidRequestError(
                f"function_tool: {tool_name!r} is not a usable tool name (1 to 64 of "
                "a-z A-Z 0-9 _ -); pass name="
            )
        summary, _ = _docstring(fn)
        schema = dict(parameters) if parameters is not None else _parameters_schema(fn, tool_name)
        tool = Tool(name=tool_name, description=description or summary, parameters=schema)
        return FunctionTool(function=fn, tool=tool)

    return build if function is None else build(function)


@attrs.frozen(kw_only=True)
class ToolCallRecord(Serializable):
    """One tool call of a ``ToolRun``: what the model asked and what it was told.

    Attributes:
        round: the model call (0 is the first) whose answer asked for it.
        call: the ``ToolCall`` (``name``, ``parameters``, ``id``).
        output: what was sent back to the model as the call's result.
        error: the exception the call ended with (an unknown tool, arguments that do not
            fit, or what the tool raised), else ``None``. Not part of ``to_dict()``.
    """

    round: int
    call: ToolCall
    output: str
    error: BaseException | None = attrs.field(default=None, metadata=NOT_DATA)

    @property
    def ok(self) -> bool:
        """True when the tool ran and returned."""
        return self.error is None


@attrs.frozen(kw_only=True)
class ToolRun(Serializable):
    """The outcome of ``chat.run_tools``.

    Attributes:
        response: the last answer (the final one when ``finished``).
        responses: every answer, one per round.
        messages: the whole conversation: your messages as given, then (as dicts) each
            answer's tool calls, their outputs, and the last answer; pass it on to continue.
        calls: every tool call made, in order.
        rounds: model calls made (at most ``max_rounds``).
        finished: the model answered without asking for more tools (``False``: stopped by
            ``max_rounds``; the last answer's calls were not run).
    """

    response: ChatResponse
    responses: list[ChatResponse]
    messages: list[Any]
    calls: list[ToolCallRecord]
    rounds: int
    finished: bool

    @property
    def text(self) -> str:
        """The text of the last answer."""
        return self.response.text

    @property
    def usage(self) -> Usage:
        """Tokens of every round added up."""
        return Usage(
            input_tokens=sum(r.usage.input_tokens for r in self.responses),
            output_tokens=sum(r.usage.output_tokens for r in self.responses),
        )


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=to_jsonable, ensure_ascii=False)


class ToolLoop:
    """The tool-calling conversation, sans I/O (see the module docstring).

    Drive it as: ``next_request()`` -> send -> ``answered(response)``; for each call it
    returns, ``prepare(call)``, run the function, ``finish(...)``; then ``next_request()``
    again, until ``answered`` returns no calls; ``result()`` is the ``ToolRun``.
    """

    def __init__(
        self,
        tools: Sequence[Callable[..., Any] | FunctionTool],
        messages: Sequence[Any],
        *,
        max_rounds: int,
        tool_choice: Any,
        raise_tool_errors: bool,
    ) -> None:
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise InvalidRequestError(f"max_rounds: must be at least 1, got {max_rounds!r}")
        given: Any = tools
        if isinstance(given, (str, bytes)) or not isinstance(given, Sequence) or not given:
            raise InvalidRequestError("tools: give a list of functions (or FunctionTool)")
        if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
            raise InvalidRequestError("messages: must be a list of messages")
        self.tools: dict[str, FunctionTool] = {}
        for item in tools:
            if isinstance(item, Tool):
                raise InvalidRequestError(
                    f"tools: {item.name!r} is a Tool schema without a function to call; "
                    "pass the function (or function_tool(fn, parameters=...))"
                )
            tool = item if isinstance(item, FunctionTool) else function_tool(item)
            if tool.name in self.tools:
                raise InvalidRequestError(f"tools: two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        self.schemas = [t.tool for t in self.tools.values()]
        self.messages: list[Any] = list(messages)
        self.max_rounds = max_rounds
        self.tool_choice = tool_choice
        self.raise_tool_errors = raise_tool_errors
        self.responses: list[ChatResponse] = []
        self.calls: list[ToolCallRecord] = []
        self._outputs: list[dict[str, str]] = []
        self._finished = False

    def next_request(self) -> dict[str, Any]:
        """The ``messages``, ``tools`` and ``tool_choice`` of the next model call."""
        if self._outputs:
            self.messages.append({"role": "tool_output", "content": self._outputs})
            self._outputs = []
        request: dict[str, Any] = {"messages": list(self.messages), "tools": self.schemas}
        if self.responses:
            request["tool_choice"] = "auto"
        elif self.tool_choice is not None:
            request["tool_choice"] = self.tool_choice
        return request

    def answered(self, response: ChatResponse) -> list[ToolCall]:
        """Take an answer; return the calls to run now (none: the conversation is over)."""
        self.responses.append(response)
        calls = response.tool_calls
        message: dict[str, Any] = {"role": "assistant"}
        if response.text or not calls:
            message["content"] = response.text
        if calls:
            message["tool_calls"] = [
                {"id": c.id, "name": c.name, "parameters": c.parameters} for c in calls
            ]
        self.messages.append(message)
        if not calls:
            self._finished = True
            return []
        if len(self.responses) >= self.max_rounds:
            return []
        return calls

    def prepare(self, call: ToolCall) -> tuple[Callable[..., Any], dict[str, Any]] | None:
        """The function and keywords of a call, or ``None`` when it cannot be made (the
        error is recorded, or raised with ``raise_tool_errors``)."""
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.tools))
            self.finish(call, error=LookupError(f"no tool named {call.name!r} (tools: {known})"))
            return None
        if "_raw" in call.parameters and len(call.parameters) == 1:
            raw = call.parameters["_raw"]
            self.finish(call, error=ValueError(f"the arguments are not a JSON object: {raw!r}"))
            return None
        return tool.function, dict(call.parameters)

    def finish(
        self, call: ToolCall, *, value: Any = None, error: BaseException | None = None
    ) -> None:
        """Record a call's return value (or the exception it raised) as its output.

        Raises:
            BaseException: ``error``, with ``raise_tool_errors``.
        """
        if error is not None:
            if self.raise_tool_errors:
                raise error
            output = f"Error: {type(error).__name__}: {error}"
        else:
            try:
                output = _render(value)
            except (TypeError, ValueError) as exc:
                error = exc
                output = f"Error: the tool's result is not JSON data ({exc})"
        round_ = len(self.responses) - 1
        self.calls.append(ToolCallRecord(round=round_, call=call, output=output, error=error))
        self._outputs.append({"tool_call_id": call.id, "output": output})

    def result(self) -> ToolRun:
        """The ``ToolRun`` so far."""
        return ToolRun(
            response=self.responses[-1],
            responses=list(self.responses),
            messages=list(self.messages),
            calls=list(self.calls),
            rounds=len(self.responses),
            finished=self._finished,
        )
