"""``reka-async chat``: one prompt, the reply printed (whole, or as it is generated)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

from ._common import UsageError, api_key, chat_params, client

if TYPE_CHECKING:
    from .._types import MessageParam

__all__ = ["cmd_chat"]


def cmd_chat(args: argparse.Namespace) -> int:
    """Run ``chat``; returns the exit status."""
    if args.json and args.stream:
        raise UsageError(
            "--json prints the whole response as JSON; it cannot be used with --stream"
        )
    api_key(args)
    prompt = sys.stdin.read().strip() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    return asyncio.run(_chat(args, prompt))


async def _chat(args: argparse.Namespace, prompt: str) -> int:
    messages: list[MessageParam] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    params = chat_params(args)
    out = sys.stdout
    async with client(args, max_retries=args.max_retries) as session:
        if args.json:
            response = await session.chat.create(messages=messages, model=args.model, **params)
            out.write(json.dumps(response.to_dict(), ensure_ascii=False, indent=2) + "\n")
        elif args.stream:
            async with session.chat.create_stream(
                messages=messages, model=args.model, stream_mode=args.stream_mode, **params
            ) as stream:
                async for chunk in stream:
                    if chunk.rewrite:  # the text so far changed: it starts again on a new line
                        out.write("\n")
                    if chunk.delta:
                        out.write(chunk.delta)
                        out.flush()
            out.write("\n")
        else:
            response = await session.chat.create(messages=messages, model=args.model, **params)
            out.write(response.text + "\n")
        out.flush()
    return 0
