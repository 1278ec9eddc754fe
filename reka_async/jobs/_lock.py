"""``OutputLock``: one writer per output file, across processes.

The lock is an exclusive ``flock`` on a sidecar file, ``OUTPUT.lock`` (the output itself is
replaced when it is compacted, so a lock on it would not survive that). The holder writes its
pid into the sidecar for the message a second run shows. Releasing unlinks the sidecar before
unlocking; a process that opened the old sidecar meanwhile sees, after locking it, that the
path no longer names the file it locked, and tries again: two holders are impossible.

The lock is keyed on the output's real path (symbolic links resolved), so two paths to one
file are one job; the sidecar sits beside the real file. It is opened with ``O_NOFOLLOW``
and checked before it is locked (``_files.open_lock_file``): a planted link, a file with
other hard links or one owned by another user is refused (``OutputLocked``, naming the
owner), never truncated. A sidecar left by a killed run is taken over (its ``flock`` died
with it).

POSIX only (Linux, macOS). Where ``fcntl`` does not exist (Windows) no lock is taken and the
job runs unguarded: do not start two runs on one output there (and there links are
followed: ``O_NOFOLLOW`` does not exist).
"""

from __future__ import annotations

import contextlib
import os
from types import TracebackType
from typing import Any

from .._files import UnsafeFileError, open_lock_file, real_path
from ._errors import OutputLocked

_fcntl: Any
try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not POSIX
    _fcntl = None

__all__ = ["OutputLock"]


class OutputLock:
    """An exclusive, non-blocking lock on ``path`` for the life of a job.

    Raises (on enter):
        OutputLocked: another process holds it; the message names the pid.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock_path = real_path(path) + ".lock"
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (``OutputLocked`` when another process has it)."""
        fcntl = _fcntl
        if fcntl is None:  # pragma: no cover - not POSIX
            return
        while True:
            try:
                fd = open_lock_file(self.lock_path)
            except UnsafeFileError as exc:
                raise OutputLocked(f"cannot lock {self.path}: {exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (pid {holder})" if holder else ""
                raise OutputLocked(
                    f"{self.path} is being written by another run{who}; wait for it to "
                    f"finish, or write to another output"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder released and unlinked it meanwhile: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock and its sidecar file (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_path)
        os.close(fd)  # closing releases the flock


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(fd, 32, 0).decode().strip()))
    return ""
