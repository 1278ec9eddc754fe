"""Keeping the mock quiet when the process runs out of file descriptors.

When ``accept()`` fails with ``EMFILE``, asyncio logs the error with a traceback on the
``asyncio`` logger for every attempt, and after the server closes, the retries it scheduled
log once more each: hundreds of thousands of lines for one overloaded minute. The filter here,
installed once per process by the first ``MockRekaServer.start()``, turns the first such
record into one line (without the traceback) and drops the rest; nothing else is touched.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["install_accept_filter"]

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
