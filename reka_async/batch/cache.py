"""``RequestCache``: answers to identical requests, kept in an SQLite database.

Keyed by the request hash (``_wire.hashing.request_hash``, the identity ``--resume`` stores:
model, messages, every parameter, dialect and API host; never ``custom_id`` or metadata) plus
the endpoint's identity (``endpoint_scope``): scheme, host, port, path prefix, dialect and a
keyed fingerprint of the API key, so an answer from the mock, another server, another gateway
path or another account never serves a run. The fingerprint is an HMAC-SHA256 of the key
under a random secret kept in the database itself: stable across runs of one file, never the
key, not reversible (and not comparable between two cache files).

Only successful responses are stored (an error never is). The database is the standard
library's ``sqlite3`` in WAL mode with a busy timeout, so several runners, jobs and processes
may read and write one file at once; each write is its own transaction (``INSERT OR
IGNORE``: the first answer stored for a key stays). An unreadable entry is a miss and is
deleted, so the next answer replaces it. Calls run in a worker thread so a busy database
never blocks the event loop.

A file that is not an SQLite database, one locked for longer than ``busy_timeout_s``, or a
cache written before the endpoint was part of the key (its entries cannot be told apart by
endpoint or account) raises ``CacheError`` saying what to do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Final

from .._exceptions import RekaError
from .._files import create_plain
from .._models import ChatResponse
from .._wire import converter

__all__ = ["CacheError", "RequestCache", "endpoint_scope"]

# ``responses`` (keyed by the request hash alone) was the table of caches written before the
# endpoint was part of the key; ``entries`` and ``meta`` replace it.
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " cache_key TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def endpoint_scope(base_url: str, api: str, fingerprint: str) -> str:
    """The identity of an endpoint and account, as the cache keys by it.

    Args:
        base_url: the client's base URL (credentials in it are left out; the key's
            fingerprint names the account).
        api: the client's dialect (``"native"``, ``"openai"`` or ``"auto"``).
        fingerprint: the API key's keyed fingerprint (``RequestCache.secret``).

    Returns:
        Canonical JSON of scheme, host, port (the scheme's default when none is given),
        path prefix (without a trailing ``/``), dialect and fingerprint.
    """
    url = urllib.parse.urlsplit(base_url)
    scheme = url.scheme.lower()
    port = url.port or _DEFAULT_PORTS.get(scheme)
    return json.dumps(
        {
            "scheme": scheme,
            "host": (url.hostname or "").lower(),
            "port": port,
            "path": url.path.rstrip("/"),
            "api": api,
            "key": fingerprint,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


class CacheError(RekaError):
    """The request cache database cannot be used (corrupt, locked, unwritable)."""


class RequestCache:
    """An SQLite request cache (see the module docstring).

    Args:
        path: the database file (created if missing).
        busy_timeout_s: how long a write waits for another writer before ``CacheError``.
        endpoint: an endpoint identity to key by instead of the client's (``BatchRunner``
            computes it with ``endpoint_scope``); the CLI's ``--mock`` gives one, as its
            in-process mock listens on a fresh port each run.

    Raises:
        CacheError: the file is not a usable SQLite database, or was written by a version
            whose key did not name the endpoint (use a new file, or delete this one).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_s: float = 30.0,
        endpoint: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        #: The endpoint identity given (``None``: the runner computes the client's).
        self.endpoint = endpoint
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        try:
            # SQLite would create the file 0o644 whatever the umask (and its WAL sidecars
            # copy that): made here first, it gets the mode a plain open gives. SQLite writes
            # through a linked path and opens its sidecars without following links.
            create_plain(self.path)
        except OSError as exc:
            raise CacheError(
                f"request cache {self.path}: cannot create it ({exc.strerror or exc}); "
                f"check the path and its permissions, or choose another --cache path"
            ) from None
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._secret = self._set_up(time.monotonic() + busy_timeout_s)
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error(exc) from None
        except CacheError:
            self._db.close()
            raise

    def _set_up(self, deadline: float) -> bytes:
        """WAL mode, the format check, the tables and the key secret, retried while another
        connection holds the file.

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
                self._check_format()
                for statement in _SCHEMA:
                    self._db.execute(statement)
                return self._load_secret()
            except sqlite3.OperationalError as exc:
                text = str(exc)
                tries += 1
                if "locked" not in text and "busy" not in text:
                    raise
                if tries > 1 and time.monotonic() > deadline:
                    raise
            time.sleep(pause)  # a constructor: nothing to await
            pause = min(pause * 2, 0.25)

    def _check_format(self) -> None:
        old = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'responses'"
        ).fetchone()
        if old is not None:
            raise CacheError(
                f"request cache {self.path}: written by an older reka-async, whose key did not "
                "name the endpoint (port, path) or the API key, so its answers cannot be told "
                "apart by server or account; use a new --cache path, or delete this file"
            )

    def _load_secret(self) -> bytes:
        # The first process to open a new file chooses the secret; every other keeps it (and
        # only reads it, so a file another connection holds locked still opens).
        query = "SELECT value FROM meta WHERE name = 'key_secret'"
        row = self._db.execute(query).fetchone()
        if row is None:
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('key_secret', ?)", (secrets.token_hex(32),)
            )
            row = self._db.execute(query).fetchone()
        return bytes.fromhex(str(row[0]))

    def scope_for(self, base_url: str, api: str, fingerprint: Callable[[bytes], str]) -> str:
        """The endpoint identity this cache keys a client's requests by.

        Args:
            base_url: the client's base URL.
            api: the client's dialect.
            fingerprint: ``fingerprint(secret)``, the API key's keyed fingerprint under this
                file's secret (the transport computes it; the key never reaches the cache).

        Returns:
            ``endpoint`` when one was given, else ``endpoint_scope(...)``.
        """
        if self.endpoint is not None:
            return self.endpoint
        return endpoint_scope(base_url, api, fingerprint(self._secret))

    @staticmethod
    def key(request_hash: str, scope: str) -> str:
        """The cache key of ``request_hash`` sent to the endpoint ``scope`` names."""
        digest = hashlib.sha256(f"{scope}\n{request_hash}".encode()).hexdigest()[:32]
        return "sha256:" + digest

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

    def get_sync(self, key: str) -> ChatResponse | None:
        """The cached response under ``key`` (``RequestCache.key``), or ``None`` (counted
        as a hit or miss). An unreadable entry is a miss, deleted so the next answer
        replaces it."""
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT response FROM entries WHERE cache_key = ?", (key,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if row is None:
            self.misses += 1
            return None
        try:
            response = converter.structure(json.loads(row[0]), ChatResponse)
        except Exception:
            self.misses += 1
            try:
                with self._lock:  # only this unreadable text: a good answer stored since stays
                    self._db.execute(
                        "DELETE FROM entries WHERE cache_key = ? AND response = ?", (key, row[0])
                    )
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            return None
        self.hits += 1
        return response

    def put_sync(self, key: str, response: ChatResponse) -> None:
        """Store ``response`` under ``key`` (the first answer stored stays)."""
        data = json.dumps(converter.unstructure(response), ensure_ascii=False)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR IGNORE INTO entries VALUES (?, ?, ?)", (key, data, time.time())
                )
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    async def get(self, key: str) -> ChatResponse | None:
        """``get_sync`` in a worker thread."""
        return await asyncio.to_thread(self.get_sync, key)

    async def put(self, key: str, response: ChatResponse) -> None:
        """``put_sync`` in a worker thread."""
        await asyncio.to_thread(self.put_sync, key, response)

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()
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
