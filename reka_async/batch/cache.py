"""``RequestCache``: answers to identical requests, kept in an SQLite database.

Keyed by the one request hash (``_wire.hashing.request_hash``, the identity ``--resume``
stores too): model, messages, every parameter, dialect and API host, so an answer from the
mock never serves a real run; never ``custom_id`` or metadata. Only successful responses are
stored. The database is the standard library's ``sqlite3`` in WAL mode with a busy timeout,
so several runners, jobs and processes may read and write one file at once; each write is
its own transaction (``INSERT OR IGNORE``: the first answer stored for a request stays).
Calls run in a worker thread so a busy database never blocks the event loop.

A file that is not an SQLite database, or one locked for longer than ``busy_timeout_s``,
raises ``CacheError`` saying what to do.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from typing import Final

from .._exceptions import RekaError
from .._models import ChatResponse
from .._wire import converter

__all__ = ["CacheError", "RequestCache"]

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS responses ("
    " request_hash TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL NOT NULL)"
)


class CacheError(RekaError):
    """The request cache database cannot be used (corrupt, locked, unwritable)."""


class RequestCache:
    """An SQLite request cache (see the module docstring).

    Args:
        path: the database file (created if missing).
        busy_timeout_s: how long a write waits for another writer before ``CacheError``.

    Raises:
        CacheError: the file is not a usable SQLite database.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        self.path = os.fspath(path)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._set_up(time.monotonic() + busy_timeout_s)
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error(exc) from None

    def _set_up(self, deadline: float) -> None:
        """WAL mode and the table, retried while another connection holds the file.

        SQLite answers these two statements "database is locked" at once, without its busy
        handler, when another connection is switching the same new file to WAL or creating
        the table at that moment (it refuses rather than risk a deadlock), so several
        processes opening one new cache at once would fail all but one. Each retry waits a
        little longer, up to ``busy_timeout_s`` in all (and once at least).
        """
        pause = 0.005
        tries = 0
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                text = str(exc)
                tries += 1
                if "locked" not in text and "busy" not in text:
                    raise
                if tries > 1 and time.monotonic() > deadline:
                    raise
            time.sleep(pause)  # a constructor: nothing to await
            pause = min(pause * 2, 0.25)

    def __repr__(self) -> str:
        return f"<RequestCache {self.path!r} hits={self.hits} misses={self.misses}>"

    def _error(self, exc: sqlite3.Error) -> CacheError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            hint = "another process holds it locked; wait for it, or use another --cache path"
        elif "not a database" in text or "malformed" in text or "corrupt" in text:
            hint = "it is not a valid cache database: delete it (or choose another --cache path)"
        else:
            hint = "check the path and its permissions, or choose another --cache path"
        return CacheError(f"request cache {self.path}: {text}; {hint}")

    def get_sync(self, request_hash: str) -> ChatResponse | None:
        """The cached response of ``request_hash``, or ``None`` (counted as a hit or miss)."""
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT response FROM responses WHERE request_hash = ?", (request_hash,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if row is None:
            self.misses += 1
            return None
        try:
            response = converter.structure(json.loads(row[0]), ChatResponse)
        except Exception:  # an unreadable entry is a miss, and is replaced by the next answer
            self.misses += 1
            return None
        self.hits += 1
        return response

    def put_sync(self, request_hash: str, response: ChatResponse) -> None:
        """Store ``response`` for ``request_hash`` (the first answer stored stays)."""
        data = json.dumps(converter.unstructure(response), ensure_ascii=False)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR IGNORE INTO responses VALUES (?, ?, ?)",
                    (request_hash, data, time.time()),
                )
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    async def get(self, request_hash: str) -> ChatResponse | None:
        """``get_sync`` in a worker thread."""
        return await asyncio.to_thread(self.get_sync, request_hash)

    async def put(self, request_hash: str, response: ChatResponse) -> None:
        """``put_sync`` in a worker thread."""
        await asyncio.to_thread(self.put_sync, request_hash, response)

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database (idempotent). A ``BatchRunner`` given a path owns the cache it
        opens; it is closed when the runner is collected, or by ``close()`` here."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> RequestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Closing an SQLite connection is synchronous and needs no event loop; without it an
        # unclosed cache (a runner given a path) warns on Python 3.13+ when collected.
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
