"""Reads from the event loop on PostgreSQL: psycopg's asynchronous connections.

A read on the event loop waits for the server without a thread: no hand-off to a
worker thread and back, which costs more than the statement itself on a busy
worker. The connections come from :class:`psycopg_pool.AsyncConnectionPool`, made in
the loop that first reads (one per worker process); they are in autocommit,
read-only, and prepare every statement on its first run (the executor's statements
are compiled once and run again and again).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import exc

from cardvault.store.backend import Params, Raw, Sql
from cardvault.store.pools import PoolStatus
from cardvault.store.postgresql.driver import translate


class AsyncReaders:
    def __init__(self, dsn: str, size: int, connect_args: dict[str, Any], timeout: float):
        self._dsn = dsn
        self._size = size
        self._args = {**connect_args, "autocommit": True}
        self._timeout = timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def fetch(self, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        """The rows of one statement; a connection found gone (the server restarted,
        a proxy dropped it) is replaced and the read run again, once."""
        pool = await self._opened()
        for attempt in (1, 2):
            try:
                async with pool.connection(timeout=self._timeout) as conn:
                    try:
                        cursor = await conn.execute(cast(bytes, sql), params)
                        rows: list[Raw] = await (cursor.fetchmany(1) if one else cursor.fetchall())
                        return rows
                    except psycopg.Error as error:
                        failed = translate(sql, error, conn)
                        if not failed.connection_invalidated or attempt == 2:
                            raise failed from None
            except PoolTimeout:
                # As SQLAlchemy's pool says it: the outage check (store/unavailable.py)
                # knows it as "the database is too slow or out of reach" (a 503).
                raise exc.TimeoutError("no reader connection became free in time") from None
        raise AssertionError("unreachable")

    async def _opened(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        # The first read of this loop (a worker has one): a pool of its own.
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._dsn,
            min_size=1,
            max_size=self._size,
            kwargs=self._args,
            configure=_configure,
            timeout=self._timeout,
            # A connection that failed is not retried on a schedule of its own (the
            # pool's backoff would keep the readers away for seconds after the server
            # is back): the attempt gives up at once and the next read tries again.
            reconnect_timeout=0,
            open=False,
            name="cardvault-readers",
        )
        self._pool, self._loop = pool, loop
        await pool.open(wait=False)
        return pool

    def status(self, name: str) -> PoolStatus:
        """The pool now, for the metrics: its size, connections in use, reads waiting."""
        if self._pool is None:
            return PoolStatus(name, self._size, 0, 0)
        stats = self._pool.get_stats()
        in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
        return PoolStatus(name, self._size, in_use, stats.get("requests_waiting", 0))

    async def close(self) -> None:
        """Close the pool, from the loop that made it."""
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            pool, self._pool = self._pool, None
            await pool.close()


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # JSON columns as the synchronous connections read them (SQLAlchemy's dialect
    # sets its deserializer on those): orjson.
    set_json_loads(orjson.loads, conn)
