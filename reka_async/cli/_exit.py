"""The exit statuses of every ``reka-async`` command, and the line that continues a stopped
``batch``, decided once here.

======  ===========================================================================
status  meaning
======  ===========================================================================
0       success: every request (every batch input) succeeded
1       some requests failed (their error records say why); the API answered an error
2       usage or input error, or a refusal before anything was sent: a bad flag, a
        missing key, the output locked by another run, the input changed since the
        output was written
3       the batch was stopped before the end, and the "to continue" line says what to
        change before resuming: the circuit breaker (a bad key, no credits, a server wait
        above the cap), the ``--max-cost`` budget (raise it: the budget is per job), an
        answer billed above the budget's bound (raise ``--media-tokens`` or
        ``--message-overhead``), or an error rate above ``--max-error-rate``
74      I/O error reading the input or writing the output (``EX_IOERR``); the message
        names the path
130     interrupted by SIGINT (Ctrl-C) after flushing what finished; resuming continues
143     terminated by SIGTERM after flushing what finished; resuming continues
======  ===========================================================================

Every way a ``batch`` run stops has a ``StopReason``; ``continue_line`` writes its "to
continue" line (the one place that does): the advice of the reason and the command that
continues the job, with ``--resume``, never the key, and ``--retry-failed`` whenever items
failed for a reason the user is told to fix (``FIXABLE_ERRORS``), and after an error-rate
stop (its failures are what it stopped for). A run that ends with such failures (exit 1)
gets the line too.

On platforms without POSIX signals or ``fcntl`` locks (Windows), SIGTERM cannot be caught
and the output lock is not taken; the other statuses hold.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "EXIT_STATUS_HELP",
    "FIXABLE_ERRORS",
    "ExitCode",
    "StopReason",
    "continue_command",
    "continue_line",
]


class ExitCode(enum.IntEnum):
    """The exit statuses (see the module docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    STOPPED = 3
    IO_ERROR = 74
    SIGINT = 130
    SIGTERM = 143


class StopReason(enum.Enum):
    """Why a ``batch`` run ended before its input did (or with failures to fix); each has
    its exit status and its advice (``continue_line``)."""

    BUDGET = "budget"
    BOUND_EXCEEDED = "bound_exceeded"
    BREAKER = "breaker"
    ERROR_RATE = "error_rate"
    INTERRUPTED = "interrupted"
    TERMINATED = "terminated"
    FAILED = "failed"

    @property
    def exit_code(self) -> ExitCode:
        """The exit status of a run that stopped for this reason."""
        return _EXIT[self]


_EXIT: Final = {
    StopReason.BUDGET: ExitCode.STOPPED,
    StopReason.BOUND_EXCEEDED: ExitCode.STOPPED,
    StopReason.BREAKER: ExitCode.STOPPED,
    StopReason.ERROR_RATE: ExitCode.STOPPED,
    StopReason.INTERRUPTED: ExitCode.SIGINT,
    StopReason.TERMINATED: ExitCode.SIGTERM,
    StopReason.FAILED: ExitCode.FAILED,
}

#: What to do before running the command, per reason ("" : just run it).
_ADVICE: Final = {
    StopReason.BUDGET: "raise --max-cost (it caps the whole job, every run counted), then",
    StopReason.BOUND_EXCEEDED: (
        "raise --media-tokens (for media) or --message-overhead, as the error says, then"
    ),
    StopReason.BREAKER: "fix what the error says, then",
    StopReason.ERROR_RATE: "look at the failures (and raise --max-error-rate if they are "
    "expected), then",
    StopReason.INTERRUPTED: "",
    StopReason.TERMINATED: "",
    StopReason.FAILED: "fix what the errors say, then retry the failures with",
}

#: Recorded error types that the advice tells the user to fix, so the continuing command
#: sends those items again (``--retry-failed``): a refused key, no access, no credits, a
#: server wait above the cap, a budget, a missing price or media bound.
FIXABLE_ERRORS: Final = frozenset(
    {
        "AuthenticationError",
        "PermissionDeniedError",
        "InsufficientCreditsError",
        "RateLimitError",
        "BudgetExceededError",
        "UsageAboveBoundError",
        "UnpricedModelError",
        "MediaTokensNeededError",
    }
)


def continue_command(argv: Sequence[str], *, retry_failed: bool) -> str:
    """The command line that continues a run of ``reka-async`` with arguments ``argv``
    (``sys.argv[1:]``): without ``--api-key`` or ``--overwrite``, with ``--resume`` (and
    ``--retry-failed`` when asked)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--api-key":
            skip = True
        elif not arg.startswith("--api-key=") and arg != "--overwrite":
            out.append(arg)
    if "--resume" not in out:
        out.append("--resume")
    if retry_failed and "--retry-failed" not in out:
        out.append("--retry-failed")
    return shlex.join(["reka-async", *out])


def continue_line(
    reason: StopReason, argv: Sequence[str], *, failed_types: Iterable[str] = ()
) -> str | None:
    """The "to continue" line of a run that ended for ``reason``, or ``None`` when there is
    nothing to continue (``FAILED`` with no failure the user can fix).

    Args:
        reason: why the run ended.
        argv: the command's arguments (``sys.argv[1:]``).
        failed_types: the error types of the job's failed records (its final scan).
    """
    fixable = any(t in FIXABLE_ERRORS for t in failed_types)
    if reason is StopReason.FAILED and not fixable:
        return None
    advice = _ADVICE[reason]
    # An error-rate stop is about its failures (mostly 5xx and timeouts, which can change):
    # the command that continues it sends them again (input errors stay failed).
    command = continue_command(argv, retry_failed=fixable or reason is StopReason.ERROR_RATE)
    return f"to continue: {advice + ' ' if advice else ''}{command}"


#: The epilog line every command's ``--help`` shows.
EXIT_STATUS_HELP = (
    "exit status: 0 all ok; 1 some requests failed; 2 usage/input error or refusal (output "
    "locked, input changed); 3 batch stopped, change what the 'to continue' line says and "
    "resume (bad key, no credits, long server wait, --max-cost spent, usage above the "
    "budget's bound, error rate); 74 I/O error; 130 SIGINT; 143 SIGTERM."
)
