"""Group commit: the small writes of one worker that arrive together share one
transaction.

SQLite has one writer at a time, and most of a small write's cost is the
transaction around it (the write lock, ``BEGIN IMMEDIATE``, the commit). Requests
that reach the event loop while a write is running queue here; the next flush runs
all of them in one transaction, each in its own savepoint, so one request's error
(a unique-key race, say) rolls back only its own statements. If the commit itself
fails, every request of the batch gets the error and nothing of the batch is kept.

On PostgreSQL writers do not block each other: each write runs alone in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from cardvault.store.db import Database

T = TypeVar("T")

Write = Callable[[Connection], Any]
MAX_BATCH = 128


class GroupCommit:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: list[tuple[Write, asyncio.Future[Any]]] = []
        self._scheduled = False

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction (shared with others) and return its result."""
        if self._db.dialect != "sqlite":
            return await asyncio.to_thread(self._alone, fn)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((fn, future))
        if not self._scheduled:
            # After the requests already waiting on the loop have queued their writes.
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _alone(self, fn: Callable[[Connection], T]) -> T:
        with self._db.write_connection() as conn:
            return fn(conn)

    def _flush(self) -> None:
        self._scheduled = False
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._commit(batch)

    def _commit(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with self._db.write_connection() as conn:
                for fn, future in batch:
                    outcomes.append((future, *_in_savepoint(conn, fn)))
        except Exception as failed:  # the commit (or the lock) failed: nothing was kept
            for _fn, future in batch:
                if not future.done():
                    future.set_exception(failed)
            return
        for future, value, error in outcomes:
            if future.done():  # the request was cancelled (client went away)
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)


def _in_savepoint(conn: Connection, fn: Write) -> tuple[Any, BaseException | None]:
    # Plain SQL on the driver: SQLAlchemy's nested-transaction objects cost more than
    # the savepoint itself, and nothing here needs them.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("SAVEPOINT one_write")
    try:
        value = fn(conn)
    except Exception as error:
        driver.execute("ROLLBACK TO one_write")
        driver.execute("RELEASE one_write")
        return None, error
    driver.execute("RELEASE one_write")
    return value, None
