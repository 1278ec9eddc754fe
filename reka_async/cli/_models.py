"""``reka-async models``: the model ids, one a line."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ._common import api_key, client

__all__ = ["cmd_models"]


def cmd_models(args: argparse.Namespace) -> int:
    """Run ``models``; returns the exit status."""
    api_key(args)
    return asyncio.run(_models(args))


async def _models(args: argparse.Namespace) -> int:
    async with client(args) as session:
        models = await session.models.list()
    for model in models:
        sys.stdout.write(model.id + "\n")
    sys.stdout.flush()
    return 0
