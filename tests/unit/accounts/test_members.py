"""Membership changes on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from cardvault.accounts import members, people, services
from cardvault.accounts.errors import InsufficientScope, LastAdmin
from cardvault.accounts.grants import OPERATOR
from cardvault.accounts.scopes import Holding
from cardvault.crypto import SecretHasher
from cardvault.store import Database, create_database, upgrade
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
                now=utcnow(),
            )
            emails.append(invited.email)
    return org_id, emails


def test_the_last_person_with_write_access_is_neither_removed_nor_lowered(db: Database) -> None:
    org_id, (admin, reader) = _org_with_people(db, "write", "read")
    for change in (
        lambda s: members.remove_member(s, org_id, admin, DOMAIN, utcnow(), grantor=OPERATOR),
        lambda s: members.set_member_access(s, org_id, admin, "read", DOMAIN, grantor=OPERATOR),
    ):
        with pytest.raises(LastAdmin) as refused, db.transaction() as session:
            change(session)
        assert (refused.value.status, refused.value.code) == (409, "last-admin")
    with db.transaction() as session:
        members.remove_member(session, org_id, reader, DOMAIN, utcnow(), grantor=OPERATOR)
        members.set_member_access(session, org_id, admin, "write", DOMAIN, grantor=OPERATOR)


def test_with_two_writers_one_may_go(db: Database) -> None:
    org_id, (first, second) = _org_with_people(db, "write", "write")
    with db.transaction() as session:
        members.set_member_access(session, org_id, first, "read", DOMAIN, grantor=OPERATOR)
    with pytest.raises(LastAdmin), db.transaction() as session:
        members.remove_member(session, org_id, second, DOMAIN, utcnow(), grantor=OPERATOR)


def test_giving_write_is_granting_what_the_member_holds(db: Database) -> None:
    org_id, (reader,) = _org_with_people(db, "read")
    with db.transaction() as session:
        vault = services.create_vault(session, org_id, "main").id
        account, _secret = services.create_service_account(
            session,
            HASHER,
            grantor=OPERATOR,
            org_id=org_id,
            name="strong",
            scopes=["cards:write"],
            vault_ids=[vault],
            lifespan=300,
        )
        members.set_member_access(
            session, org_id, f"{account.client_id}@{DOMAIN}", "read", DOMAIN, grantor=OPERATOR
        )
    weaker = Holding.of(["members:write", "cards:read"], [vault])
    for name, scope in ((f"{account.client_id}@{DOMAIN}", "cards:write"), (reader, None)):
        with pytest.raises(InsufficientScope) as refused, db.transaction() as session:
            members.set_member_access(session, org_id, name, "write", DOMAIN, grantor=weaker)
        assert refused.value.source == {"field": "access", "scope": scope or "organization:admin"}
    equal = Holding.of(["members:write", "cards:write"], [vault])
    with db.transaction() as session:
        view = members.set_member_access(
            session, org_id, f"{account.client_id}@{DOMAIN}", "write", DOMAIN, grantor=equal
        )
    assert view.access == "write"
