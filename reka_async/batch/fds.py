"""File descriptors: a batch at high concurrency needs one socket per request in flight.

``fit_concurrency`` compares what a run needs (the descriptors open now, one per connection,
or two where the server is in the same process, plus ``FD_MARGIN`` for logs, files and the
event loop) with the soft ``RLIMIT_NOFILE``. When asked (the CLI asks;
``BatchRunner(raise_fd_limit=True)`` does) it first raises the soft limit toward the hard
one. A concurrency the limit still cannot hold is lowered to what it can, and the sentence
returned says so: a run that knows its budget never fails items for descriptors, where one
that overshoots loses the items whose retries all meet ``EMFILE``. Running out anyway
(something else in the process took them) is an overload signal for the adaptive limit
(``fd_exhausted``), so a run backs off rather than failing item after item.

Where the ``resource`` module does not exist (Windows), nothing is checked or lowered.
"""

from __future__ import annotations

import errno
import os

__all__ = ["FD_MARGIN", "fd_exhausted", "fit_concurrency", "open_fds"]

#: Descriptors kept for everything that is not a connection (files, logs, the event loop).
FD_MARGIN = 64


def open_fds() -> int:
    """How many descriptors this process has open (0 where that cannot be counted)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            return max(0, len(os.listdir(listing)) - 1)  # less the listing's own
        except OSError:
            continue
    return 0  # pragma: no cover - neither Linux nor a BSD


def fit_concurrency(
    concurrency: int, *, per_connection: int = 1, reserve: int = 0, raise_limit: bool = False
) -> tuple[int, str | None]:
    """The concurrency the open-file limit can hold, raising the soft limit first if asked.

    Args:
        concurrency: the connections the run would hold at once.
        per_connection: descriptors each connection costs in this process (2 when the
            server is in it too, as with the CLI's ``--mock``).
        reserve: descriptors the caller will open after this check, beyond ``FD_MARGIN``.
        raise_limit: raise the soft limit toward the hard one when it is short.

    Returns:
        ``(concurrency to run at, sentence)``: the sentence (``None`` when there is nothing
        to say) tells what was raised or lowered, and how to run at the full concurrency.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return concurrency, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return concurrency, None
    kept = open_fds() + FD_MARGIN + reserve
    needed = kept + per_connection * concurrency
    if soft >= needed:
        return concurrency, None
    raised = ""
    if raise_limit:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError):
                target = soft
        if target >= needed:
            return concurrency, f"raised the open-file limit from {soft} to {target} for this run"
        if target > soft:
            raised = f"raised the open-file limit from {soft} to {target} (the hard limit), but "
        soft = target
    fits = max(1, (soft - kept) // per_connection)
    if fits >= concurrency:  # pragma: no cover - one connection, and kept alone is too many
        return concurrency, None
    shared = " (the in-process mock holds a descriptor per connection too)" * (per_connection > 1)
    unlimited = hard == resource.RLIM_INFINITY
    how = f"ulimit -n {needed}"
    if not raise_limit and (unlimited or hard > soft):
        how += ", or raise_fd_limit=True"
    sentence = (
        f"{raised}the open-file limit ({soft}, hard limit {'unlimited' if unlimited else hard}) "
        f"holds about {fits} connections{shared}, not {concurrency}: running at concurrency "
        f"{fits}; raise the limit ({how}) to run at {concurrency}"
    )
    return fits, sentence


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
