"""Deliveries in the database: fan-out of new events, claims, results, history.

Every step is a short transaction, safe on several worker processes and several nodes
sharing one database: rows are claimed with a lease (``locked_until``), with
``FOR UPDATE SKIP LOCKED`` (which SQLite, serialising writers, does without). A claim whose
lease ran out (its worker died) is claimed again. For one endpoint, a card's events
go out in order: a delivery waits while an earlier one of the same card is pending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import GenerativeSelect

from cardvault.crypto import ordered_id
from cardvault.observability import Backlog
from cardvault.store.db import Database
from cardvault.store.event_models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from cardvault.store.types import utcnow

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
D = WebhookDelivery


@dataclass(frozen=True)
class Job:
    """A claimed delivery with what sending it needs."""

    delivery_id: str
    endpoint_id: str
    vault_id: str
    url: str
    event_id: str
    event: str
    payload: str
    secret: bytes
    previous_secret: bytes | None
    previous_expires_at: dt.datetime | None


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_Query = TypeVar("_Query", bound=GenerativeSelect)


def _locked(query: _Query) -> _Query:
    """Rows that other workers have not locked, locked (SQLite serialises writers and
    renders no row lock)."""
    return query.with_for_update(skip_locked=True)


def fan_out(db: Database, horizon: dt.timedelta, limit: int = 200) -> int:
    """Turn new events into one delivery per subscribed endpoint; returns how many
    deliveries were made. Endpoints only get events that happened after they existed."""
    with db.sessions() as session:  # a read first: idle workers take no write lock
        if session.scalar(select(Event.seq).where(Event.dispatched == False).limit(1)) is None:  # noqa: E712
            return 0
    with db.transaction() as session:
        events = session.execute(_locked(_NEW_EVENTS.limit(limit))).all()
        if not events:
            return 0
        endpoints = _endpoints_of(session, {e.vault_id for e in events})
        now = utcnow()
        rows = [
            _delivery_row(event, endpoint, now, horizon)
            for event in events
            for endpoint in endpoints.get(event.vault_id, ())
            if event.event in endpoint.events and endpoint.created_at <= event.occurred_at
        ]
        if rows:
            session.execute(insert(D), rows)
        session.execute(
            update(Event).where(Event.seq.in_([e.seq for e in events])).values(dispatched=True)
        )
        return len(rows)


# Only what fan-out needs: not the payloads, nor ORM objects (a busy bulk job makes
# thousands of events a second).
_NEW_EVENTS = (
    select(Event.seq, Event.vault_id, Event.event, Event.subject, Event.occurred_at)
    .where(Event.dispatched == False)  # noqa: E712
    .order_by(Event.seq)
)


def _endpoints_of(session: Session, vault_ids: set[str]) -> dict[str, list[WebhookEndpoint]]:
    found: dict[str, list[WebhookEndpoint]] = {}
    query = select(WebhookEndpoint).where(WebhookEndpoint.vault_id.in_(vault_ids))
    for endpoint in session.scalars(query):
        found.setdefault(endpoint.vault_id, []).append(endpoint)
    return found


def _delivery_row(
    event: Any, endpoint: WebhookEndpoint, now: dt.datetime, horizon: dt.timedelta
) -> dict[str, Any]:
    return {
        "id": ordered_id("whd_"),
        "endpoint_id": endpoint.id,
        "event_seq": event.seq,
        "subject": event.subject,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "give_up_at": now + horizon,
        "created_at": now,
        "updated_at": now,
    }


def _due(now: dt.datetime) -> Any:  # a Select of (id, endpoint_id)
    """Pending deliveries that are due, unclaimed, and first in line for their card."""
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.endpoint_id == D.endpoint_id,
        earlier.subject == D.subject,
        earlier.state == PENDING,
        earlier.event_seq < D.event_seq,
    )
    return (
        select(D.id, D.endpoint_id)
        .where(
            D.state == PENDING,
            D.next_attempt_at <= now,
            or_(D.locked_until.is_(None), D.locked_until < now),
            ~blocked,
        )
        .order_by(D.next_attempt_at)
    )


def _pick(rows: Sequence[Any], slots: int, allowance: Callable[[str], int]) -> list[str]:
    """At most ``slots`` deliveries, and no more per endpoint than it may still take."""
    taken: dict[str, int] = {}
    chosen: list[str] = []
    for delivery_id, endpoint_id in rows:
        if len(chosen) >= slots:
            break
        if taken.get(endpoint_id, 0) < allowance(endpoint_id):
            taken[endpoint_id] = taken.get(endpoint_id, 0) + 1
            chosen.append(delivery_id)
    return chosen


def claim(
    db: Database, *, slots: int, allowance: Callable[[str], int], lease: dt.timedelta
) -> list[Job]:
    """Claim up to ``slots`` due deliveries for ``lease``; returns what to send."""
    now = utcnow()
    with db.engine.connect() as conn:  # a read first: idle workers take no write lock
        if conn.execute(_due(now).limit(1)).first() is None:
            return []
    with db.transaction() as session:
        rows = session.execute(_locked(_due(now).limit(max(slots * 4, 50)))).all()
        chosen = _pick(rows, slots, allowance)
        if not chosen:
            return []
        session.execute(
            update(D).where(D.id.in_(chosen)).values(locked_until=now + lease, updated_at=now)
        )
        return _jobs(session, chosen)


def _jobs(session: Session, delivery_ids: list[str]) -> list[Job]:
    rows = session.execute(
        select(D.id, WebhookEndpoint, Event.id, Event.event, Event.payload)
        .join(WebhookEndpoint, WebhookEndpoint.id == D.endpoint_id)
        .join(Event, Event.seq == D.event_seq)
        .where(D.id.in_(delivery_ids))
        .order_by(Event.seq)
    ).all()
    return [
        Job(
            delivery_id=delivery_id,
            endpoint_id=endpoint.id,
            vault_id=endpoint.vault_id,
            url=endpoint.url,
            event_id=event_id,
            event=event,
            payload=payload,
            secret=endpoint.secret_encrypted,
            previous_secret=endpoint.previous_secret_encrypted,
            previous_expires_at=endpoint.previous_secret_expires_at,
        )
        for delivery_id, endpoint, event_id, event, payload in rows
    ]


def record(
    db: Database, delivery_id: str, outcome: Outcome, backoff: Callable[[int], float]
) -> str | None:
    """Store an attempt's outcome: acknowledged, retried after ``backoff(attempts)``
    seconds, or given up past its horizon. Returns the new state (None if the
    delivery no longer exists, e.g. its endpoint was deleted meanwhile)."""
    now = utcnow()
    with db.transaction() as session:
        delivery = session.get(D, delivery_id)
        if delivery is None or delivery.state != PENDING:
            return None
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = outcome.status_code, outcome.error
        delivery.locked_until, delivery.updated_at = None, now
        if outcome.ok:
            delivery.state, delivery.delivered_at = SUCCEEDED, now
        else:
            retry_at = now + dt.timedelta(seconds=backoff(delivery.attempts))
            if retry_at > delivery.give_up_at:
                delivery.state = FAILED
            delivery.next_attempt_at = retry_at
        session.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                attempted_at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        return delivery.state


_PENDING = select(func.count(), func.min(D.created_at)).where(D.state == PENDING)
_UNDISPATCHED = select(func.count(), func.min(Event.occurred_at)).where(
    Event.dispatched == False  # noqa: E712
)


def backlog(db: Database) -> dict[str, Backlog]:
    """Events not yet turned into deliveries and deliveries not yet acknowledged nor
    given up, each with its oldest, for the metrics (on their partial and state
    indexes)."""
    with db.engine.connect() as conn:
        events, first_event = conn.execute(_UNDISPATCHED).one()
        pending, first_pending = conn.execute(_PENDING).one()
    return {
        "webhook_events": Backlog(events, first_event),
        "webhook_deliveries": Backlog(pending, first_pending),
    }


def list_deliveries(
    session: Session, endpoint_id: str, *, limit: int
) -> list[tuple[WebhookDelivery, str, str, list[WebhookAttempt]]]:
    """The endpoint's latest deliveries with their event id and name and attempts."""
    rows = session.execute(
        select(D, Event.id, Event.event)
        .join(Event, Event.seq == D.event_seq)
        .where(D.endpoint_id == endpoint_id)
        .order_by(D.event_seq.desc())
        .limit(limit)
    ).all()
    attempts = _attempts_of(session, [row[0].id for row in rows])
    return [(d, event_id, name, attempts.get(d.id, [])) for d, event_id, name in rows]


def _attempts_of(session: Session, ids: list[str]) -> Mapping[str, list[WebhookAttempt]]:
    found: dict[str, list[WebhookAttempt]] = {}
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(ids))
        .order_by(WebhookAttempt.id)
    )
    for attempt in session.scalars(query):
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


def retry(
    session: Session, endpoint_id: str, delivery_id: str, horizon: dt.timedelta
) -> WebhookDelivery | None:
    """Send the delivery again now (whatever its state), with a fresh horizon."""
    delivery = session.scalar(
        select(D).where(and_(D.id == delivery_id, D.endpoint_id == endpoint_id))
    )
    if delivery is None:
        return None
    now = utcnow()
    delivery.state, delivery.next_attempt_at, delivery.locked_until = PENDING, now, None
    delivery.give_up_at, delivery.updated_at = now + horizon, now
    return delivery
