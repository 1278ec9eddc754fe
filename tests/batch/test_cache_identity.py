"""The request cache's key names the endpoint and the account: port, path prefix and API key
each give another key; an old cache file is refused; an unreadable entry is replaced."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from reka_async import AsyncClient, BatchRunner, CacheError
from reka_async.batch import RequestCache
from reka_async.batch.cache import endpoint_scope
from reka_async.testing import MockRekaServer


async def test_a_second_server_on_another_port_is_not_answered_from_the_cache(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "c.db")
    async with MockRekaServer(api_key=None) as one, MockRekaServer(api_key=None) as two:
        async with AsyncClient("k", one.base_url) as first:
            await BatchRunner(first, cache=path).run(["a", "b", "c"])
        async with AsyncClient("k", two.base_url) as second:
            results = await BatchRunner(second, cache=path).run(["a", "b", "c"])
        assert not any(r.cached for r in results)
        assert len(two.requests) == 3
        async with AsyncClient("k", one.base_url) as again:  # the same endpoint: all cached
            assert all(r.cached for r in await BatchRunner(again, cache=path).run(["a", "b"]))


async def test_another_api_key_is_not_answered_from_the_cache(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    async with MockRekaServer(api_key=None) as srv:
        async with AsyncClient("key-one", srv.base_url) as one:
            await BatchRunner(one, cache=path).run(["a", "b"])
        srv.reset_stats()
        async with AsyncClient("key-two", srv.base_url) as two:
            results = await BatchRunner(two, cache=path).run(["a", "b"])
        assert not any(r.cached for r in results)
        assert len(srv.requests) == 2


def test_the_scope_names_scheme_host_port_path_and_dialect() -> None:
    base = endpoint_scope("https://api.reka.ai/v1", "native", "f")
    assert base == endpoint_scope("https://API.reka.ai:443/v1/", "native", "f")
    others = {
        endpoint_scope("http://api.reka.ai/v1", "native", "f"),
        endpoint_scope("https://api.reka.ai:8443/v1", "native", "f"),
        endpoint_scope("https://api.reka.ai/other/v1", "native", "f"),
        endpoint_scope("https://api.reka.ai/v1", "openai", "f"),
        endpoint_scope("https://api.reka.ai/v1", "native", "g"),
    }
    assert base not in others
    assert len(others) == 5


def test_the_key_fingerprint_is_stable_per_file_and_never_the_key(tmp_path: Path) -> None:
    from reka_async._http.transport import Transport

    path = tmp_path / "c.db"
    with RequestCache(path) as cache, RequestCache(path) as again:
        fingerprint = cache._secret  # one secret per file, whoever opens it
        assert fingerprint == again._secret
    with RequestCache(tmp_path / "other.db") as other:
        assert other._secret != fingerprint
    assert b"sk-secret-key" not in path.read_bytes()
    assert Transport.credential_fingerprint.__doc__


async def test_the_api_key_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with MockRekaServer(api_key=None) as srv, AsyncClient("sk-secret-key", srv.base_url) as c:
        runner = BatchRunner(c, cache=str(path))
        await runner.run(["a"])
        assert "sk-secret-key" not in runner.cache_scope
    assert runner.cache is not None
    runner.cache.close()
    for name in (path, Path(f"{path}-wal")):
        if name.exists():
            assert b"sk-secret-key" not in name.read_bytes()


def test_a_cache_from_before_the_endpoint_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE responses (request_hash TEXT PRIMARY KEY, response TEXT NOT NULL,"
            " created REAL NOT NULL)"
        )
    with pytest.raises(CacheError, match=r"older reka-async.*use a new --cache path"):
        RequestCache(path)


async def test_an_unreadable_entry_is_replaced_by_the_next_answer(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    async with MockRekaServer(api_key=None) as srv, AsyncClient("k", srv.base_url) as c:
        await BatchRunner(c, cache=path).run(["a"])
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute('UPDATE entries SET response = \'{"not": "a response"}\'')
        srv.reset_stats()
        (miss,) = await BatchRunner(c, cache=path).run(["a"])
        assert not miss.cached
        assert len(srv.requests) == 1
        (hit,) = await BatchRunner(c, cache=path).run(["a"])
        assert hit.cached
        assert hit.text == "Mock reply to: a"
        assert len(srv.requests) == 1


async def test_an_error_is_never_cached(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    async with MockRekaServer(api_key=None) as srv, AsyncClient("k", srv.base_url) as c:
        srv.inject("400")
        (failed,) = await BatchRunner(c, cache=path, max_retries=0).run(["a"])
        assert failed.error is not None
        (answered,) = await BatchRunner(c, cache=path).run(["a"])
        assert answered.response is not None
        assert not answered.cached
