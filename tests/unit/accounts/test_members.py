"""Membership changes on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.accounts import members, people, services
from cardvault.accounts.auditing import refusal
from cardvault.accounts.errors import InsufficientScope, LastAdmin, NotFound
from cardvault.accounts.grants import OPERATOR
from cardvault.accounts.scopes import Holding
from cardvault.audit import Actor
from cardvault.crypto import SecretHasher, mask_pans
from cardvault.store import Database, create_database, upgrade
from cardvault.store.models import AuditEvent
from cardvault.store.types import utcnow
from tests.conftest import BACKENDS, Databases

HASHER = SecretHasher(secrets.token_bytes(32))
DOMAIN = "cardvault.local"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


def _org_with_people(db: Database, *accesses: str) -> tuple[str, list[str]]:
    with db.transaction() as session:
        org_id = services.create_organization(session, "Acme").id
        emails = []
        for access in accesses:
            invited = people.invite(
                session,
                HASHER,
                org_id=org_id,
                email=f"p{secrets.token_hex(4)}@example.com",
                access=access,
                with_password=False,
                invited_by="test",
                grantor=OPERATOR,
                actor=None,
                now=utcnow(),
            )
            emails.append(invited.email)
    return org_id, emails


def _remove(session: Session, org_id: str, name: str, grantor: Holding = OPERATOR) -> None:
    members.remove_member(session, org_id, name, DOMAIN, utcnow(), grantor=grantor, actor=None)


def _set(
    session: Session, org_id: str, name: str, access: str, grantor: Holding = OPERATOR
) -> members.MemberView:
    return members.set_member_access(
        session, org_id, name, access, DOMAIN, grantor=grantor, actor=None
    )


def test_the_last_person_with_write_access_is_neither_removed_nor_lowered(db: Database) -> None:
    org_id, (admin, reader) = _org_with_people(db, "write", "read")
    for change in (
        lambda s: _remove(s, org_id, admin),
        lambda s: _set(s, org_id, admin, "read"),
    ):
        with pytest.raises(LastAdmin) as refused, db.transaction() as session:
            change(session)
        assert (refused.value.status, refused.value.code) == (409, "last-admin")
    with db.transaction() as session:
        _remove(session, org_id, reader)
        _set(session, org_id, admin, "write")


def test_with_two_writers_one_may_go(db: Database) -> None:
    org_id, (first, second) = _org_with_people(db, "write", "write")
    with db.transaction() as session:
        _set(session, org_id, first, "read")
    with pytest.raises(LastAdmin), db.transaction() as session:
        _remove(session, org_id, second)


def test_giving_write_is_granting_what_the_member_holds(db: Database) -> None:
    org_id, (reader,) = _org_with_people(db, "read")
    with db.transaction() as session:
        vault = services.create_vault(session, org_id, "main", actor=None).id
        account, _secret = services.create_service_account(
            session,
            HASHER,
            grantor=OPERATOR,
            actor=None,
            org_id=org_id,
            name="strong",
            scopes=["cards:write"],
            vault_ids=[vault],
            lifespan=300,
        )
        _set(session, org_id, f"{account.client_id}@{DOMAIN}", "read")
    weaker = Holding.of(["members:write", "cards:read"], [vault])
    for name, scope in ((f"{account.client_id}@{DOMAIN}", "cards:write"), (reader, None)):
        with pytest.raises(InsufficientScope) as refused, db.transaction() as session:
            _set(session, org_id, name, "write", weaker)
        assert refused.value.source == {"field": "access", "scope": scope or "organization:admin"}
    equal = Holding.of(["members:write", "cards:write"], [vault])
    with db.transaction() as session:
        view = _set(session, org_id, f"{account.client_id}@{DOMAIN}", "write", equal)
    assert view.access == "write"


def test_changes_are_recorded_by_the_service_with_their_actor(db: Database) -> None:
    org_id, (admin, reader) = _org_with_people(db, "write", "read")
    actor = Actor("person", admin, org_id, "192.0.2.7")
    with db.transaction() as session:
        members.set_member_access(
            session, org_id, reader, "write", DOMAIN, grantor=OPERATOR, actor=actor
        )
        members.remove_member(
            session, org_id, reader, DOMAIN, utcnow(), grantor=OPERATOR, actor=actor
        )
    with db.sessions() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(r.action, r.outcome, r.target_type, r.target_id, r.details) for r in rows] == [
        ("member.update", "success", "member", reader, {"access": "write"}),
        ("member.remove", "success", "member", reader, None),
    ]
    assert {(r.actor_type, r.actor_id, r.org_id, r.source_ip) for r in rows} == {
        ("person", admin, org_id, "192.0.2.7")
    }


def test_a_refusal_carries_its_record_and_writes_nothing(db: Database) -> None:
    org_id, (admin,) = _org_with_people(db, "write")
    actor = Actor("service_account", "cli", org_id, None)
    typed = "4242424242424242"  # a card number typed where a member was expected
    with pytest.raises(LastAdmin) as refused, db.transaction() as session:
        members.remove_member(
            session, org_id, admin, DOMAIN, utcnow(), grantor=OPERATOR, actor=actor
        )
    record = refused.value.refusal
    assert record is not None
    assert (record.action, record.outcome, record.target_id) == ("member.remove", "failure", admin)
    assert record.reason == f"last-admin: {refused.value}"[:128]
    assert record.details == {"parameter": "member"}
    with pytest.raises(NotFound) as missing, db.transaction() as session:
        members.set_member_access(
            session, org_id, typed, "read", DOMAIN, grantor=OPERATOR, actor=actor
        )
    # What does not exist for the caller is not its to have in its audit log.
    assert missing.value.refusal is None
    shown = refusal(actor, "member.update", missing.value, target_type="member", target_id=typed)
    assert shown.target_id == mask_pans(typed) != typed
    assert typed not in (shown.reason or "")
    with db.sessions() as session:
        assert session.scalars(select(AuditEvent)).all() == []
