"""The database: one engine, its sessions, and the backend of its dialect.

SQLite and PostgreSQL differ only by URL. What differs underneath (SQLite's write
lock and checkpoints, PostgreSQL's prepared readers and notifications) is the
backend's (:mod:`cardvault.store.backend`); callers use this class and
:class:`~cardvault.store.direct.Direct`, never the dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from anyio import to_thread
from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker

from cardvault.store.backend import (
    Backend,
    Capabilities,
    Counter,
    Driver,
    Listener,
    Params,
    Raw,
    Sql,
)
from cardvault.store.errors import StoreError
from cardvault.store.pools import PoolStatus
from cardvault.store.postgresql import PostgreSQLBackend
from cardvault.store.sqlite import SQLiteBackend, Synchronous

__all__ = [
    "Database",
    "StoreError",
    "capabilities_of",
    "create_database",
    "driver_for",
    "insert_if_absent",
    "notify",
]

T = TypeVar("T")


class Database:
    """One engine, its session factories and its backend.

    ``sessions()`` is for reads. ``transaction()`` and ``write_connection()`` are for
    writes: on SQLite writers queue on the write lock (one at a time, ``BEGIN
    IMMEDIATE``), on PostgreSQL they wait only for each other's rows.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.engine = engine = backend.engine
        self.capabilities: Capabilities = backend.capabilities
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_engine = engine.execution_options(cardvault_write=True)
        self._writes = sessionmaker(self._write_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """The dialect's name, for messages and tests; code asks :attr:`capabilities`."""
        return self.engine.dialect.name

    # ------------------------------------------------------------------ writes

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error."""
        with self.backend.writing(), self._writes.begin() as session:
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in a write transaction (same rules as ``transaction``)."""
        with self.backend.writing(), self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def locked_write_connection(self) -> Iterator[Connection]:
        """:meth:`write_connection` for a caller that already holds the write lock
        (:meth:`lock_writes`), such as an event loop that waited for it in a thread."""
        with self.backend.held(), self._write_engine.begin() as conn:
            yield conn

    def lock_writes(self, *, blocking: bool = True) -> bool:
        """Take the write lock (SQLite: this process's and the other processes'; it
        always succeeds elsewhere). Without ``blocking``, False at once if another
        writer holds it. The holder must call :meth:`unlock_writes`; any thread may."""
        return self.backend.lock_writes(blocking=blocking)

    def unlock_writes(self) -> None:
        self.backend.unlock_writes()

    # ------------------------------------------------------------------ reads

    def read(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        """Run compiled SQL on this thread's reader connection (outside any write
        transaction, seeing every commit made before it starts); rows as the driver
        gives them. For :class:`~cardvault.store.direct.Direct`."""
        return self.backend.read(sql, params, one=one)

    async def aread(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        """:meth:`read` from the event loop, which it never blocks on a network: on
        SQLite inline, on PostgreSQL on an asynchronous connection."""
        return await self.backend.aread(sql, params, one=one)

    async def aclose(self) -> None:
        """Close what the event loop's reads opened; from that loop, before
        :meth:`dispose`."""
        await self.backend.aclose()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work from the event loop: inline where a statement
        costs microseconds (a thread hop and its interpreter-lock hand-offs would cost
        more), in a thread where it crosses a network: one of the worker's blocking-work
        threads (``CARDVAULT_THREADS``), the pool the HTTP layer's handlers run in."""
        if self.capabilities.inline:
            return fn(*args)
        return await to_thread.run_sync(fn, *args)

    # ------------------------------------------------------------------ upkeep

    def checkpoint(self) -> tuple[int, int] | None:
        """SQLite: copy the WAL into the database file, from a thread of the server
        (see :meth:`cardvault.store.sqlite.writes.WriteLock.checkpoint`); the WAL's
        frames and how many are now copied. None where there is nothing to do."""
        return self.backend.checkpoint()

    def commit_counter(self) -> Counter | None:
        return self.backend.commit_counter()

    def listen(self, channel: str, wake: Callable[[], None]) -> Listener | None:
        """Call ``wake`` (from another thread) when any node calls :meth:`notify` on
        ``channel``; None where notifications do not exist (SQLite: the probe and
        polling see every commit)."""
        return self.backend.listen(channel, wake)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def aping(self) -> bool:
        """:meth:`ping` for the event loop's reads (see :meth:`aread`)."""
        try:
            await self.aread(self.backend.driver.sql("SELECT 1"), (), one=True)
        except Exception:
            return False
        return True

    def pools(self) -> list[PoolStatus]:
        """This process's connection pools now: size, in use, waiting (PostgreSQL's
        writers and readers; none on SQLite)."""
        return self.backend.pools()

    def dispose(self) -> None:
        self.backend.dispose()


def notify(conn: Connection | Session, channel: str) -> None:
    """Wake :meth:`Database.listen`'s listeners of ``channel`` when this transaction
    commits (a no-op where there are none)."""
    connection = conn.connection() if isinstance(conn, Session) else conn
    _backend_of(connection.dialect).notify(connection, channel)


def insert_if_absent(bind: Connection | Session, table: Table, values: dict[str, Any]) -> None:
    """INSERT that does nothing if a unique constraint already holds such a row
    (``ON CONFLICT DO NOTHING``). A concurrent uncommitted insert makes it wait for
    that transaction (SQLite: writers are serialised); either way the row read
    afterwards is the winner's."""
    conn = bind.connection() if isinstance(bind, Session) else bind
    conn.execute(_backend_of(conn.dialect).insert_or_ignore(table).values(values))


_BACKENDS: dict[str, type[SQLiteBackend] | type[PostgreSQLBackend]] = {
    "sqlite": SQLiteBackend,
    "postgresql": PostgreSQLBackend,
}


def _backend_of(dialect: Dialect) -> type[SQLiteBackend] | type[PostgreSQLBackend]:
    try:
        return _BACKENDS[dialect.name]
    except KeyError:
        raise StoreError(f"unsupported database: {dialect.name}") from None


def driver_for(dialect: Dialect) -> Driver:
    """The driver adapter that runs compiled SQL on ``dialect``'s DBAPI connections."""
    return _backend_of(dialect).driver


def capabilities_of(bind: Database | Engine | Connection | Session) -> Capabilities:
    """The :class:`Capabilities` of the database behind ``bind``."""
    if isinstance(bind, Database):
        return bind.capabilities
    engine_or_conn = bind.get_bind() if isinstance(bind, Session) else bind
    return _backend_of(engine_or_conn.dialect).capabilities


def _json_text(value: Any) -> str:
    """JSON columns as compact text, by orjson: several times faster than the standard
    library's encoder, on every card, audit record and event written."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_database(
    url: str,
    *,
    sqlite_synchronous: Synchronous = "full",
    pool_size: int = 4,
    readers: int = 4,
) -> Database:
    """The database at ``url``; for SQLite, its directory is created first.
    ``sqlite_synchronous``, ``pool_size`` and ``readers``: see
    :class:`cardvault.settings.Settings` (``sqlite_synchronous``, ``db_pool_size``,
    ``db_readers``)."""
    backend: Backend
    if url.startswith("sqlite"):
        backend = SQLiteBackend(url, synchronous=sqlite_synchronous, json_text=_json_text)
    elif url.startswith("postgresql"):
        backend = PostgreSQLBackend(url, writers=pool_size, readers=readers, json_text=_json_text)
    else:
        raise StoreError(f"unsupported database URL: {url.split(':', 1)[0]}")
    return Database(backend)
