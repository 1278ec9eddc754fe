"""``REKA_LOG``: switch on the ``reka_async`` logger from the environment, like ``OPENAI_LOG``.

``REKA_LOG=info`` logs retries and rate-limit waits; ``REKA_LOG=debug`` adds one line per HTTP
attempt (method, path, status, request id, attempt, duration). The environment is read when a
client is created; the first client that finds ``REKA_LOG`` set adds one handler (to stderr)
to the ``reka_async`` logger and sets its level, unless that logger has handlers already
(logging configured by the program, or the CLI's ``-v``), which are then left alone. Nothing
is logged that holds the key or the conversation: prompts and answers are never logged (an
``on_request`` hook sees the body if you need it).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Final

__all__ = ["LOGGER_NAME", "configure_from_env", "debug_enabled"]

LOGGER_NAME: Final = "reka_async"
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO}

_lock = threading.Lock()
_handler: logging.Handler | None = None


def configure_from_env() -> None:
    """Apply ``REKA_LOG`` (``info`` or ``debug``) once; an unknown value is ignored with a
    warning on the logger."""
    global _handler
    value = os.environ.get("REKA_LOG", "").strip().lower()
    if not value:
        return
    logger = logging.getLogger(LOGGER_NAME)
    level = _LEVELS.get(value)
    with _lock:
        if _handler is not None or logger.handlers:
            return
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(_handler)
        logger.setLevel(level if level is not None else logging.INFO)
    if level is None:
        logger.warning("REKA_LOG=%r is not 'info' or 'debug'; logging at info", value)


def debug_enabled() -> bool:
    """Whether the ``reka_async`` logger takes ``DEBUG`` records now."""
    return logging.getLogger(LOGGER_NAME).isEnabledFor(logging.DEBUG)
