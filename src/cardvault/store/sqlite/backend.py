"""The SQLite backend: engine, pragmas, write lock, checkpoints, readers, probe."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, Table, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.dml import Insert

from cardvault.store.backend import (
    Capabilities,
    Counter,
    Driver,
    Listener,
    Params,
    Raw,
    Sql,
    ThreadConnections,
)
from cardvault.store.pools import PoolStatus
from cardvault.store.sqlite.driver import SQLiteDriver, connect_reader
from cardvault.store.sqlite.writes import WRITER_CHECKPOINT_PAGES, WriteLock

Synchronous = Literal["full", "normal"]


class SQLiteBackend:
    """Statements cost microseconds here and every writer is on this machine: calls
    run inline and a commit of any process is seen at once (``PRAGMA data_version``)."""

    capabilities = Capabilities(inline=True, sees_every_commit=True, commits_in_id_order=True)
    driver: Driver = SQLiteDriver()

    def __init__(self, url: str, *, synchronous: Synchronous, json_text: Callable[[Any], str]):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or path == ":memory:":
            raise ValueError("SQLite needs a database file (sqlite:///path/to/file.db)")
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            hide_parameters=True,  # errors and logs never carry row values
            pool_size=20,
            max_overflow=20,
            json_serializer=json_text,
            json_deserializer=orjson.loads,
        )
        event.listen(self.engine, "connect", _pragmas(synchronous))
        event.listen(self.engine, "begin", _begin)
        self._lock = WriteLock(path)
        self._readers = ThreadConnections(lambda: connect_reader(path), _close)

    def read(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        return self.driver.fetch(self._readers.get(), sql, params, one=one)

    async def aread(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        return self.read(sql, params, one=one)  # microseconds: inline

    async def aclose(self) -> None:
        return None

    def writing(self) -> AbstractContextManager[None]:
        return self._lock.writing()

    def held(self) -> AbstractContextManager[None]:
        return self._lock.held()

    def lock_writes(self, *, blocking: bool = True) -> bool:
        return self._lock.acquire(blocking=blocking)

    def unlock_writes(self) -> None:
        self._lock.release()

    def checkpoint(self) -> tuple[int, int] | None:
        return self._lock.checkpoint()

    def commit_counter(self) -> Counter | None:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        return _DataVersion(conn)

    def listen(self, channel: str, wake: Callable[[], None]) -> Listener | None:
        return None  # other workers' commits are seen by probing and polling

    @staticmethod
    def insert_or_ignore(table: Table) -> Insert:
        """``INSERT … ON CONFLICT DO NOTHING``."""
        return sqlite.insert(table).on_conflict_do_nothing()

    @staticmethod
    def notify(conn: Connection, channel: str) -> None:
        return None  # see listen()

    def pools(self) -> list[PoolStatus]:
        return []  # writers queue on the write lock, readers have a connection each

    def dispose(self) -> None:
        self.engine.dispose()
        self._readers.close_all()
        self._lock.close()


class _DataVersion:
    """``PRAGMA data_version`` on a private connection: it changes whenever any other
    connection commits, and costs microseconds."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn

    def __call__(self) -> int:
        assert self._conn is not None
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _close(conn: sqlite3.Connection) -> None:
    conn.close()


def _pragmas(synchronous: Synchronous) -> Callable[[Any, Any], None]:
    """The pragmas of every connection of the engine; ``synchronous`` as set (FULL by
    default: a commit is on disk when it returns)."""
    level = {"full": "FULL", "normal": "NORMAL"}[synchronous]

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the "begin" event below emits BEGIN
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={level}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Savepoint and statement journals in memory, not in temporary files: every
        # request's write is a savepoint of its group commit (a quarter of an insert's cost).
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return on_connect


def _begin(conn: Connection) -> None:
    """Writes take the write lock up front (``BEGIN IMMEDIATE``: a transaction that
    reads before it writes cannot fail to upgrade its lock); reads run without an
    explicit transaction (WAL gives every statement a consistent snapshot)."""
    if conn.get_execution_options().get("cardvault_write", False):
        # On the driver: an SQLAlchemy execution here costs more than the BEGIN.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
