"""Group commit: the small writes of one worker that arrive together share one
transaction.

SQLite has one writer at a time, and most of a small write's cost is the
transaction around it (the write lock, ``BEGIN IMMEDIATE``, the commit). Requests
that reach the event loop while a write is running queue here; the next flush runs
all of them in one transaction, each in its own savepoint, so one request's error
(a unique-key race, say) rolls back only its own statements. If the commit itself
fails, every request of the batch gets the error and nothing of the batch is kept.

The event loop never blocks on the write lock: when another writer (the other
worker processes, this one's audit flush) holds it, the loop waits for it in a thread
and goes on serving requests, whose writes join the batch.

PostgreSQL has no write lock, but the commit is the costly part there too (a round
trip and a WAL flush): the same batches run, each in a thread (a statement crosses a
network, :attr:`Capabilities.inline`), and the requests that arrive meanwhile make the
next batch. A batch of one write needs no savepoint.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from cardvault.store.db import Database
from cardvault.store.unavailable import is_conflict

T = TypeVar("T")

Write = Callable[[Connection], Any]
MAX_BATCH = 128
CONFLICT_ATTEMPTS = 3  # runs of a write that PostgreSQL gave up for a conflict


class GroupCommit:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: list[tuple[Write, asyncio.Future[Any]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction (shared with others) and return its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((fn, future))
        if self._draining is None:
            self._draining = loop.create_task(self._drain(), name="group-commit")
        return await future

    async def _drain(self) -> None:
        """Commit what is queued, a batch per turn of the write lock."""
        try:
            await asyncio.sleep(0)  # requests already on the loop queue their writes first
            while self._queue:
                await self._lock()
                try:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                    outcomes = await self._db.call(self._commit, batch)
                finally:
                    self._db.unlock_writes()
                _settle_all(outcomes)
        except asyncio.CancelledError:  # shutting down
            self._fail_queued(None)
            raise
        except Exception as error:  # the lock could not be taken (the lock file failed)
            self._fail_queued(error)
        finally:
            self._draining = None

    def _fail_queued(self, error: Exception | None) -> None:
        for _fn, future in self._queue:
            if not future.done():
                future.cancel() if error is None else future.set_exception(error)
        self._queue.clear()

    async def _lock(self) -> None:
        if self._db.lock_writes(blocking=False):
            return
        # The thread resolves a future of this loop itself (one hop back to the loop,
        # where awaiting the thread's own future takes three): while the lock waits
        # for the loop, no writer of any process can use it.
        loop = asyncio.get_running_loop()
        taken: asyncio.Future[None] = loop.create_future()
        waiter = _LockWaiter(self._db, loop, taken)
        loop.run_in_executor(None, waiter.take)
        try:
            await taken
        except asyncio.CancelledError:
            waiter.abandon()
            raise

    def _commit(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> list[_Outcome]:
        """Run a batch in one transaction (in a thread, or inline where statements
        cost microseconds); each write's result or error, for the loop to hand out.

        PostgreSQL may give up a transaction that deadlocked with another node's (two
        batches taking the same rows in another order): the writes it took from are
        run again, each alone, so a conflict between batches never reaches a caller.
        """
        outcomes: list[_Outcome] = []
        try:
            with self._db.locked_write_connection() as conn:
                if len(batch) == 1:  # alone: its error rolls back its own transaction
                    fn, future = batch[0]
                    outcomes.append((future, fn(conn), None))
                else:
                    for fn, future in batch:
                        outcomes.append((future, *_in_savepoint(conn, fn)))
        except Exception as failed:  # the commit (or the lock) failed: nothing was kept
            outcomes = [(future, None, failed) for _fn, future in batch]
        for n, (fn, future) in enumerate(batch):
            error = outcomes[n][2]
            if error is not None and is_conflict(error):
                outcomes[n] = self._alone(fn, future)
        return outcomes

    def _alone(self, fn: Write, future: asyncio.Future[Any]) -> _Outcome:
        """Run one write in a transaction of its own, again while it conflicts."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                with self._db.locked_write_connection() as conn:
                    return future, fn(conn), None
            except Exception as error:
                if not is_conflict(error) or attempt == CONFLICT_ATTEMPTS:
                    return future, None, error
        raise AssertionError("unreachable")


_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


def _settle_all(outcomes: list[_Outcome]) -> None:
    for future, value, error in outcomes:
        if future.done():  # the request was cancelled (client went away)
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


class _LockWaiter:
    """Waits for the write lock in a thread on behalf of the event loop. If the loop
    stops waiting (shutdown), whichever of the two comes second gives the lock back:
    the thread, or the loop, so it is never left held."""

    def __init__(
        self, db: Database, loop: asyncio.AbstractEventLoop, taken: asyncio.Future[None]
    ) -> None:
        self._db = db
        self._loop = loop
        self._future = taken
        self._mutex = threading.Lock()
        self._abandoned = False
        self._taken = False

    def take(self) -> None:
        try:
            self._db.lock_writes()
        except Exception as error:  # the lock file failed: the loop's drain fails too
            self._loop.call_soon_threadsafe(_settle, self._future, error)
            return
        with self._mutex:
            if self._abandoned:
                self._db.unlock_writes()
                return
            self._taken = True
        try:
            self._loop.call_soon_threadsafe(_settle, self._future, None)
        except RuntimeError:  # the loop is closed: nobody will use the lock
            self.abandon()

    def abandon(self) -> None:
        with self._mutex:
            self._abandoned = True
            if self._taken:
                self._db.unlock_writes()


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():  # the loop stopped waiting (shutdown): abandon() gave the lock back
        return
    if error is None:
        future.set_result(None)
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
