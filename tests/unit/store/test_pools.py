"""The PostgreSQL pools tell their size, connections in use and callers waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from cardvault.store import Database, create_database
from cardvault.store.pools import PoolStatus
from tests.conftest import Databases


@pytest.fixture
def pg(databases: Databases) -> Iterator[Database]:
    database = create_database(databases.url("postgresql"), pool_size=1, readers=2)
    yield database
    database.dispose()


def _writers(db: Database) -> PoolStatus:
    [writers] = [pool for pool in db.pools() if pool.name == "writers"]
    return writers


def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.01)


def test_a_caller_waiting_for_the_only_connection_is_counted(pg: Database) -> None:
    assert [(p.name, p.size, p.in_use, p.waiting) for p in pg.pools()] == [
        ("writers", 1, 0, 0),
        ("readers", 2, 0, 0),
    ]
    got = threading.Event()

    def second() -> None:
        with pg.engine.connect():
            got.set()

    with pg.engine.connect():
        assert (_writers(pg).in_use, _writers(pg).waiting) == (1, 0)
        waiter = threading.Thread(target=second)
        waiter.start()
        _until(lambda: _writers(pg).waiting == 1)
        assert not got.is_set()
    waiter.join(timeout=5)
    assert got.is_set()
    assert (_writers(pg).in_use, _writers(pg).waiting) == (0, 0)


def test_sqlite_has_no_pool_to_wait_for(databases: Databases) -> None:
    db = create_database(databases.url("sqlite"))
    try:
        assert db.pools() == []
    finally:
        db.dispose()
