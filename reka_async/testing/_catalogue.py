"""The models the mock server knows, and ``GET /v1/models`` in the three shapes of the contract.

The three shapes are the eras of the contract: ``"list"`` (``[{"id": ...}]``, what ``reka-api``
3.2.0 parses), ``"openai"`` (``{"object": "list", "data": [Model]}`` with the rich fields of
2026, what the ``openai`` package and LiteLLM parse) or ``"strings"`` (``["reka-core", ...]``,
the oldest). Unless a server is told one shape (``models_shape=``), each caller gets the shape
its SDK parses (`shape_for`): the OpenAI list to a ``Bearer`` token, the native list to an
``X-Api-Key`` alone.

With ``models=None`` every shape lists the same ids (`DEFAULT_MODELS`: the legacy ids, then
the rest of the current catalogue), all accepted on the chat endpoints; research models only
on ``/v1/chat/completions``. Prices are the published ones where the contract gives them (per
million tokens: Flash $0.80/$2.00, Edge $0.10/$0.10, Flash 3 $0.10/$0.20); the rest are
plausible placeholders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from ._json import dumps

ModelsShape = Literal["list", "openai", "strings"]
MODELS_SHAPES: Final = ("list", "openai", "strings")

LEGACY_MODELS: Final = (
    "reka-core",
    "reka-flash",
    "reka-edge",
    "reka-core-20240501",
    "reka-flash-20240904",
)
_CREATED: Final = 1_767_225_600  # 2026-01-01, a fixed date keeps the listing deterministic
_MEDIA: Final = ["text", "image", "video", "audio", "pdf"]


def _entry(
    name: str, description: str, prices: tuple[str, str], context: int, inputs: list[str]
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "context_length": context,
        "max_output_length": 8192,
        "input_modalities": inputs,
        "output_modalities": ["text"],
        "pricing": {"prompt": prices[0], "completion": prices[1]},
    }


CATALOGUE: Final[Mapping[str, dict[str, Any]]] = {
    "reka-flash": _entry(
        "Reka Flash", "Fast multimodal model", ("0.0000008", "0.000002"), 128_000, _MEDIA
    ),
    "reka-core": _entry(
        "Reka Core", "The largest multimodal model", ("0.000002", "0.000008"), 128_000, _MEDIA
    ),
    "reka-edge": _entry(
        "Reka Edge", "Compact model for local use", ("0.0000001", "0.0000001"), 64_000, _MEDIA
    ),
    "reka-flash-3": _entry(
        "Reka Flash 3", "Reasoning model", ("0.0000001", "0.0000002"), 128_000, ["text"]
    ),
    "reka-edge-2603": _entry(
        "Reka Edge 2603", "Edge model, March 2026", ("0.0000001", "0.0000001"), 64_000, _MEDIA
    ),
    "reka-flash-research": _entry(
        "Reka Flash Research",
        "Research agent: web search, reasoning steps and citations",
        ("0.0000008", "0.000002"),
        128_000,
        ["text"],
    ),
}


#: What ``GET /v1/models`` lists in every shape when a server is given no ``models``.
DEFAULT_MODELS: Final = LEGACY_MODELS + tuple(m for m in CATALOGUE if m not in LEGACY_MODELS)


def shape_for(headers: Mapping[str, str], fixed: ModelsShape | None) -> ModelsShape:
    """The shape of ``GET /v1/models`` for a request with ``headers``: ``fixed`` when the
    server was given one, else the OpenAI list to a ``Bearer`` token (it wins over
    ``X-Api-Key``: OpenAI-dialect clients send both) and the native list otherwise."""
    if fixed is not None:
        return fixed
    scheme, _, _ = headers.get("Authorization", "").partition(" ")
    return "openai" if scheme.lower() == "bearer" else "list"


def model_body(model: str) -> bytes:
    """The body of ``GET /v1/models/{model}``: one OpenAI ``Model`` object (a mock extra:
    the API documents only the listing; the ``openai`` package's ``models.retrieve`` reads
    it)."""
    return dumps(openai_entry(model))


def openai_entry(model: str) -> dict[str, Any]:
    """The OpenAI ``Model`` object of ``model``, with the catalogue's details."""
    # A dated name (reka-core-20240501) takes the metadata of its undated family.
    base = next((m for m in sorted(CATALOGUE, key=len, reverse=True) if model.startswith(m)), "")
    details = CATALOGUE.get(base, {"name": model})
    return {"id": model, "object": "model", "created": _CREATED, "owned_by": "reka", **details}


def models_body(models: Sequence[str], shape: ModelsShape) -> bytes:
    """The body of ``GET /v1/models`` listing ``models`` in ``shape`` (ValueError if unknown)."""
    if shape not in MODELS_SHAPES:
        raise ValueError(f"models_shape must be one of {MODELS_SHAPES}")
    if shape == "strings":
        return dumps(list(models))
    if shape == "openai":
        return dumps({"object": "list", "data": [openai_entry(m) for m in models]})
    return dumps([{"id": m} for m in models])


def listed_models(models: Sequence[str] | None) -> tuple[str, ...]:
    """The ids ``GET /v1/models`` lists in every shape (``models=None``: `DEFAULT_MODELS`)."""
    return tuple(models) if models is not None else DEFAULT_MODELS


def accepted_models(models: Sequence[str] | None) -> frozenset[str]:
    """The ids the chat endpoints accept (``models=None``: legacy ids and the catalogue)."""
    if models is not None:
        return frozenset(models)
    return frozenset(LEGACY_MODELS) | frozenset(CATALOGUE)
