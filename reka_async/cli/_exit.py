"""The exit statuses of every ``reka-async`` command, decided once here.

======  ===========================================================================
status  meaning
======  ===========================================================================
0       success: every request (every batch input) succeeded
1       some requests failed (their error records say why); the API answered an error
2       usage or input error, or a refusal before anything was sent: a bad flag, a
        missing key, the output locked by another run, the input changed since the
        output was written
3       the batch was stopped before the end: the circuit breaker (a bad key, no
        credits, a server wait above the cap) or a budget; ``--resume`` continues it
74      I/O error reading the input or writing the output (``EX_IOERR``); the message
        names the path
130     interrupted by SIGINT (Ctrl-C) after flushing what finished
143     terminated by SIGTERM after flushing what finished
======  ===========================================================================

On platforms without POSIX signals or ``fcntl`` locks (Windows), SIGTERM cannot be caught
and the output lock is not taken; the other statuses hold.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode", "EXIT_STATUS_HELP"]


class ExitCode(enum.IntEnum):
    """The exit statuses (see the module docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    STOPPED = 3
    IO_ERROR = 74
    SIGINT = 130
    SIGTERM = 143


#: The epilog line every command's ``--help`` shows.
EXIT_STATUS_HELP = (
    "exit status: 0 all ok; 1 some requests failed; 2 usage/input error or refusal (output "
    "locked, input changed); 3 batch stopped (bad key, no credits, long server wait, budget; "
    "--resume continues); 74 I/O error; 130 SIGINT; 143 SIGTERM."
)
