"""``reka-async mock-server``: ``python -m reka_async.testing`` with the CLI's options."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["cmd_mock_server"]


def cmd_mock_server(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """Serve the mock until Ctrl-C or SIGTERM; ``extra`` goes to its own parser."""
    from ..testing import main as serve

    argv = [
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--latency-ms",
        repr(args.latency_ms),
        "--fault-rate",
        repr(args.fault_rate),
        *extra,
    ]
    try:
        return serve(argv)
    except SystemExit as exc:  # its own usage errors
        return exc.code if isinstance(exc.code, int) else 2
