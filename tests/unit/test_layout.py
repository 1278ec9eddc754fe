"""The package's shape: the chat arguments declared once, and the import rules of the layout
(imports run one way, down the data flow). The public names are pinned by
``test_public_names.py``."""

from __future__ import annotations

import ast
import inspect
import pathlib

import attrs
import pytest

import reka_async
from reka_async import AsyncClient, BatchOptions
from reka_async._models import ChatRequest
from reka_async._types import OPTION_NAMES, PARAM_NAMES
from reka_async.types import ChatArgs, ChatParams, ClientOptions

PACKAGE = pathlib.Path(reka_async.__file__).parent


def test_chat_params_are_the_request_model_fields() -> None:
    fields = {f.name for f in attrs.fields(ChatRequest)}
    assert set(ChatParams.__annotations__) == fields - {"model", "messages", "stream", "extra_body"}
    assert set(PARAM_NAMES) == set(ChatParams.__annotations__)


def test_chat_args_are_the_params_plus_conversation_and_options() -> None:
    assert set(ChatArgs.__annotations__) == {
        *ChatParams.__annotations__,
        "messages",
        "model",
        *OPTION_NAMES,
    }


def test_client_options_are_the_async_client_keywords() -> None:
    keywords = {
        name
        for name, p in inspect.signature(AsyncClient).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    # But pacer=, the async client's alone: a pacer belongs to one event loop, and the sync
    # Client runs its own.
    assert set(ClientOptions.__annotations__) == keywords - {"pacer"}


def test_batch_options_extend_the_chat_params() -> None:
    keys = set(BatchOptions.__annotations__)
    assert keys >= set(ChatParams.__annotations__)
    assert keys - set(ChatParams.__annotations__) == {
        "concurrency",
        "model",
        "rpm",
        "tpm",
        "rate_budget",
        "circuit_breaker",
        "raise_fd_limit",
        "gc_tuning",
        "adaptive",
        "fail_fast",
        "max_error_rate",
        "max_retries",
        "timeout",
        "on_result",
        "prepare",
        "progress",
        "prices",
        "max_cost",
        "media_tokens",
        "message_overhead",
        "cost_spent",
        "cache",
    }


async def test_chat_keywords_outside_chat_args_are_a_type_error() -> None:
    async with AsyncClient("k", "http://127.0.0.1:1/v1") as client:
        with pytest.raises(TypeError, match="unexpected keyword argument 'temprature'"):
            await client.chat.create(messages=[], model="m", temprature=0.5)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="missing required keyword argument: 'model'"):
            client.chat.create_stream(messages=[{"role": "user", "content": "hi"}])  # type: ignore[call-arg]


# --- import rules ---------------------------------------------------------------------------

#: The layout, top to bottom: a module may import from its own part and the parts above it.
#: ``testing`` imports nothing of the package, so anything may use it (the CLI's ``--mock``).
LAYERS = [
    "testing",
    "_version",
    "_types",
    "_logging",
    "_files",
    "_exceptions",
    "_media",
    "_serial",
    "_models",
    "_research",
    "_wire",
    "_http",
    "_sse",
    "_assemble",
    "_stream",
    "_tools",
    "_raw",
    "_listing",
    "_chat",
    "_client",
    "batch",
    "bench",
    "_sync",
    "jobs",
    "cli",
    "integrations",
    "types",  # a door, like the package's __init__: it re-exports, nothing imports it
]
#: Parts that only these may import aiohttp.
AIOHTTP_PARTS = {"_http", "testing"}


def _part(module: str) -> str:
    """``reka_async._http.transport`` -> ``_http``; the package's own door -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> list[tuple[str, pathlib.Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        found.append((name, path))
    return found


def _runtime_imports(module: str, path: pathlib.Path) -> list[str]:
    """Absolute names of what ``module`` imports at run time (``TYPE_CHECKING`` blocks are
    annotations only, so they are skipped: they create no import at run time)."""
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names.append(target)
    return names


MODULES = _modules()


def test_the_layout_lists_every_part() -> None:
    parts = {_part(name) for name, _ in MODULES} - {"", "__main__"}
    assert parts <= set(LAYERS), f"parts missing from LAYERS: {parts - set(LAYERS)}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_run_down_the_layout(module: str, path: pathlib.Path) -> None:
    part = _part(module)
    if part in ("", "__main__"):
        return  # the package's door re-exports from everywhere
    rank = LAYERS.index(part)
    for target in _runtime_imports(module, path):
        if not target.startswith("reka_async"):
            continue
        other = _part(target)
        assert other not in ("", "__main__"), f"{module} imports the package's door {target}"
        if part == "testing":
            assert other == "testing", f"testing must stay standalone: {module} imports {target}"
            continue
        assert LAYERS.index(other) <= rank, f"back-edge: {module} ({part}) imports {target}"
        assert {part, other} != {"cli", "integrations"}, f"{module} imports {target}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_aiohttp_is_imported_only_by_the_http_layer_and_the_mock(
    module: str, path: pathlib.Path
) -> None:
    if _part(module) in AIOHTTP_PARTS:
        return
    for target in _runtime_imports(module, path):
        assert target.split(".")[0] not in ("aiohttp", "yarl", "multidict"), (
            f"{module} imports {target}: only _http/ (and testing/) may use aiohttp"
        )


def test_the_import_rule_finds_a_back_edge(tmp_path: pathlib.Path) -> None:
    # The checker itself: a module of _http that imports batch is reported.
    path = tmp_path / "bad.py"
    path.write_text("from ..batch import BatchRunner\nif TYPE_CHECKING:\n    from .. import cli\n")
    assert _runtime_imports("reka_async._http.bad", path) == ["reka_async.batch"]
