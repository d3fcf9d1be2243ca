"""Group commit on a real database: shared transaction, per-write savepoints."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, event, insert, select
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
    # One of the twins wins (on PostgreSQL they race in two threads), the other fails.
    twins = sorted(outcomes[:2], key=lambda outcome: isinstance(outcome, IntegrityError))
    assert twins[0] == "org_a" and isinstance(twins[1], IntegrityError)
    assert outcomes[2] == "org_b"
    assert _names(db) == {"org_a", "org_b"}


def test_concurrent_writes_share_one_commit_on_sqlite(db: Database) -> None:
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    outcomes = asyncio.run(_together(GroupCommit(db), *(_add(f"org_{n}") for n in range(20))))
    assert outcomes == [f"org_{n}" for n in range(20)]
    assert _names(db) == {f"org_{n}" for n in range(20)}
    # SQLite has one writer: the twenty writes are one transaction. PostgreSQL runs
    # each alone in a thread (its writers do not block each other).
    assert len(commits) == (1 if db.dialect == "sqlite" else 20)


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
