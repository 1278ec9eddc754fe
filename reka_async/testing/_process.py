"""`MockServerProcess`: ``python -m reka_async.testing`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Final, TypeVar

#: The line ``python -m reka_async.testing`` prints on stdout once it serves, before the URL.
ANNOUNCE_PREFIX: Final = "Mock Reka server listening on "

_P = TypeVar("_P", bound="MockServerProcess")


class MockServerProcess:
    """The standalone mock server, ``python -m reka_async.testing``, in a subprocess.

    For code that cannot share an event loop or a process with `MockRekaServer`: CLI tests,
    worker processes (Ray, multiprocessing), benchmarks. It runs
    ``[*prefix, sys.executable, "-m", "reka_async.testing", "--port", "0", *args]``, waits
    for the announce line and reads the base URL from it::

        with MockServerProcess("--latency-ms", "20", "--api-key", "k") as server:
            run_my_code(base_url=server.base_url)

    Its stdout is read until EOF by a thread, and so is its stderr when captured. On exit
    the process is terminated (killed if it does not stop within ``stop_timeout``) and the
    reader threads, which close the pipes, are joined.

    Args:
        *args: Extra command-line options of ``python -m reka_async.testing``.
        prefix: Words put before the command, e.g. ``["taskset", "-c", "0"]``.
        env: The environment of the process (default: this process's).
        cwd: The working directory of the process (default: this process's).
        stderr: Where the server's stderr goes: `subprocess.PIPE` (the default) captures
            it into `output`, a path names a log file (created, and closed on exit), and
            anything else `subprocess.Popen` accepts (`subprocess.DEVNULL`, a file) is
            passed through.
        startup_timeout: Seconds to wait for the announce line.
        stop_timeout: Seconds to wait after SIGTERM before killing the process, and at
            most for the reader threads to finish.
    """

    def __init__(
        self,
        *args: str,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stderr: int | IO[Any] | str | os.PathLike[str] | None = subprocess.PIPE,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.args: tuple[str, ...] = args
        self.prefix: tuple[str, ...] = tuple(prefix)
        self.env = env
        self.cwd = cwd
        self.stderr = stderr
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        #: The URL the server announced (``http://127.0.0.1:PORT/v1``); empty until started.
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._stopped = False
        self._log: IO[str] | None = None
        self._threads: list[threading.Thread] = []
        self._first_line: str | None = None
        self._announced = threading.Event()
        self._stdout: list[str] = []
        self._stderr: list[str] = []

    def command(self) -> list[str]:
        """The command line that starts the server."""
        cmd = [sys.executable, "-m", "reka_async.testing", "--port", "0", *self.args]
        return [*self.prefix, *cmd]

    @property
    def process(self) -> subprocess.Popen[str]:
        """The server's process (still available after `stop`, e.g. for ``returncode``).

        Raises:
            RuntimeError: When the server has not been started.
        """
        if self._process is None:
            raise RuntimeError("MockServerProcess has not been started")
        return self._process

    @property
    def output(self) -> str:
        """What the server printed: stdout after the announce line, then captured stderr.

        Stderr is captured only with ``stderr=subprocess.PIPE``. Complete once `stop` has
        returned.
        """
        return "".join(self._stdout) + "".join(self._stderr)

    def start(self) -> str:
        """Start the server and wait for its announce line.

        Returns:
            The base URL (also in `base_url`).

        Raises:
            RuntimeError: When the server was started before, or when it exits or prints
                anything else before announcing itself or stays silent for
                ``startup_timeout`` seconds (the process is stopped first; the message
                holds its exit status and captured stderr).
        """
        if self._process is not None:
            raise RuntimeError("MockServerProcess can be started only once")
        cmd = self.command()
        stderr = self.stderr
        if isinstance(stderr, (str, os.PathLike)):
            stderr = self._log = open(stderr, "w", encoding="utf-8")  # noqa: SIM115
        try:
            self._process = process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
                errors="replace",
                cwd=self.cwd,
                env=self.env,
            )
        except BaseException:
            self._close_log()
            raise
        for read, stream in (
            (self._read_stdout, process.stdout),
            (self._read_stderr, process.stderr),
        ):
            if stream is not None:
                thread = threading.Thread(target=read, args=(stream,), daemon=True)
                thread.start()
                self._threads.append(thread)
        announced = self._announced.wait(self.startup_timeout)
        line = self._first_line or ""
        if not line.startswith(ANNOUNCE_PREFIX):
            self.stop()
            if not announced:
                what = f"no announce line within {self.startup_timeout:g} s"
            else:
                what = f"printed {line!r}, exit status {process.returncode}"
            message = f"mock server did not start: {what} (command: {cmd})"
            captured = "".join(self._stderr).strip()
            raise RuntimeError(f"{message}\nstderr:\n{captured}" if captured else message)
        self.base_url = line[len(ANNOUNCE_PREFIX) :].strip()
        return self.base_url

    def _read_stdout(self, stream: IO[str]) -> None:
        # Reading on until EOF: the server must never block on a full pipe.
        try:
            self._first_line = stream.readline()
            self._announced.set()
            for line in stream:
                self._stdout.append(line)
        except (OSError, ValueError):  # pragma: no cover - the pipe closed under us
            pass
        finally:
            self._announced.set()
            stream.close()

    def _read_stderr(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._stderr.append(line)
        except (OSError, ValueError):  # pragma: no cover - the pipe closed under us
            pass
        finally:
            stream.close()

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``stop_timeout``); idempotent."""
        process = self._process
        if process is None or self._stopped:
            return
        self._stopped = True
        try:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            # Each reader closes its pipe at EOF, which comes once the process is gone (or,
            # when a grandchild still holds the pipe, later: not waited for past the timeout).
            deadline = time.monotonic() + self.stop_timeout
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            self._close_log()

    def _close_log(self) -> None:
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def __enter__(self: _P) -> _P:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._process is not None and not self._stopped else "stopped"
        return f"MockServerProcess({self.base_url or 'not started'}, {state})"
