"""The PostgreSQL backend: pooled writers, prepared per-thread readers, NOTIFY."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

import orjson
import psycopg
from sqlalchemy import Connection, Table, create_engine, exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.dml import Insert

from cardvault.store.backend import (
    Capabilities,
    Counter,
    Driver,
    Listener,
    Params,
    Raw,
    Sql,
)
from cardvault.store.pools import PoolStatus, WatchedPool, pool_status
from cardvault.store.postgresql.driver import PsycopgDriver
from cardvault.store.postgresql.listen import Listener as NotificationListener
from cardvault.store.postgresql.listen import notify as pg_notify
from cardvault.store.postgresql.readers import AsyncReaders

# Seconds to wait for a pooled connection, and libpq's connection parameters that
# bound connecting and a connection whose peer went silent.
POOL_TIMEOUT = 3
PG_CONNECT_ARGS: dict[str, Any] = {
    "application_name": "cardvault",  # pg_stat_activity tells the service's connections
    "connect_timeout": 3,
    "tcp_user_timeout": 5000,  # ms a sent packet may stay unacknowledged
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
# The loop's readers prepare every statement on its first run: they run only the
# executor's statements, each compiled once and run again and again. (Writers keep
# psycopg's default: a statement is prepared on its fifth run on a connection.)
READER_ARGS: dict[str, Any] = {
    **PG_CONNECT_ARGS,
    "prepare_threshold": 0,
    "options": "-c default_transaction_read_only=on",
}


class PostgreSQLBackend:
    """Statements cross a network here and other nodes write too: calls run in
    threads, and other nodes' commits arrive through ``NOTIFY`` and polling."""

    capabilities = Capabilities(inline=False, sees_every_commit=False, commits_in_id_order=False)
    driver: Driver = PsycopgDriver()

    def __init__(
        self, url: str, *, writers: int, readers: int, json_text: Callable[[Any], str]
    ) -> None:
        """``writers`` and ``readers``: the most connections of each kind this process
        opens (:attr:`cardvault.settings.Settings.db_pool_size`, ``db_readers``)."""
        json = {"json_serializer": json_text, "json_deserializer": orjson.loads}
        # Fixed-size pools, no overflow: PostgreSQL's connection limit is shared by
        # every worker of every node, so a process never opens more than it was given;
        # a burst waits for a connection (at most POOL_TIMEOUT, then 503).
        self.engine = create_engine(
            url,
            poolclass=WatchedPool,  # counts waiting callers, for the metrics
            pool_size=writers,
            max_overflow=0,
            pool_pre_ping=True,
            # An unreachable database fails requests in seconds (a 503), never hangs
            # them: connecting, waiting for a pooled connection, and data sent that
            # the server never acknowledges are all bounded.
            pool_timeout=POOL_TIMEOUT,
            connect_args=PG_CONNECT_ARGS,
            hide_parameters=True,  # errors and logs never carry row values
            **json,
        )
        # Reads on the event loop (the busy GETs, the token endpoint's client) use
        # asynchronous connections of their own, at most ``readers`` of them; reads
        # from threads use the pool above, in autocommit.
        self._async_readers = AsyncReaders(
            self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
            readers,
            READER_ARGS,
            POOL_TIMEOUT,
        )

    def read(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        for attempt in (1, 2):
            pooled: PoolProxiedConnection = self.engine.raw_connection()
            conn = cast("psycopg.Connection[Any]", pooled.driver_connection)
            try:
                conn.autocommit = True  # one statement: no transaction to end
                try:
                    return self.driver.fetch(conn, sql, params, one=one)
                finally:
                    conn.autocommit = False
            except exc.DBAPIError as error:
                # A connection that was gone (the server restarted, a proxy dropped
                # it): a read can be run again, once, on a new one, as a pre-ping would.
                if not error.connection_invalidated or attempt == 2:
                    raise
                pooled.invalidate()
            except psycopg.Error:  # autocommit could not be set back: not reusable
                pooled.invalidate()
                raise
            finally:
                pooled.close()
        raise AssertionError("unreachable")

    async def aread(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        return await self._async_readers.fetch(sql, params, one=one)

    def writing(self) -> AbstractContextManager[None]:
        return nullcontext()  # writers wait for each other's rows only

    def held(self) -> AbstractContextManager[None]:
        return nullcontext()

    def lock_writes(self, *, blocking: bool = True) -> bool:
        return True

    def unlock_writes(self) -> None:
        return None

    def checkpoint(self) -> tuple[int, int] | None:
        return None  # the server's own business

    def commit_counter(self) -> Counter | None:
        return None  # other nodes commit too: nothing here sees all of them

    def listen(self, channel: str, wake: Callable[[], None]) -> Listener | None:
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return NotificationListener(dsn, PG_CONNECT_ARGS, channel, wake)

    @staticmethod
    def insert_or_ignore(table: Table) -> Insert:
        """``INSERT … ON CONFLICT DO NOTHING``."""
        return postgresql.insert(table).on_conflict_do_nothing()

    @staticmethod
    def notify(conn: Connection, channel: str) -> None:
        pg_notify(conn, channel)

    async def aclose(self) -> None:
        await self._async_readers.close()

    def pools(self) -> list[PoolStatus]:
        return [pool_status("writers", self.engine), self._async_readers.status("readers")]

    def dispose(self) -> None:
        self.engine.dispose()
