"""Reading an append-only table in commit order: "what is new since X", exactly once.

A reader that remembers the highest id it saw misses rows on PostgreSQL: an id is
taken at insert but the row becomes visible at commit, so a transaction that took
id 10 and commits after the one that took id 11 is never read by a reader that
already moved past 11. Readers here stand at a :class:`Position` in an order in
which rows are only ever added at the end, whatever order their writers commit in:

- PostgreSQL: each row records its writer's transaction id (``txid``, filled by a
  server default). A read takes the horizon ``pg_snapshot_xmin`` of its own snapshot:
  every transaction below it has ended, so all its rows are visible to that very
  statement. A read returns only rows below the horizon, in (``txid``, id) order;
  rows of a transaction still running wait until it ends (and until every older
  transaction of the cluster has ended: a transaction left open anywhere on the
  server holds feeds back while it lasts).
- SQLite: writers are serialised and a row's id is taken under the write lock, so
  commits happen in id order and the id is the position's key.

This module is the only one that knows the difference (from the database's
:attr:`~cardvault.store.backend.Capabilities.commits_in_id_order`); readers get the
order with :meth:`CommitOrder.of`, use :meth:`CommitOrder.newer` and
:meth:`CommitOrder.order`, and are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    literal,
    literal_column,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import KeyedColumnElement

from cardvault.store.db import Database, capabilities_of

# The writer's transaction id (PostgreSQL 13+): the ``txid`` column's server default.
TXID_DEFAULT = "pg_current_xact_id()::text::bigint"
# Every transaction below this id has ended, as seen by the statement's own snapshot
# (a scalar subquery: computed once per statement, in the same snapshot as the read).
_HORIZON: Select[tuple[int]] = select(
    literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
)


@dataclass(frozen=True, order=True)
class Position:
    """Just after the row with this ordering key (``txid``, or the id on SQLite) and
    this id. :data:`START` is before every row."""

    key: int
    seq: int


START = Position(0, 0)


class CommitOrder:
    """The commit order of one table, from its ``txid`` column and its id column."""

    def __init__(
        self, txid: KeyedColumnElement[Any], seq: KeyedColumnElement[Any], *, by_id: bool
    ) -> None:
        self._pg = not by_id
        self.seq = seq
        self.key = seq if by_id else txid

    @classmethod
    def of(
        cls,
        bind: Database | Engine | Connection | Session,
        txid: KeyedColumnElement[Any],
        seq: KeyedColumnElement[Any],
    ) -> CommitOrder:
        """The commit order of the table on ``bind``'s database."""
        return cls(txid, seq, by_id=capabilities_of(bind).commits_in_id_order)

    def settled(self) -> ColumnElement[bool]:
        """Rows whose writer and every older writer have ended (every row on SQLite)."""
        return self.key < _HORIZON.scalar_subquery() if self._pg else true()

    def newer(self, after: Position) -> ColumnElement[bool]:
        """Settled rows after ``after``."""
        if not self._pg:
            return self.seq > after.seq
        later = tuple_(self.key, self.seq) > tuple_(literal(after.key), literal(after.seq))
        return later & self.settled()

    def order(self) -> tuple[KeyedColumnElement[Any], ...]:
        """ORDER BY clauses: the order in which rows are read."""
        return (self.key, self.seq) if self._pg else (self.seq,)

    def columns(self) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """Columns to select with a row to know its position (:meth:`position`)."""
        return self.key.label("feed_key"), self.seq.label("feed_seq")

    @staticmethod
    def position(row: Any) -> Position:
        """The position just after ``row`` (selected with :meth:`columns`)."""
        return Position(int(row.feed_key), int(row.feed_seq))

    def latest(self) -> Select[Any]:
        """The position of the newest settled row (no row: the table holds none)."""
        newest = tuple(column.desc() for column in self.order())
        return select(*self.columns()).where(self.settled()).order_by(*newest).limit(1)
