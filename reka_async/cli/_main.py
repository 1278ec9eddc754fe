"""``main``: parse the arguments, run the command, map what went wrong to one line and a status."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Final

from .._exceptions import BatchAbortedError, InvalidRequestError, MissingAPIKeyError, RekaError
from ._batch import cmd_batch, cmd_export
from ._bench import cmd_bench
from ._chat import cmd_chat
from ._common import UsageError, logger, say, setup_logging
from ._mock import cmd_mock_server
from ._models import cmd_models
from ._parser import build_parser

__all__ = ["main"]

_COMMANDS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "chat": cmd_chat,
    "batch": cmd_batch,
    "models": cmd_models,
    "bench": cmd_bench,
    "export": cmd_export,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reka-async`` command line.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 some requests failed (or an API error), 2 usage or
        input error.
    """
    parser, commands = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "mock-server":
            commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    setup_logging(args.verbose)
    if args.command == "mock-server":
        return cmd_mock_server(args, extra)
    try:
        return _COMMANDS[args.command](args)
    except (UsageError, MissingAPIKeyError, InvalidRequestError) as exc:
        say(f"error: {exc}")
        return 2
    except BatchAbortedError as exc:
        say(f"error: {exc}")
        say("the results so far are in the output; rerun with --resume to continue")
        return 1
    except RekaError as exc:
        say(f"error: {type(exc).__name__}: {exc}")
        return 1
    except BrokenPipeError:
        # The reader of stdout went away (e.g. piped into head): exit quietly.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        say(f"error: {exc.strerror or exc}{where}")
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as exc:  # a bug: still one line, with the traceback under -v
        logger.debug("unexpected error", exc_info=True)
        say(f"error: unexpected {type(exc).__name__}: {exc} (run with -vv for details)")
        return 1
