"""Writing events in the caller's transaction and reading them back in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.orm import Session

from cardvault.crypto import ordered_id
from cardvault.events.errors import UnknownEvent
from cardvault.events.models import CardFacts, EventName, TokenFacts, document
from cardvault.store.direct import Direct
from cardvault.store.event_models import Event
from cardvault.store.feeds import START, CommitOrder, Position
from cardvault.store.models import Base
from cardvault.store.types import utcnow

_STATE_EVENTS: dict[str, EventName] = {
    "ACTIVE": "network_token.activated",
    "SUSPENDED": "network_token.suspended",
    "DELETED": "network_token.deleted",
    "FAILED": "network_token.provisioning_failed",
}
_EVENTS = Base.metadata.tables[Event.__tablename__]
_INSERT = insert(_EVENTS)
_INSERT_DIRECT = Direct(_INSERT)
_ENDPOINTS = Base.metadata.tables["webhook_endpoints"]
_VAULTS = Base.metadata.tables["vaults"]
# The writers of events share this lock on their vaults' rows (a foreign key check
# takes the same); a new webhook endpoint takes the exclusive one (lock_for_endpoint).
_LOCK_VAULTS = Direct(
    select(_VAULTS.c.id)
    .where(_VAULTS.c.id.in_(bindparam("b_vaults", expanding=True)))
    .with_for_update(read=True, key_share=True)
)
_SUBSCRIBED = Direct(
    select(_ENDPOINTS.c.vault_id)
    .where(_ENDPOINTS.c.vault_id.in_(bindparam("b_vaults", expanding=True)))
    .distinct()
)


def event_for_state(state: str) -> EventName | None:
    """The event a token entering ``state`` announces (None for PENDING)."""
    return _STATE_EVENTS.get(state)


def emit(
    db: Session | Connection, name: EventName, card: CardFacts, token: TokenFacts | None = None
) -> str:
    """Write one event about ``card`` (and its ``token``) in the session's transaction,
    so the event commits or rolls back with the change; one INSERT. Returns its id."""
    row = event_row(name, card, token)
    conn = db.connection() if isinstance(db, Session) else db
    conn.execute(_INSERT, _marked(conn, [row]))
    return str(row["id"])


def store_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write events made by :func:`event_row` in the caller's transaction, in order."""
    _INSERT_DIRECT.execute(conn, _marked(conn, rows))


def _marked(conn: Connection, rows: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """The events of a vault without webhook endpoints are stored as already
    dispatched: the fan-out would have nothing to deliver, and would rewrite each row
    to say so.

    An endpoint is either committed before this transaction (and seen here) or after
    it: then it did not exist when these events happened, and gets none of them. The
    vaults' rows are locked first (shared; ``FOR KEY SHARE``), and a new endpoint
    locks its vault's row exclusively (:func:`lock_for_endpoint`) until it commits, so
    no endpoint can commit between this check and this commit, whichever database
    (SQLite serialises writers anyway and takes no row locks)."""
    if not rows:
        return rows
    vaults = list({row["vault_id"] for row in rows})
    params = {"b_vaults": vaults}
    _LOCK_VAULTS.all(conn, params)
    # A statement of its own, after the lock: it sees an endpoint committed meanwhile.
    subscribed = {found.vault_id for found in _SUBSCRIBED.all(conn, params)}
    if len(subscribed) == len(vaults):
        return rows
    return [row if row["vault_id"] in subscribed else {**row, "dispatched": True} for row in rows]


def lock_for_endpoint(conn: Connection, vault_id: str) -> None:
    """Before adding a webhook endpoint to the vault: wait for the vault's events being
    written (see :func:`_marked`), and keep new ones from being written until this
    transaction ends."""
    _LOCK_VAULT.all(conn, {"b_vault": vault_id})


_LOCK_VAULT = Direct(
    select(_VAULTS.c.id).where(_VAULTS.c.id == bindparam("b_vault")).with_for_update()
)


def event_row(name: EventName, card: CardFacts, token: TokenFacts | None) -> dict[str, Any]:
    """The stored form of an event, ready to insert (bulk enrolment makes its rows
    before it takes the write lock and stores them with :func:`store_events`)."""
    event_id = ordered_id("evt_")
    now = utcnow()
    return {
        "id": event_id,
        "event": name,
        "org_id": card.org_id,
        "vault_id": card.vault_id,
        "subject": card.id,
        "occurred_at": now,
        "payload": orjson.dumps(document(event_id, name, now, token, card)).decode(),
        "dispatched": False,
    }


@dataclass(frozen=True)
class EventPage:
    """Stored event documents (JSON text) in the listing's order, and the position
    just after the last of them (where the next page starts)."""

    payloads: list[str]
    after: Position


def list_events(
    session: Session, vault_id: str, *, after: Position | str | None, limit: int
) -> EventPage:
    """The vault's events in commit order (:mod:`cardvault.store.feeds`), after
    ``after``: a position from a previous page, an event id (the events listed after
    that one), or None for the first.

    Events are only ever added at the end of this order, whatever order their
    transactions commit in, so a reader that goes on from each page's ``after`` reads
    every event exactly once; an event whose transaction (or an older one) is still
    running appears once it has ended."""
    order = CommitOrder.of(session, _EVENTS.c.txid, _EVENTS.c.seq)
    start = _start(session, order, vault_id, after)
    rows = session.execute(
        select(_EVENTS.c.payload, *order.columns())
        .where(_EVENTS.c.vault_id == vault_id, order.newer(start))
        .order_by(*order.order())
        .limit(limit)
    ).all()
    return EventPage([row.payload for row in rows], order.position(rows[-1]) if rows else start)


def _start(
    session: Session, order: CommitOrder, vault_id: str, after: Position | str | None
) -> Position:
    if after is None:
        return START
    if isinstance(after, Position):
        return after
    found = session.execute(
        select(*order.columns()).where(_EVENTS.c.vault_id == vault_id, _EVENTS.c.id == after)
    ).first()
    if found is None:
        raise UnknownEvent(f"after: no event {after} in this vault")
    return order.position(found)
