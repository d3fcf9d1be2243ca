"""Writing events in the caller's transaction and reading them back in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from cardvault.crypto import ordered_id
from cardvault.events.errors import UnknownEvent
from cardvault.events.models import EventName, document
from cardvault.store.direct import Direct
from cardvault.store.event_models import Event
from cardvault.store.models import Base
from cardvault.store.types import utcnow

_STATE_EVENTS: dict[str, EventName] = {
    "ACTIVE": "network_token.activated",
    "SUSPENDED": "network_token.suspended",
    "DELETED": "network_token.deleted",
    "FAILED": "network_token.provisioning_failed",
}
_EVENTS = Base.metadata.tables["events"]
_INSERT = insert(_EVENTS)
_INSERT_DIRECT = Direct(_INSERT)


def event_for_state(state: str) -> EventName | None:
    """The event a token entering ``state`` announces (None for PENDING)."""
    return _STATE_EVENTS.get(state)


def emit(db: Session | Connection, name: EventName, card: Any, token: Any = None) -> str:
    """Write one event about ``card`` (and its ``token``) in the session's transaction,
    so the event commits or rolls back with the change; one INSERT. Returns its id."""
    row = event_row(name, card, token)
    db.execute(_INSERT, [row])
    return str(row["id"])


def store_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write events made by :func:`event_row` in the caller's transaction, in order."""
    _INSERT_DIRECT.execute(conn, rows)


def event_row(name: EventName, card: Any, token: Any) -> dict[str, Any]:
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


def list_events(
    session: Session, vault_id: str, *, after: str | None, limit: int
) -> Sequence[Event]:
    """The vault's events in the order they were written, after the event ``after``."""
    query = select(Event).where(Event.vault_id == vault_id)
    if after:
        seq = session.scalar(select(Event.seq).where(Event.vault_id == vault_id, Event.id == after))
        if seq is None:
            raise UnknownEvent(f"after: no event {after} in this vault")
        query = query.where(Event.seq > seq)
    return session.scalars(query.order_by(Event.seq).limit(limit)).all()
