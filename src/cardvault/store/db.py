"""Engines and sessions. SQLite and PostgreSQL differ only by URL."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


class StoreError(Exception):
    """The database could not be reached or refused an operation."""


class Database:
    """One engine and its session factories.

    ``sessions()`` is for reads. ``transaction()`` is for writes: on SQLite it starts
    with ``BEGIN IMMEDIATE`` (so a transaction that reads before it writes cannot fail
    to upgrade its lock), and writers queue on a thread lock and a lock file instead
    of polling SQLite's busy handler.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(
            engine.execution_options(cardvault_write=True), expire_on_commit=False
        )
        self._write_lock: threading.Lock | None = (
            threading.Lock() if engine.dialect.name == "sqlite" else None
        )
        self._local = threading.local()
        # Writers of different processes queue on a lock file: the kernel wakes the next
        # one as soon as the lock is free, where SQLite's busy handler sleeps and polls.
        self._lock_file: IO[bytes] | None = None
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        if path and path != ":memory:":
            self._lock_file = open(f"{path}.writelock", "ab")  # noqa: SIM115 (held open)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The process's write lock on SQLite; a nested write in one thread is a bug
        (it would wait for itself), so it fails at once instead of hanging."""
        if self._write_lock is None:
            yield
            return
        if getattr(self._local, "writing", False):
            raise StoreError("nested write transaction in one thread")
        with self._write_lock:
            self._local.writing = True
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if self._lock_file is not None:
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._local.writing = False

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error."""
        with self._writing(), self._writes.begin() as session:
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in a write transaction (same rules as ``transaction``)."""
        engine = self.engine.execution_options(cardvault_write=True)
        with self._writing(), engine.begin() as conn:
            yield conn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Writes take the write lock up front; reads run without an explicit transaction
    (WAL gives every statement a consistent snapshot; a read needs no lock)."""
    if conn.get_execution_options().get("cardvault_write", False):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_database(url: str) -> Database:
    """Build the engine for ``url``; for SQLite, create its directory first."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            hide_parameters=True,  # errors and logs never carry row values
            pool_size=20,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(
            url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True
        )
    return Database(engine)
