"""WAL checkpoints on SQLite: left to :meth:`Database.checkpoint`, not to the writers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardvault.store import Database, create_database
from cardvault.store.sqlite import WAL_RESTART_PAGES, WRITER_CHECKPOINT_PAGES, SQLiteBackend
from tests.conftest import Databases

PAGE = 4096


@pytest.fixture
def sqlite_db(databases: Databases) -> Iterator[Database]:
    database = create_database(databases.url("sqlite"))
    with database.write_connection() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (b BLOB)")
    yield database
    database.dispose()


def _file(db: Database) -> Path:
    assert db.engine.url.database
    return Path(db.engine.url.database)


def _write_pages(db: Database, commits: int, rows: int) -> None:
    """About one page per row (4,000 random bytes), in separate commits."""
    for _ in range(commits):
        with db.write_connection() as conn:
            for _ in range(rows):
                conn.exec_driver_sql("INSERT INTO scratch VALUES (randomblob(4000))")


def test_writers_leave_the_wal_to_the_checkpoint(sqlite_db: Database) -> None:
    """Past SQLite's own threshold (1,000 pages) a writer would have copied the WAL
    into the database file at its commit; here nothing is copied until checkpoint()."""
    _write_pages(sqlite_db, commits=25, rows=80)  # about 2,000 pages
    assert _file(sqlite_db).stat().st_size < 100 * PAGE

    frames, copied = sqlite_db.checkpoint() or (0, 0)

    assert 2000 <= frames < WRITER_CHECKPOINT_PAGES
    assert copied == frames
    assert _file(sqlite_db).stat().st_size >= 2000 * PAGE


def test_a_long_wal_starts_over_though_writers_never_stop(sqlite_db: Database) -> None:
    """Under steady writes the WAL is never all copied when a writer starts, so SQLite
    would let it grow until a writer's own checkpoint (inside a commit). Past
    WAL_RESTART_PAGES, checkpoint() leaves the last pages to the next writer, which
    copies them before it lets go of the write lock: the writes after it start the
    WAL over."""
    _write_pages(sqlite_db, commits=WAL_RESTART_PAGES // 80 + 5, rows=80)
    commits: list[int] = []
    until = [10**9]  # the writer stops after this many commits

    def keep_writing() -> None:
        while len(commits) < until[0]:
            _write_pages(sqlite_db, commits=1, rows=5)
            commits.append(1)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(commits) < 5:  # the writer is under way
            time.sleep(0.005)
        frames, _ = sqlite_db.checkpoint() or (0, 0)
    finally:
        until[0] = len(commits) + 5  # and makes five more commits after the checkpoint
        writer.join()

    assert frames > WAL_RESTART_PAGES
    after, _ = sqlite_db.checkpoint() or (0, 0)
    assert 0 < after < WAL_RESTART_PAGES // 4  # the commits since, from the WAL's start


def test_a_failed_copy_of_the_last_pages_still_gives_the_lock_back(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    _write_pages(sqlite_db, commits=WAL_RESTART_PAGES // 80 + 5, rows=80)
    sqlite_db.checkpoint()  # a long WAL: its last pages are left to the next writer
    assert isinstance(sqlite_db.backend, SQLiteBackend)
    lock = sqlite_db.backend._lock
    assert lock._checkpointer is not None
    lock._checkpointer.close()  # the copy will fail

    assert sqlite_db.lock_writes(blocking=False)
    sqlite_db.unlock_writes()

    assert sqlite_db.lock_writes(blocking=False)  # given back all the same
    sqlite_db.unlock_writes()
    assert "copying the last pages of the WAL failed" in caplog.text
    lock._checkpointer = None  # closed above; dispose() need not


def test_rows_read_the_same_after_a_checkpoint(sqlite_db: Database) -> None:
    _write_pages(sqlite_db, commits=3, rows=10)
    with sqlite_db.engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT hex(b) FROM scratch ORDER BY rowid").all()

    sqlite_db.checkpoint()

    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT hex(b) FROM scratch ORDER BY rowid").all() == before
    assert len(before) == 30


def test_no_checkpoint_on_postgresql(databases: Databases) -> None:
    db = create_database(databases.url("postgresql"))
    try:
        assert db.checkpoint() is None
    finally:
        db.dispose()
