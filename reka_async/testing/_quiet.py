"""Keeping the mock's log to one line per event: running out of descriptors, malformed requests.

When ``accept()`` fails with ``EMFILE``, asyncio logs the error with a traceback on the
``asyncio`` logger for every attempt, and after the server closes, the retries it scheduled
log once more each: hundreds of thousands of lines for one overloaded minute. The filter here,
installed once per process by the first ``MockRekaServer.start()``, turns the first such
record into one line (without the traceback) and drops the rest; nothing else is touched.

A request aiohttp cannot parse (a 100 KB header, bad chunking) is answered 400 by aiohttp,
which logs it with a full traceback: a client's mistake, not the server's. The mock's request
handlers log to ``REQUEST_LOGGER`` (``reka_async.testing.http``), whose filter turns such a
record into one warning line naming the client and the problem; any other error there (a
bug in the mock) keeps its traceback.
"""

from __future__ import annotations

import logging
import threading

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["REQUEST_LOGGER", "install_accept_filter"]

#: Where aiohttp's request handlers of the mock log (instead of ``aiohttp.server``).
REQUEST_LOGGER = logging.getLogger("reka_async.testing.http")
#: A malformed request's description is cut here: a 100 KB header is not echoed.
_PROBLEM_CHARS = 160

_installed = False
_lock = threading.Lock()


class _AcceptFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.suppressed = 0
        self._said = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("socket.accept() out of system resource"):
            if self._said:
                self.suppressed += 1
                return False
            self._said = True
            record.msg = (
                "mock server: accept() failed, out of file descriptors (EMFILE); connections "
                "wait until some are free (further messages like this are suppressed)"
            )
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            return True
        if "BaseSelectorEventLoop._start_serving" in message and record.exc_info:
            error = record.exc_info[1]
            if isinstance(error, ValueError) and "file descriptor" in str(error):
                self.suppressed += 1  # a retry of accept() on a server closed since
                return False
        return True


def install_accept_filter() -> None:
    """Install the filter on the ``asyncio`` logger (once per process)."""
    global _installed
    with _lock:
        if not _installed:
            logging.getLogger("asyncio").addFilter(_AcceptFilter())
            _installed = True


class _MalformedRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            problem = " ".join(str(error.message).split())
            if len(problem) > _PROBLEM_CHARS:
                problem = problem[:_PROBLEM_CHARS] + "..."
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "mock: malformed request from %s: %s; answered %d"
            record.args = (remote, problem, error.code)
            if record.levelno > logging.WARNING:  # the client's mistake, not ours
                record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = None
            record.exc_text = None
        return True


REQUEST_LOGGER.addFilter(_MalformedRequestFilter())
