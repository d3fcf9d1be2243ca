"""What differs between SQLite and PostgreSQL, behind one interface.

:class:`~cardvault.store.db.Database` holds one :class:`Backend` and is the only
caller: the rest of the code (the executor of :mod:`cardvault.store.direct`, the
group commit, the change feed, the services) asks the database, never the dialect.
Each backend lives in its own package, :mod:`cardvault.store.sqlite` and
:mod:`cardvault.store.postgresql`.

A difference here may change speed, never behaviour: what a caller can rely on is
the same on both; where one backend can promise more (SQLite sees every commit of the
machine at once), the promise is a :class:`Capabilities` flag, and callers that use
it are correct without it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.sql.dml import Insert

from cardvault.store.pools import PoolStatus

# Parameters of one execution, in the driver's paramstyle: positional (SQLite's
# ``qmark``) or by name (psycopg's ``pyformat``).
Params = Sequence[Any] | Mapping[str, Any]
# SQL text as the driver takes it (psycopg: bytes, so that it is not encoded again).
Sql = str | bytes
Raw = Sequence[Any]  # a row as the driver returns it


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend promises beyond the common ground.

    ``inline``: a statement costs microseconds and never waits for a network, so
    database calls run on the event loop (:meth:`Database.call`); otherwise in a
    thread, where an unreachable server cannot freeze the loop.

    ``sees_every_commit``: every writer is on this machine and a cheap probe
    (:class:`~cardvault.store.probe.ChangeProbe`) tells at once whether any of them
    committed. A per-worker cache may then check the probe before every answer and
    stay exact (the client cache of the token endpoint). Without it, other nodes'
    commits arrive through the change feed a few milliseconds later, so such a cache
    would answer from stale entries meanwhile: it stays off.

    ``commits_in_id_order``: writers are serialised and take ids under the write
    lock, so rows become visible in id order. Otherwise a row with a lower id may
    commit after one with a higher id (:mod:`cardvault.store.feeds` orders by the
    writer's transaction instead).
    """

    inline: bool
    sees_every_commit: bool
    commits_in_id_order: bool


class Driver(Protocol):
    """Runs compiled SQL on a DBAPI connection of its dialect. Errors are raised as
    SQLAlchemy raises them (``sqlalchemy.exc.IntegrityError``...), with the statement
    and never its parameters (they may be card data)."""

    def fetch(self, conn: Any, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        """The first row (``one``) or every row."""
        ...

    def execute(self, conn: Any, sql: Sql, params: Sequence[Params]) -> None:
        """Run the statement once per parameter set."""
        ...

    def sql(self, text: str) -> Sql:
        """Compiled SQL as :meth:`fetch` and :meth:`execute` take it."""
        ...


class Listener(Protocol):
    def close(self) -> None: ...


class Counter(Protocol):
    """A number that changes whenever any connection commits."""

    def __call__(self) -> int: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """One dialect's engine and everything around it. See :class:`Database` for what
    each method means to callers."""

    engine: Engine
    capabilities: Capabilities
    driver: Driver

    def read(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        """Run a read on this thread's reader connection (its own, outside any write
        transaction, seeing every commit made before the statement starts)."""
        ...

    async def aread(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        """:meth:`read` from the event loop: inline where a statement costs
        microseconds, else without blocking the loop (no thread either)."""
        ...

    async def aclose(self) -> None:
        """Close what the event loop's reads opened (from that loop)."""
        ...

    def writing(self) -> AbstractContextManager[None]:
        """Held around every write transaction."""
        ...

    def lock_writes(self, *, blocking: bool = True) -> bool: ...

    def unlock_writes(self) -> None: ...

    def held(self) -> AbstractContextManager[None]:
        """Around a write transaction whose caller took :meth:`lock_writes` itself."""
        ...

    def checkpoint(self) -> tuple[int, int] | None: ...

    def commit_counter(self) -> Counter | None:
        """A :class:`Counter` for :class:`~cardvault.store.probe.ChangeProbe`; None if
        nothing here sees every commit."""
        ...

    def listen(self, channel: str, wake: Callable[[], None]) -> Listener | None:
        """Call ``wake`` (from another thread) whenever any node notifies ``channel``
        (:func:`cardvault.store.db.notify`); None if notifications do not exist here."""
        ...

    @staticmethod
    def insert_or_ignore(table: Table) -> Insert:
        """``INSERT … ON CONFLICT DO NOTHING`` on ``table``."""
        ...

    @staticmethod
    def notify(conn: Connection, channel: str) -> None:
        """Notify ``channel``'s listeners when ``conn``'s transaction commits."""
        ...

    def pools(self) -> list[PoolStatus]:
        """This process's connection pools now, for the metrics (none where callers
        never wait for a pooled connection)."""
        ...

    def dispose(self) -> None: ...


class ThreadConnections:
    """One DBAPI connection per thread, made on first use, all closed at the end."""

    def __init__(self, connect: Callable[[], Any], close: Callable[[Any], None]) -> None:
        self._connect = connect
        self._close = close
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def get(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def drop(self) -> None:
        """Forget (and close) this thread's connection: the next :meth:`get` makes one."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            self._close(conn)

    def close_all(self) -> None:
        with self._lock:
            found, self._all = self._all, []
        self._local = threading.local()  # no thread keeps a closed connection
        for conn in found:
            with contextlib.suppress(Exception):  # a connection the server already closed
                self._close(conn)
