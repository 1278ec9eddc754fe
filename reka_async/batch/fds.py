"""File descriptors: a batch at high concurrency needs one socket per request in flight.

``fd_budget(concurrency)`` is what a run needs: the connections plus a margin for the
interpreter, logs and files. ``ensure_fd_limit`` compares it with the soft ``RLIMIT_NOFILE``
and, when asked (the CLI asks; ``BatchRunner(raise_fd_limit=True)`` does), raises the soft
limit toward the hard one. Otherwise it only says what is wrong (``BatchRunner`` turns that
into a ``ResourceWarning``). Running out anyway (``EMFILE``) is an overload signal for the
adaptive limit, so a run backs off rather than failing item after item.

Where the ``resource`` module does not exist (Windows), nothing is checked.
"""

from __future__ import annotations

import errno

__all__ = ["FD_MARGIN", "ensure_fd_limit", "fd_budget", "fd_exhausted"]

#: Descriptors kept for everything that is not a connection.
FD_MARGIN = 64


def fd_budget(concurrency: int) -> int:
    """The descriptors a run at ``concurrency`` needs."""
    return concurrency + FD_MARGIN


def ensure_fd_limit(needed: int, *, raise_limit: bool) -> str | None:
    """Check (and with ``raise_limit``, raise) the soft descriptor limit.

    Returns:
        ``None`` when the limit is (now) enough, else a sentence saying what is short and
        what to do; with ``raise_limit`` a raised limit is reported too (``"raised ..."``).
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    if raise_limit:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError):
                target = soft
            if target >= needed:
                return f"raised the open-file limit from {soft} to {target} for this run"
        return (
            f"the open-file limit is {target} (hard limit {hard}) but this concurrency needs "
            f"about {needed}: lower the concurrency or raise the limit (ulimit -n); the "
            f"adaptive limit will back off when it runs out"
        )
    return (
        f"the open-file limit ({soft}) is below the ~{needed} descriptors this concurrency "
        f"needs: lower the concurrency, raise it (ulimit -n {needed}), or pass "
        f"raise_fd_limit=True"
    )


_FD_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE))


def fd_exhausted(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is running out of file descriptors."""
    seen: BaseException | None = error
    for _ in range(8):  # a short walk down the chain: causes are never this deep
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in _FD_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
