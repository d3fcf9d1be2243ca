"""Group commit on a real database: shared transaction, per-write savepoints."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from cardvault.store import Database, create_database
from cardvault.store.group_commit import GroupCommit
from cardvault.store.migrate import upgrade
from cardvault.store.models import Base
from cardvault.store.types import utcnow
from tests.conftest import BACKENDS, Databases

ORGS = Base.metadata.tables["organizations"]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


def _add(org_id: str) -> object:
    def write(conn: Connection) -> str:
        conn.execute(insert(ORGS), [{"id": org_id, "name": org_id, "created_at": utcnow()}])
        return org_id

    return write


def _names(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.scalars(select(ORGS.c.id)))


async def _together(writes: GroupCommit, *fns: object) -> list[object]:
    tasks = [asyncio.ensure_future(writes.write(fn)) for fn in fns]  # type: ignore[arg-type]
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_one_failing_write_keeps_the_others(db: Database) -> None:
    outcomes = asyncio.run(_together(GroupCommit(db), _add("org_a"), _add("org_a"), _add("org_b")))
    # One of the twins wins, the other fails (in its savepoint).
    twins = sorted(outcomes[:2], key=lambda outcome: isinstance(outcome, IntegrityError))
    assert twins[0] == "org_a" and isinstance(twins[1], IntegrityError)
    assert outcomes[2] == "org_b"
    assert _names(db) == {"org_a", "org_b"}


def test_concurrent_writes_share_one_commit(db: Database) -> None:
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    outcomes = asyncio.run(_together(GroupCommit(db), *(_add(f"org_{n}") for n in range(20))))
    assert outcomes == [f"org_{n}" for n in range(20)]
    assert _names(db) == {f"org_{n}" for n in range(20)}
    # The twenty writes arrived together: one transaction, one commit, on every database.
    assert len(commits) == 1


def test_a_failed_commit_fails_every_write_of_the_batch(databases: Databases) -> None:
    """A foreign key checked only at commit makes the commit itself fail: every write
    of the batch gets the error and none of them is kept."""
    url = databases.url("sqlite")
    upgrade(url)
    db = create_database(url)

    def orphan_vault(conn: Connection) -> None:
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        vaults = Base.metadata.tables["vaults"]
        row = {"id": "vlt_x", "org_id": "org_missing", "name": "x", "created_at": utcnow()}
        conn.execute(insert(vaults), [row])

    try:
        outcomes = asyncio.run(_together(GroupCommit(db), _add("org_x"), orphan_vault))
        assert all(isinstance(outcome, IntegrityError) for outcome in outcomes)
        assert _names(db) == set()
    finally:
        db.dispose()


def test_the_loop_keeps_serving_while_another_writer_holds_the_lock(sqlite_db: Database) -> None:
    """Another process (here: a thread) holds the write lock: the write waits for it
    without freezing the event loop, and writes queued meanwhile join its batch."""
    db = sqlite_db
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    assert db.lock_writes()
    holder = threading.Timer(0.3, db.unlock_writes)

    async def scenario() -> tuple[list[object], int]:
        writes = GroupCommit(db)
        first = asyncio.ensure_future(writes.write(_add("org_first")))  # type: ignore[arg-type]
        ticks = 0
        holder.start()
        while not first.done():  # the loop runs while the write waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
            if ticks == 5:
                later = [asyncio.ensure_future(writes.write(_add(f"org_{n}"))) for n in range(3)]  # type: ignore[arg-type]
        return [await first, *[await w for w in later]], ticks

    outcomes, ticks = asyncio.run(scenario())
    holder.join()
    assert outcomes == ["org_first", "org_0", "org_1", "org_2"]
    assert ticks >= 20  # about 0.3 s of 10 ms ticks
    assert len(commits) == 1  # the writes queued while waiting shared the transaction
    assert db.lock_writes(blocking=False)  # and the lock was given back
    db.unlock_writes()


def test_a_loop_stopped_while_waiting_for_the_lock_gives_it_back(sqlite_db: Database) -> None:
    db = sqlite_db
    assert db.lock_writes()
    holder = threading.Timer(0.3, db.unlock_writes)

    async def scenario() -> None:
        writes = GroupCommit(db)
        pending = asyncio.ensure_future(writes.write(_add("org_never")))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert not pending.done()  # the write is waiting for the lock in a thread
        holder.start()
        # returning ends asyncio.run, which cancels the waiting write

    asyncio.run(scenario())
    holder.join()
    deadline = time.monotonic() + 5
    while not db.lock_writes(blocking=False):  # the waiting thread took it, then gave it back
        assert time.monotonic() < deadline, "the write lock was never given back"
        time.sleep(0.01)
    db.unlock_writes()
    assert _names(db) == set()


def _rename(org_id: str, name: str) -> object:
    def write(conn: Connection) -> str:
        conn.execute(update(ORGS).where(ORGS.c.id == org_id).values(name=name))
        return name

    return write


def test_a_write_that_deadlocks_with_another_node_is_run_again(pg: Database) -> None:
    """PostgreSQL gives up a batch's write that deadlocked with another node's
    transaction (here: a connection of the test's): the write is run again, alone,
    once that transaction is done, and its caller never sees the conflict."""
    db = pg
    asyncio.run(_together(GroupCommit(db), _add("org_1"), _add("org_2")))
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other = psycopg.connect(url)
    # The other node waits longer before it looks for deadlocks: the batch's
    # connection finds this one and gives up its write.
    other.execute("SET deadlock_timeout = '20s'")
    other.execute("UPDATE organizations SET name = 'other' WHERE id = 'org_2'")

    def other_node() -> None:
        with psycopg.connect(url, autocommit=True) as watcher:
            deadline = time.monotonic() + 10
            while not watcher.execute(
                "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE NOT l.granted AND a.datname = current_database()"
            ).fetchone():  # the batch's second write waits for org_2
                assert time.monotonic() < deadline, "the batch never waited for the row"
                time.sleep(0.01)
        other.execute("UPDATE organizations SET name = 'other' WHERE id = 'org_1'")
        other.commit()

    waiter = threading.Thread(target=other_node)
    waiter.start()
    try:
        outcomes = asyncio.run(
            _together(GroupCommit(db), _rename("org_1", "batch"), _rename("org_2", "batch"))
        )
    finally:
        waiter.join()
        other.close()
    assert outcomes == ["batch", "batch"]
    with db.engine.connect() as conn:
        names = {row.id: row.name for row in conn.execute(select(ORGS.c.id, ORGS.c.name))}
    # org_1: the batch's write, then the other node's; org_2: the other node's, then
    # the batch's write run again.
    assert names == {"org_1": "other", "org_2": "batch"}
