"""Browser sessions of people: random ids, stored only as keyed hashes.

A session ends at its absolute expiry or after an idle timeout, whichever comes
first. Each carries its own CSRF synchronizer token. No HTTP here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cardvault.accounts.people import Identity, identity
from cardvault.crypto import SecretHasher, generate_token
from cardvault.store.models import DashboardSession, Member

TOUCH_EVERY = dt.timedelta(seconds=60)  # write last_seen_at at most this often


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, and the CSRF token its forms must carry."""

    who: Identity
    csrf_token: str


def start_session(
    session: Session,
    hasher: SecretHasher,
    who: Identity,
    *,
    source_ip: str | None,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> str:
    """Create a session; returns the cookie value (shown once, stored hashed)."""
    cookie = generate_token()
    session.add(
        DashboardSession(
            id_hash=hasher.hash(cookie),
            person_id=who.person_id,
            org_id=who.org_id,
            csrf_token=generate_token(),
            source_ip=source_ip,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    _mark_active(session, who.person_id, now)
    return cookie


def resume_session(
    session: Session, hasher: SecretHasher, cookie: str, *, now: dt.datetime, idle: dt.timedelta
) -> SignedIn | None:
    """The live session for ``cookie``; ``None`` (and the row gone) when it has ended."""
    row = session.get(DashboardSession, hasher.hash(cookie))
    if row is None:
        return None
    who = identity(session, row.person_id)
    if who is None or row.expires_at <= now or row.last_seen_at + idle <= now:
        session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        _mark_active(session, row.person_id, now)
    return SignedIn(who, row.csrf_token)


def end_session(session: Session, hasher: SecretHasher, cookie: str) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.id_hash == hasher.hash(cookie)))


def prune_sessions(session: Session, now: dt.datetime) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))


def _mark_active(session: Session, person_id: str, now: dt.datetime) -> None:
    for member in session.query(Member).filter(Member.person_id == person_id):
        member.last_active_at = now
