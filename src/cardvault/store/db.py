"""Engines and sessions. SQLite and PostgreSQL differ only by URL."""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The database could not be reached or refused an operation."""


# Writers copy the WAL back into the database file themselves (SQLite's automatic
# checkpoint) only once it holds this many pages: in the server a background
# checkpoint (:meth:`Database.checkpoint`) does it long before, outside the write lock.
WRITER_CHECKPOINT_PAGES = 10_000
# SQLite starts the WAL over from its beginning only when a writer finds all of it
# copied, which under steady writes never happens by itself: the WAL grows until the
# writers' own checkpoint above copies it inside a commit (30 ms of write lock at
# 10,000 pages). Past this many pages, :meth:`Database.checkpoint` leaves the last few
# to the holder of the write lock (:meth:`Database.unlock_writes`), so that the next
# writer starts the WAL over.
WAL_RESTART_PAGES = 2_000

# PostgreSQL: seconds to wait for a pooled connection, and libpq's connection
# parameters that bound connecting and a connection whose peer went silent.
POOL_TIMEOUT = 3
PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 3,
    "tcp_user_timeout": 5000,  # ms a sent packet may stay unacknowledged
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


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
        self._write_engine = engine.execution_options(cardvault_write=True)
        self._writes = sessionmaker(self._write_engine, expire_on_commit=False)
        self._write_lock: threading.Lock | None = (
            threading.Lock() if engine.dialect.name == "sqlite" else None
        )
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        self._wal_long = False  # the last checkpoint left the WAL's last pages to a writer
        self._path = engine.url.database if engine.dialect.name == "sqlite" else None
        # Writers of different processes queue on a lock file: the kernel wakes the next
        # one as soon as the lock is free, where SQLite's busy handler sleeps and polls.
        self._lock_file: IO[bytes] | None = None
        if self._path and self._path != ":memory:":
            self._lock_file = open(f"{self._path}.writelock", "ab")  # noqa: SIM115 (held open)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def lock_writes(self, *, blocking: bool = True) -> bool:
        """Take this process's write lock and the lock file (SQLite; a no-op elsewhere).
        Without ``blocking``, returns False at once if another writer holds either.
        The holder must call :meth:`unlock_writes`; any thread may."""
        if self._write_lock is None:
            return True
        if not self._write_lock.acquire(blocking):
            return False
        if self._lock_file is not None:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                self._write_lock.release()
                return False
            except BaseException:
                self._write_lock.release()
                raise
        return True

    def unlock_writes(self) -> None:
        """Give the write lock back; first, if the last checkpoint found the WAL long,
        copy its last pages (no writer can add any now, so all of it is copied, and
        the next writer starts the WAL over)."""
        if self._write_lock is None:
            return
        try:
            if self._wal_long:
                self._finish_checkpoint()
        finally:
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._write_lock.release()

    def _finish_checkpoint(self) -> None:
        if not self._checkpoint_lock.acquire(blocking=False):
            return  # the checkpoint thread is at it: the next writer will do
        try:
            if self._checkpointer is not None and self._wal_long:
                _passive_checkpoint(self._checkpointer)
            self._wal_long = False
        except sqlite3.Error:  # the WAL stays long a while; the next writer tries again
            log.warning("copying the last pages of the WAL failed", exc_info=True)
        finally:
            self._checkpoint_lock.release()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The process's write lock on SQLite; a nested write in one thread is a bug
        (it would wait for itself), so it fails at once instead of hanging."""
        if self._write_lock is None:
            yield
            return
        if getattr(self._local, "writing", False):
            raise StoreError("nested write transaction in one thread")
        self.lock_writes()
        try:
            with self._flagged():
                yield
        finally:
            self.unlock_writes()

    @contextmanager
    def _flagged(self) -> Iterator[None]:
        self._local.writing = True
        try:
            yield
        finally:
            self._local.writing = False

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error."""
        with self._writing(), self._writes.begin() as session:
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in a write transaction (same rules as ``transaction``)."""
        with self._writing(), self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def locked_write_connection(self) -> Iterator[Connection]:
        """:meth:`write_connection` for a caller that already holds the write lock
        (:meth:`lock_writes`), such as an event loop that waited for it in a thread."""
        if getattr(self._local, "writing", False):
            raise StoreError("nested write transaction in one thread")
        with self._flagged(), self._write_engine.begin() as conn:
            yield conn

    def direct_reader(self) -> sqlite3.Connection | None:
        """This thread's read-only driver connection to a SQLite file (None on other
        databases), for :class:`cardvault.store.direct.Direct` reads."""
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if reader is None and self._path and self._path != ":memory:":
            reader = sqlite3.connect(
                self._path, timeout=10, isolation_level=None, check_same_thread=False
            )
            reader.execute("PRAGMA query_only=ON")
            self._local.reader = reader
            self._readers.append(reader)
        return reader

    def checkpoint(self) -> tuple[int, int] | None:
        """Copy what the WAL holds into the SQLite database file (a PASSIVE checkpoint:
        it waits for no reader or writer and copies what it can); the WAL's frames and
        how many of them are now in the database file, both -1 if another connection
        was checkpointing. None when there is no file.

        A checkpoint costs about as much as the commits it follows; run here, in a
        thread of the server, it leaves the write lock to the writers. From a WAL of
        WAL_RESTART_PAGES or more, it leaves the last few pages to the next holder
        of the write lock (:meth:`unlock_writes`): in a thread, the lock would wait
        for the interpreter lock as long as it waits for the copy."""
        if not self._path or self._path == ":memory:":
            return None
        with self._checkpoint_lock:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self._path, timeout=0, isolation_level=None, check_same_thread=False
                )
            frames, copied = _passive_checkpoint(self._checkpointer)
            if frames >= WAL_RESTART_PAGES:
                frames, copied = _passive_checkpoint(self._checkpointer)  # what came meanwhile
                self._wal_long = True
        return frames, copied

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        self._local = threading.local()  # no thread keeps a closed reader
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _passive_checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
    """The WAL's frames and how many are in the database file (-1, -1 if another
    connection was checkpointing)."""
    _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames), int(copied)


Synchronous = Literal["full", "normal"]


def _sqlite_pragmas(synchronous: Synchronous) -> Callable[[Any, Any], None]:
    """The pragmas of every SQLite connection of the engine; ``synchronous`` as set
    (FULL by default: a commit is on disk when it returns)."""
    level = {"full": "FULL", "normal": "NORMAL"}[synchronous]

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        _set_pragmas(dbapi_conn, level)

    return on_connect


def _set_pragmas(dbapi_conn: Any, synchronous: str) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Savepoint and statement journals in memory, not in temporary files: every
    # request's write is a savepoint of its group commit (a quarter of an insert's cost).
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Writes take the write lock up front; reads run without an explicit transaction
    (WAL gives every statement a consistent snapshot; a read needs no lock)."""
    if conn.get_execution_options().get("cardvault_write", False):
        # On the driver: an SQLAlchemy execution here costs more than the BEGIN.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _json_text(value: Any) -> str:
    """JSON columns as compact text, by orjson: several times faster than the standard
    library's encoder, on every card, audit record and event written."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_database(url: str, *, sqlite_synchronous: Synchronous = "full") -> Database:
    """Build the engine for ``url``; for SQLite, create its directory first.
    ``sqlite_synchronous``: see :attr:`cardvault.settings.Settings.sqlite_synchronous`."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            hide_parameters=True,  # errors and logs never carry row values
            pool_size=20,
            max_overflow=20,
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_synchronous))
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(
            url,
            pool_size=10,
            max_overflow=20,
            pool_pre_ping=True,
            # An unreachable database fails requests in seconds (a 503), never hangs
            # them: connecting, waiting for a pooled connection, and data sent that
            # the server never acknowledges are all bounded.
            pool_timeout=POOL_TIMEOUT,
            connect_args=PG_CONNECT_ARGS,
            hide_parameters=True,
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
        )
    return Database(engine)
