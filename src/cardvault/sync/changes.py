"""The change feed.

A change (``client``, ``token`` or ``keys``) is a row written in the same transaction
as the change itself. Every worker polls the table (``change_poll_interval``, 250 ms by
default) and, where the database has notifications (PostgreSQL's ``NOTIFY``), is woken
at once so that nodes sharing one database converge within milliseconds. No extra
service is needed.

Changes are read in commit order (:mod:`cardvault.store.feeds`), never by "ids above
the highest seen": on PostgreSQL ids are taken at insert and become visible at
commit, so a change that commits after a higher one would be skipped for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from cardvault.observability import labelled, metrics
from cardvault.store.changes import CHANNEL
from cardvault.store.db import Database
from cardvault.store.direct import Direct
from cardvault.store.feeds import START, CommitOrder, Position
from cardvault.store.models import Change
from cardvault.store.probe import ChangeProbe
from cardvault.store.unavailable import log_failure

log = logging.getLogger(__name__)

RETAIN_CHANGES = dt.timedelta(days=1)


@dataclass(frozen=True)
class ChangeEvent:
    id: int
    kind: str
    subject: str


class ChangeFeed:
    """Reads new changes and hands them to a handler, in order, exactly once per worker."""

    def __init__(
        self,
        db: Database,
        *,
        poll_interval: float,
    ) -> None:
        self._db = db
        self._handlers: list[Callable[[Sequence[ChangeEvent]], None]] = []
        self._interval = poll_interval
        self._order = CommitOrder.of(db, Change.__table__.c.txid, Change.__table__.c.id)
        self._position = START
        self._wake = asyncio.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def position(self) -> Position:
        """Where this worker stands in the commit order of changes."""
        return self._position

    def subscribe(self, handler: Callable[[Sequence[ChangeEvent]], None]) -> None:
        """Call ``handler`` with every batch of new changes, in order."""
        self._handlers.append(handler)

    def prime(self) -> None:
        """Start after the newest change: the caller loads current state itself."""
        with self._db.sessions() as session:
            newest = session.execute(self._order.latest()).first()
        self._position = START if newest is None else self._order.position(newest)
        metrics().feed_read.set(time.time())

    def poll_once(self) -> int:
        """Apply every change committed since the last read, in commit order; returns
        how many. A change whose transaction (or an older one) is still running is
        read by a later call, once it has ended."""
        order = self._order
        with self._lock:
            with self._db.sessions() as session:
                rows = session.execute(
                    select(
                        Change.id, Change.kind, Change.subject, Change.created_at, *order.columns()
                    )
                    .where(order.newer(self._position))
                    .order_by(*order.order())
                ).all()
            read = metrics().feed_read
            if not rows:
                read.set(time.time())
                return 0
            events = [ChangeEvent(r.id, r.kind, r.subject) for r in rows]
            for handler in self._handlers:
                handler(events)
            self._position = order.position(rows[-1])
            now = time.time()
            read.set(now)
            _observe_delays(rows, now)
            return len(events)

    def prune(self, now: dt.datetime) -> None:
        """Forget changes older than RETAIN_CHANGES, except the newest: SQLite gives a
        new row the highest id plus one, and an emptied table would start ids over
        below where every worker stands."""
        newest = select(func.max(Change.id)).scalar_subquery()
        with self._db.transaction() as session:
            session.execute(
                delete(Change).where(Change.created_at < now - RETAIN_CHANGES, Change.id < newest)
            )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()

        def wake() -> None:
            loop.call_soon_threadsafe(self._wake.set)

        listener = self._db.listen(CHANNEL, wake)
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
                self._wake.clear()
                try:
                    await asyncio.to_thread(self.poll_once)
                except Exception as error:
                    log_failure(log, "change feed poll failed; retrying", error)
        finally:
            if listener is not None:
                listener.close()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


KINDS = frozenset({"client", "token", "keys", "data-key"})  # what publish_change is given


def _observe_delays(rows: Sequence[Any], now: float) -> None:
    """How long each change took from being written to reaching this worker (by the
    writer's clock: another node's clock skew shows here too)."""
    delay = metrics().feed_delay
    for row in rows:
        kind = row.kind if row.kind in KINDS else "other"
        labelled(delay, kind).observe(max(now - row.created_at.timestamp(), 0.0))


class Freshness:
    """Makes a worker see other connections' commits before it answers.

    Where the database sees every commit (:attr:`ChangeProbe.exact`: SQLite, whose
    ``PRAGMA data_version`` changes whenever any other connection commits, in
    microseconds), :meth:`sync` checks it on every request and reads the feed only
    when something changed: a revocation takes effect at once on every worker of the
    node. Elsewhere the feed is pushed by notifications and polling instead, and
    :meth:`sync` does nothing.
    """

    def __init__(self, db: Database, feed: ChangeFeed) -> None:
        self._db = db
        self._feed = feed
        self._probe = ChangeProbe(db)
        self._order = CommitOrder.of(db, Change.__table__.c.txid, Change.__table__.c.id)
        self._newest = Direct(self._order.latest())
        if self._probe.exact:
            self._probe.changed()  # from now on

    def sync(self) -> None:
        if not self._probe.exact or not self._probe.changed():
            return
        # Most commits are not changes (cards, audit records): look before reading.
        newest = self._newest.first(self._db, {})
        if newest is not None and self._order.position(newest) > self._feed.position:
            self._feed.poll_once()

    def close(self) -> None:
        self._probe.close()
