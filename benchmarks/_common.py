"""Shared pieces of the benchmark harness: the mock server process, CPU pinning, machine info.

Nothing here measures anything; ``worker.py`` measures one client in one process and
``run.py`` orchestrates the runs and writes the report.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from reka_async import testing

REPO_ROOT: Final = Path(__file__).resolve().parent.parent

#: The key every client sends; the standalone mock accepts any non-empty key.
API_KEY: Final = "bench-key"
MODEL: Final = "reka-flash"
#: The prompt of every non-streaming and streaming request (the reply echoes it).
PROMPT: Final = "Write one short sentence about benchmarks, please."

#: Packages whose versions go into results.json.
VERSIONED_PACKAGES: Final = (
    "reka-async",
    "aiohttp",
    "yarl",
    "multidict",
    "attrs",
    "cattrs",
    "orjson",
    "uvloop",
    "httpx",
    "httpcore",
    "reka-api",
    "pydantic",
    "matplotlib",
)


# --------------------------------------------------------------------------- CPU pinning


def available_cpus() -> list[int]:
    """The CPUs this process may run on, sorted (all of them where affinity is unknown)."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        return sorted(getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pin_self(cpu: int | None) -> bool:
    """Pin the calling process to one CPU; False when impossible (no affinity API)."""
    setaffinity = getattr(os, "sched_setaffinity", None)
    if cpu is None or setaffinity is None:
        return False
    try:
        setaffinity(0, {cpu})
    except OSError:
        return False
    return True


def cpu_plan(pin: bool) -> tuple[int | None, int | None, str]:
    """Return ``(server_cpu, client_cpu, note)``: two distinct CPUs, or None when not pinning."""
    if not pin:
        return None, None, "pinning disabled (--no-pin)"
    cpus = available_cpus()
    if len(cpus) < 2 or not hasattr(os, "sched_setaffinity"):
        return None, None, f"not pinned: {len(cpus)} CPU(s) available or no sched_setaffinity"
    how = "taskset" if shutil.which("taskset") else "os.sched_setaffinity"
    return (
        cpus[0],
        cpus[1],
        f"mock server pinned to CPU {cpus[0]} ({how}); client processes to CPU {cpus[1]}",
    )


# --------------------------------------------------------------------------- the mock server


class MockServerProcess:
    """``python -m reka_async.testing`` in a subprocess, optionally pinned to one CPU.

    Use as a context manager; ``url`` is the base URL the server announced on stdout.
    A thin layer over `reka_async.testing.MockServerProcess` (imported only when used, so
    that the worker processes, which import this module, never load ``reka_async``).
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        chunk_latency_ms: float = 0.0,
        stream_chunks: int | None = None,
        cpu: int | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.extra_args = list(extra_args)
        self.latency_ms = latency_ms
        self.chunk_latency_ms = chunk_latency_ms
        self.stream_chunks = stream_chunks
        self.cpu = cpu
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.url = ""
        self.pinned_with = "none"
        self._server: testing.MockServerProcess | None = None

    def _new_server(self) -> testing.MockServerProcess:
        from reka_async.testing import MockServerProcess as Server

        args = [
            "--latency-ms",
            repr(float(self.latency_ms)),
            "--chunk-latency-ms",
            repr(float(self.chunk_latency_ms)),
        ]
        if self.stream_chunks is not None:
            args += ["--stream-chunks", str(self.stream_chunks)]
        args += self.extra_args
        taskset = shutil.which("taskset")
        return Server(
            *args,
            prefix=[taskset, "-c", str(self.cpu)] if self.cpu is not None and taskset else (),
            env=child_env(),
            cwd=REPO_ROOT,
            stderr=self.log_path if self.log_path is not None else subprocess.DEVNULL,
            startup_timeout=self.startup_timeout,
            stop_timeout=5.0,
        )

    def command(self) -> list[str]:
        """The command line that starts the server."""
        return self._new_server().command()

    def start(self) -> str:
        """Start the server and wait for its announcement; return its base URL."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._server = server = self._new_server()
        self.url = server.start()
        if self.cpu is not None:
            if server.prefix:
                self.pinned_with = f"taskset -c {self.cpu}"
            else:
                with contextlib.suppress(OSError, AttributeError):
                    os.sched_setaffinity(server.process.pid, {self.cpu})
                    self.pinned_with = f"os.sched_setaffinity({self.cpu})"
        return self.url

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def describe(self) -> dict[str, Any]:
        """The server's settings, for results.json."""
        return {
            "url": self.url,
            "latency_ms": self.latency_ms,
            "chunk_latency_ms": self.chunk_latency_ms,
            "stream_chunks": self.stream_chunks,
            "extra_args": self.extra_args,
            "pinned_with": self.pinned_with,
            "records_requests": False,
        }

    def __enter__(self) -> MockServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def child_env() -> dict[str, str]:
    """The environment of child processes: this checkout's ``reka_async`` comes first."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    env.pop("REKA_API_KEY", None)
    env.pop("REKA_BASE_URL", None)
    return env


# --------------------------------------------------------------------------- machine info


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def package_versions(names: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages that matter (None when absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if versions.get("reka-async") is None:
        with contextlib.suppress(Exception):
            from reka_async import __version__

            versions["reka-async"] = __version__
    return versions


def git_commit() -> str | None:
    """The checked-out commit (read-only ``git rev-parse``), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (a hint of how busy a shared machine was)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Everything about the machine and software that a reader needs to judge the numbers."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": available_cpus(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "load_average_at_start": load_average(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def long_prompt(words: int) -> str:
    """A prompt of exactly ``words`` words (the mock's reply echoes it after three words of its
    own, so a stream of up to ``words + 3`` chunks has text in every chunk)."""
    vocabulary = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(words))
