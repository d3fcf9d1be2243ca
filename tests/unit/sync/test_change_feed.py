"""The change feed on real databases: every change read exactly once, whatever
order the transactions that wrote them commit in."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cardvault.store import Database, create_database
from cardvault.store.changes import publish_change
from cardvault.store.migrate import upgrade
from cardvault.store.models import Change
from cardvault.store.types import utcnow
from cardvault.sync.changes import RETAIN_CHANGES, ChangeEvent, ChangeFeed
from tests.conftest import BACKENDS, Databases


@pytest.fixture
def pg(databases: Databases) -> Iterator[Database]:
    url = databases.url("postgresql")
    upgrade(url)
    db = create_database(url, pool_size=30)  # a test below holds 24 transactions open
    yield db
    db.dispose()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


class Reader:
    """A worker's feed and what its handler was given."""

    def __init__(self, db: Database) -> None:
        self.feed = ChangeFeed(db, poll_interval=60)
        self.seen: list[str] = []
        self.feed.subscribe(self._apply)

    def _apply(self, events: Sequence[ChangeEvent]) -> None:
        self.seen.extend(event.subject for event in events)

    def read(self, count: int, timeout: float = 10.0) -> list[str]:
        """Poll until ``count`` changes were read in all. On PostgreSQL a change waits
        for every older transaction of the server to end, other tests' included."""
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            if not self.feed.poll_once():
                time.sleep(0.01)
        return self.seen

    def read_until(self, subject: str, timeout: float = 10.0) -> list[str]:
        """Poll until ``subject`` was read (or the deadline passed)."""
        deadline = time.monotonic() + timeout
        while subject not in self.seen and time.monotonic() < deadline:
            if not self.feed.poll_once():
                time.sleep(0.01)
        return self.seen


class Open:
    """A transaction that has written its change and not committed yet."""

    def __init__(self, db: Database, subject: str) -> None:
        self._context: AbstractContextManager[Session] = db.transaction()
        session = self._context.__enter__()
        publish_change(session, "token", subject)
        session.flush()  # the row (and its id) is written now, not at commit

    def commit(self) -> None:
        self._context.__exit__(None, None, None)

    def roll_back(self) -> None:
        self._context.__exit__(RuntimeError, RuntimeError("abandoned"), None)


def _publish(db: Database, subject: str) -> None:
    with db.transaction() as session:
        publish_change(session, "token", subject)


def test_a_change_that_commits_after_a_newer_one_is_not_skipped(pg: Database) -> None:
    reader = Reader(pg)
    reader.feed.prime()
    early = Open(pg, "early")  # takes the lower id
    _publish(pg, "late")  # a higher id, committed first
    reader.feed.poll_once()
    early.commit()
    assert sorted(reader.read(2)) == ["early", "late"]
    assert reader.feed.poll_once() == 0


def test_nothing_is_read_past_a_running_transaction_until_it_ends(pg: Database) -> None:
    reader = Reader(pg)
    reader.feed.prime()
    running = Open(pg, "running")
    _publish(pg, "committed")
    assert reader.feed.poll_once() == 0  # a later commit waits for the older one
    running.roll_back()
    assert reader.read(1) == ["committed"]


def test_prime_starts_before_changes_still_being_written(pg: Database) -> None:
    _publish(pg, "before")
    running = Open(pg, "running")
    reader = Reader(pg)
    reader.feed.prime()  # a worker starting now loads current state, then follows
    running.commit()
    # "before" too, when other tests' transactions on the shared server kept it unsettled
    seen = reader.read_until("running")
    assert seen[-1] == "running" and set(seen) <= {"before", "running"}


def test_hundreds_of_changes_committed_in_random_order_are_each_read_once(pg: Database) -> None:
    readers = [Reader(pg) for _ in range(3)]
    for reader in readers:
        reader.feed.prime()
    shuffle = random.Random(7)
    subjects = [f"change-{n}" for n in range(200)]
    pending = [Open(pg, subject) for subject in subjects[:24]]  # 24 connections at once
    following = iter(subjects[24:])
    while pending:
        pending.pop(shuffle.randrange(len(pending))).commit()
        reader = shuffle.choice(readers)
        reader.feed.poll_once()  # readers poll between every commit
        subject = next(following, None)
        if subject is not None:
            pending.append(Open(pg, subject))
    for reader in readers:
        assert sorted(reader.read(len(subjects))) == sorted(subjects)  # all, each once


def test_changes_are_read_in_commit_order_on_either_database(db: Database) -> None:
    reader = Reader(db)
    reader.feed.prime()
    for n in range(5):
        _publish(db, f"c{n}")
        if n % 2:
            reader.feed.poll_once()
    assert reader.read(5) == [f"c{n}" for n in range(5)]
    assert reader.feed.poll_once() == 0


def test_pruning_keeps_the_newest_change_so_ids_never_start_over(db: Database) -> None:
    reader = Reader(db)
    for n in range(3):
        _publish(db, f"old{n}")
    reader.feed.prime()
    with db.transaction() as session:  # every change is past its retention
        session.execute(update(Change).values(created_at=utcnow() - 2 * RETAIN_CHANGES))
    reader.feed.prune(utcnow())
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Change)) == 1
    _publish(db, "new")
    # ``prime`` starts at the newest *settled* change: while other tests hold
    # transactions open on the shared server, the old ones may come first.
    seen = reader.read_until("new")
    assert seen[-1] == "new" and set(seen) <= {"old0", "old1", "old2", "new"}


def test_changes_written_before_the_txid_column_keep_their_order(db: Database) -> None:
    """Rows of an installation upgraded to revision 0010 have txid 0 on PostgreSQL."""
    for n in range(3):
        _publish(db, f"c{n}")
    if db.dialect == "postgresql":
        with db.transaction() as session:
            session.execute(update(Change).where(Change.subject != "c2").values(txid=0))
    reader = Reader(db)
    assert reader.read(3) == ["c0", "c1", "c2"]
    assert reader.feed.poll_once() == 0
