"""What every command shares: the usage error, messages to stderr, the key and the client."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, Final

from .._client import DEFAULT_BASE_URL, DEFAULT_MAX_CONNECTIONS, AsyncClient
from .._exceptions import InvalidRequestError, MissingAPIKeyError
from .._http.options import resolve_api_key
from .._http.transport import check_base_url
from ._parser import PROG

__all__ = ["UsageError", "api_key", "chat_params", "client", "logger", "say", "setup_logging"]

_MOCK_KEY: Final = "mock-key"

logger = logging.getLogger("reka_async")


class UsageError(Exception):
    """A usage or input problem: reported on one line, exit status 2."""


def setup_logging(verbosity: int) -> None:
    """Log to stderr: INFO for ``-v``, DEBUG for ``-vv``, nothing otherwise."""
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def say(message: str) -> None:
    """Write ``reka-async: message`` to stderr."""
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def api_key(args: argparse.Namespace) -> str:
    """The key to use (a dummy one with ``--mock``), with the base URL checked too: every
    usage problem is raised here, before anything is opened or created."""
    if args.mock:
        if args.base_url:
            raise UsageError("--mock and --base-url cannot be used together")
        return _MOCK_KEY
    base_url = args.base_url or os.environ.get("REKA_BASE_URL") or DEFAULT_BASE_URL
    try:
        check_base_url(base_url, allow_insecure_http=getattr(args, "allow_insecure_http", False))
    except ValueError as exc:
        hint = " (or --allow-insecure-http)" if "plain http" in str(exc) else ""
        raise UsageError(f"{exc}{hint}") from None
    try:
        return resolve_api_key(args.api_key or None)
    except MissingAPIKeyError:
        raise MissingAPIKeyError(
            "no API key: set the REKA_API_KEY environment variable "
            "(or run with --mock to use the built-in mock server)"
        ) from None
    except InvalidRequestError as exc:
        raise UsageError(str(exc)) from None


_PARAM_FLAGS: Final = ("max_tokens", "temperature", "top_p", "top_k", "seed", "stop")


def chat_params(args: argparse.Namespace) -> dict[str, Any]:
    """The chat parameters given on the command line (``--max-tokens``, ``--top-p``, ...)."""
    params: dict[str, Any] = {}
    for name in _PARAM_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    return params


@contextlib.asynccontextmanager
async def client(
    args: argparse.Namespace,
    *,
    max_retries: int = 2,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    mock_latency_s: float = 0.0,
    mock_fault_rate: float = 0.0,
) -> AsyncIterator[AsyncClient]:
    """An ``AsyncClient`` for the command: against a fresh in-process mock with ``--mock``."""
    key = api_key(args)
    if args.mock:
        from ..testing import MockRekaServer  # only the mock path needs aiohttp.web

        async with (
            MockRekaServer(
                api_key=None,
                latency_s=mock_latency_s,
                fault_rate=mock_fault_rate,
                record_requests=False,
            ) as server,
            AsyncClient(
                key,
                server.base_url,
                api=args.api,
                max_retries=max_retries,
                max_connections=max_connections,
            ) as session,
        ):
            yield session
        return
    async with AsyncClient(
        key,
        args.base_url,
        api=args.api,
        max_retries=max_retries,
        max_connections=max_connections,
        allow_insecure_http=getattr(args, "allow_insecure_http", False),
    ) as session:
        yield session
