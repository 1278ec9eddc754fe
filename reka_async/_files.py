"""Files the package creates, made so that a planted link cannot turn them against the user.

Batch jobs run in shared directories (servers, CI): anyone who can write there can plant a
symbolic link at a name we are about to open. The rules, for every file the package writes:

* an output that is a symbolic link is written *through* it: the path is resolved first
  (``real_path``), and the lock, the temporary file and the final ``os.replace`` happen in
  the target's directory, so two paths to one file are one job;
* a temporary file comes from ``tempfile.mkstemp`` (an unpredictable name, created with
  ``O_EXCL``, so never through a link) and then gets the mode a plain ``open`` would have
  given it (``0o666 & ~umask``, or the mode of the file it replaces), so an output in a
  shared directory stays readable to colleagues;
* a lock file is opened with ``O_NOFOLLOW`` and checked with ``fstat`` (``open_lock_file``);
* a file another library opens (the request cache's SQLite database) is created here first
  (``create_plain``), through its link and with the plain mode; SQLite then writes through
  the link too, and opens its own sidecars (``-wal``, ``-shm``, ``-journal``) without
  following links and with the database's mode;
* an output written at the end of a long run (``bench --json``/``--plot``) is probed first
  (``check_can_create``), so that a typo costs nothing.

Hard links are out of scope: a hard link to a victim file is the victim itself, and nothing
at open time tells the two apart (the lock file refuses a link count above one, outputs do
not). Where ``O_NOFOLLOW`` does not exist (Windows) it is 0 and links are followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile

__all__ = [
    "UnsafeFileError",
    "check_can_create",
    "create_plain",
    "open_lock_file",
    "plain_mode",
    "real_path",
    "temp_beside",
]

#: 0 where the platform has no such flag (Windows): there, links are followed.
O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)


class UnsafeFileError(OSError):
    """A file we were to open is not one we may trust (a link, not ours, not regular)."""


def real_path(path: str) -> str:
    """``path`` with every symbolic link resolved (a dangling link names its target)."""
    return os.path.realpath(path)


def _umask() -> int:
    # /proc gives the umask without changing it; elsewhere, the set-and-restore dance.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_mode(replaces: str | None = None) -> int:
    """The mode a plain ``open`` would give a new file, or that of the file ``replaces``."""
    if replaces is not None:
        with contextlib.suppress(OSError):
            return stat.S_IMODE(os.stat(replaces).st_mode)
    return 0o666 & ~_umask()


def temp_beside(path: str, tag: str) -> tuple[int, str]:
    """A new temporary file in the directory of ``path`` (already resolved), for a rename
    over it; it has ``plain_mode(path)``.

    Returns:
        ``(fd, name)``: the open descriptor and the file's path; the caller closes and
        removes it.

    Raises:
        OSError: the directory cannot hold it.
    """
    directory, name = os.path.split(path)
    fd, temp = tempfile.mkstemp(prefix=f".{name}.{tag}-", dir=directory or ".")
    try:
        os.fchmod(fd, plain_mode(path))
    except BaseException:
        os.close(fd)
        os.unlink(temp)
        raise
    return fd, temp


def create_plain(path: str) -> None:
    """Create ``path`` empty, written through a link, with ``plain_mode()``, unless it
    exists; for files another library then opens (SQLite's database).

    Raises:
        OSError: it cannot be created.
    """
    try:
        fd = os.open(
            real_path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_CLOEXEC, plain_mode()
        )
    except FileExistsError:
        return
    os.close(fd)


def check_can_create(path: str, *, directory: bool = False) -> None:
    """Check, before any work is done, that ``path`` can be written when the work ends.

    A file is probed as it will be written: through its link, by a temporary file in the
    target's directory (created and removed at once). A directory (``directory=True``) may
    be missing, as its parents are created then: the nearest one that exists is probed.

    Raises:
        OSError: ``path`` cannot be written; its ``filename`` is ``path`` (or, for a
            directory, the existing path in the way), never the probe's name.
    """
    target = real_path(path)
    if directory:
        existing = target
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        probe_in = existing
    else:
        if os.path.isdir(target):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        probe_in = os.path.dirname(target)
    try:
        fd, probe = tempfile.mkstemp(prefix=".reka-async-check-", dir=probe_in or ".")
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, path) from None
    os.close(fd)
    os.unlink(probe)


def open_lock_file(path: str) -> int:
    """Open (creating it) the lock file ``path`` for reading and writing, never through a
    link, and check what was opened: a regular file, one link, owned by us.

    A file left by a killed run is opened again as it is (no ``O_EXCL``): its ``flock`` died
    with its process.

    Raises:
        UnsafeFileError: ``path`` is a symbolic link, not a regular file, has other hard
            links, or belongs to another user (named); remove it if it is stale.
        OSError: it cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | O_NOFOLLOW | O_CLOEXEC, plain_mode())
    except OSError:
        if os.path.islink(path):
            raise UnsafeFileError(
                f"{path} is a symbolic link; a lock file never is: remove it"
            ) from None
        raise
    try:
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file"
        elif info.st_nlink != 1:
            problem = f"has {info.st_nlink} hard links"
        elif hasattr(os, "getuid") and info.st_uid != os.getuid():
            problem = f"belongs to another user ({_owner(info.st_uid)})"
        if problem is not None:
            raise UnsafeFileError(f"{path} {problem}; a lock file of ours never does: remove it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name}, uid {uid}"
    except (ImportError, KeyError):
        return f"uid {uid}"
