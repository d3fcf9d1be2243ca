"""Browser sessions and invitations on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from cardvault.accounts import people
from cardvault.accounts.bootstrap import initialize
from cardvault.accounts.errors import ValidationFailed
from cardvault.accounts.grants import OPERATOR
from cardvault.crypto import SecretHasher
from cardvault.dashboard.sessions import end_session, resume_session, start_session
from cardvault.store import Database, create_database, upgrade
from cardvault.store.models import DashboardSession, Invitation
from cardvault.store.types import utcnow
from tests.conftest import BACKENDS, Databases

HASHER = SecretHasher(secrets.token_bytes(32))
IDLE = dt.timedelta(minutes=30)
LIFETIME = dt.timedelta(hours=12)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


def _admin(db: Database) -> tuple[people.Identity, str]:
    with db.transaction() as session:
        result = initialize(session, HASHER)
    assert result.admin_password
    with db.sessions() as session:
        who = people.authenticate(session, result.admin_email, result.admin_password)
    assert who is not None and who.can_write
    return who, result.admin_password


def _start(db: Database, who: people.Identity, now: dt.datetime) -> str:
    with db.transaction() as session:
        return start_session(session, HASHER, who, source_ip="10.0.0.1", now=now, lifetime=LIFETIME)


def _resume(db: Database, cookie: str, now: dt.datetime) -> object:
    with db.transaction() as session:
        return resume_session(session, HASHER, cookie, now=now, idle=IDLE)


def test_only_a_keyed_hash_of_the_cookie_is_stored(db: Database) -> None:
    who, _password = _admin(db)
    cookie = _start(db, who, utcnow())
    with db.sessions() as session:
        stored = session.scalars(select(DashboardSession.id_hash)).all()
    assert stored == [HASHER.hash(cookie)]
    assert cookie.encode() not in stored[0]


def test_idle_and_absolute_expiry_end_the_session(db: Database) -> None:
    who, _password = _admin(db)
    start = utcnow()
    cookie = _start(db, who, start)
    assert _resume(db, cookie, start + dt.timedelta(minutes=20)) is not None
    # Still alive 20 minutes after the last use, though 40 minutes after sign-in.
    assert _resume(db, cookie, start + dt.timedelta(minutes=40)) is not None
    assert _resume(db, cookie, start + dt.timedelta(minutes=80)) is None  # idle too long
    assert _resume(db, cookie, start + dt.timedelta(minutes=81)) is None  # and it is gone
    late = _start(db, who, start)
    for minutes in range(25, 12 * 60, 25):
        assert _resume(db, late, start + dt.timedelta(minutes=minutes)) is not None
    assert _resume(db, late, start + LIFETIME) is None  # absolute lifetime over


def test_ended_session_cannot_be_resumed(db: Database) -> None:
    who, _password = _admin(db)
    cookie = _start(db, who, utcnow())
    with db.transaction() as session:
        end_session(session, HASHER, cookie)
    assert _resume(db, cookie, utcnow()) is None


def test_wrong_password_and_unknown_email_are_refused(db: Database) -> None:
    who, password = _admin(db)
    with db.sessions() as session:
        assert people.authenticate(session, who.email, password + "x") is None
        assert people.authenticate(session, "nobody@example.com", password) is None
        assert people.authenticate(session, who.email.upper(), password) is not None


def test_invitation_link_is_single_use_and_expires(db: Database) -> None:
    who, _password = _admin(db)
    now = utcnow()
    with db.transaction() as session:
        invited = people.invite(
            session,
            HASHER,
            grantor=OPERATOR,
            actor=None,
            org_id=who.org_id,
            email="New@Example.com",
            access="read",
            with_password=False,
            invited_by=who.email,
            now=now,
        )
        stored = session.scalars(select(Invitation.token_hash)).all()
    assert invited.link_token and invited.email == "new@example.com"
    assert stored == [HASHER.hash(invited.link_token)]
    with db.transaction() as session, pytest.raises(people.InvitationInvalid):
        people.pending_invitation(
            session, HASHER, invited.link_token, now + people.INVITATION_LIFETIME
        )
    with db.transaction() as session, pytest.raises(ValidationFailed):
        people.accept_invitation(session, HASHER, invited.link_token, "short", now)
    with db.transaction() as session:
        people.accept_invitation(session, HASHER, invited.link_token, "a long new password", now)
    with db.transaction() as session, pytest.raises(people.InvitationInvalid):
        people.accept_invitation(session, HASHER, invited.link_token, "another password!", now)
    with db.sessions() as session:
        reader = people.authenticate(session, "new@example.com", "a long new password")
    assert reader is not None and reader.access == "read" and not reader.can_write
