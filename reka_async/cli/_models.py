"""``reka-async models``: the models as a table (id, context, max output, modalities, prices);
``--ids`` prints the ids alone, one a line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from .._models import Model
from ._common import api_key, client

__all__ = ["cmd_models", "models_table"]

_HEADERS = ("ID", "CONTEXT", "MAX OUTPUT", "INPUT", "OUTPUT", "$/M IN", "$/M OUT")


def cmd_models(args: argparse.Namespace) -> int:
    """Run ``models``; returns the exit status."""
    api_key(args)
    return asyncio.run(_models(args))


async def _models(args: argparse.Namespace) -> int:
    async with client(args) as session:
        models = await session.models.list()
    if getattr(args, "ids", False):
        text = "".join(model.id + "\n" for model in models)
    else:
        text = models_table(models)
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def _per_million(price: str | None) -> str:
    """USD per token as sent (a decimal string) -> USD per million tokens, for people."""
    if price is None:
        return "-"
    try:
        value = Decimal(price) * 1_000_000
    except InvalidOperation:
        return price
    return f"{value.normalize():f}"


def _row(model: Model) -> tuple[str, ...]:
    pricing = model.pricing
    return (
        model.id,
        "-" if model.context_length is None else f"{model.context_length:,}",
        "-" if model.max_output_length is None else f"{model.max_output_length:,}",
        ",".join(model.input_modalities or ()) or "-",
        ",".join(model.output_modalities or ()) or "-",
        _per_million(pricing.prompt if pricing else None),
        _per_million(pricing.completion if pricing else None),
    )


def models_table(models: Sequence[Model]) -> str:
    """The models as an aligned text table, one row per model under a header line."""
    rows = [_HEADERS, *(_row(m) for m in models)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"
