"""Accounts domain services on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from cardvault.accounts import services
from cardvault.accounts.bootstrap import initialize
from cardvault.accounts.errors import LimitReached, NotFound, ValidationFailed
from cardvault.accounts.grants import OPERATOR
from cardvault.audit import Actor
from cardvault.crypto import SecretHasher
from cardvault.store import Database, create_database, upgrade
from cardvault.store.models import AuditEvent, Change, Member, ServiceAccount
from cardvault.store.types import utcnow
from tests.conftest import BACKENDS, Databases

HASHER = SecretHasher(secrets.token_bytes(32))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


def _account(db: Database, **overrides: object) -> tuple[str, str, str]:
    with db.transaction() as session:
        org = services.create_organization(session, "Acme")
        vault = services.create_vault(session, org.id, "main", actor=None)
        args: dict[str, object] = {
            "grantor": OPERATOR,
            "actor": None,
            "org_id": org.id,
            "name": "calm",
            "scopes": ["cards:write"],
            "vault_ids": [vault.id],
            "lifespan": 300,
        }
        args.update(overrides)
        account, secret = services.create_service_account(session, HASHER, **args)  # type: ignore[arg-type]
        return org.id, account.client_id, secret.reveal()


def test_created_account_loads_with_its_secret_hash(db: Database) -> None:
    org_id, client_id, secret = _account(db)
    with db.sessions() as session:
        record = services.load_client(session, client_id)
        member = session.scalar(select(Member).where(Member.org_id == org_id))
    assert record is not None and record.refusal is None
    assert record.org_id == org_id and record.scopes == ("cards:write",)
    assert HASHER.matches(secret, record.valid_hashes(0))
    assert member is not None and member.access == "write" and member.kind == "service_account"


def test_secret_is_never_stored_in_clear(db: Database) -> None:
    _, client_id, secret = _account(db)
    with db.sessions() as session:
        row = session.scalar(select(ServiceAccount).where(ServiceAccount.client_id == client_id))
    assert row is not None
    assert secret.encode() not in row.secret_hash
    assert row.secret_hash == HASHER.hash(secret)


def test_delete_refuses_and_publishes_a_change(db: Database) -> None:
    org_id, client_id, _ = _account(db)
    with db.transaction() as session:
        before = session.scalar(select(func.count()).select_from(Change))
        services.delete_service_account(session, org_id, client_id, utcnow(), actor=None)
    with db.sessions() as session:
        record = services.load_client(session, client_id)
        after = session.scalar(select(func.count()).select_from(Change))
    assert record is not None and record.refusal == "client deleted"
    assert after == (before or 0) + 1
    with db.transaction() as session, pytest.raises(NotFound):
        services.delete_service_account(session, org_id, client_id, utcnow(), actor=None)


def test_read_access_refuses_the_client(db: Database) -> None:
    org_id, client_id, _ = _account(db)
    with db.transaction() as session:
        services.set_service_account_access(session, org_id, client_id, "read")
    with db.sessions() as session:
        record = services.load_client(session, client_id)
    assert record is not None and record.refusal == "membership has read access only"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "bad name!"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"scopes": ["cards:write", "cards:delete"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"lifespan": 59}, "access_token_lifespan"),
        ({"lifespan": 3601}, "access_token_lifespan"),
        ({"vault_ids": ["vlt_notmine"]}, "vault_ids"),
    ],
)
def test_invalid_accounts_are_refused_and_nothing_is_written(
    db: Database, overrides: dict[str, object], field: str
) -> None:
    with db.sessions() as session:
        before = session.scalar(select(func.count()).select_from(ServiceAccount))
    with pytest.raises(ValidationFailed) as raised:
        _account(db, **overrides)
    assert raised.value.field == field
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ServiceAccount)) == before


def test_client_ids_are_unique_and_unrelated(db: Database) -> None:
    ids = {_account(db)[1] for _ in range(5)}
    assert len(ids) == 5


def test_initialize_runs_once(db: Database) -> None:
    with db.transaction() as session:
        first = initialize(session, HASHER)
    with db.transaction() as session:
        second = initialize(session, HASHER)
    assert first.created and not second.created
    assert second.organization_id == first.organization_id
    assert second.client_secret is None and second.admin_password is None
    with db.sessions() as session:
        record = services.load_client(session, first.client_id)
    assert record is not None and record.scopes == ("organization:admin",)
    assert first.client_secret is not None
    assert HASHER.matches(first.client_secret, record.valid_hashes(0))


def test_create_is_recorded_with_its_actor_and_the_cap_refusal_too(db: Database) -> None:
    with db.transaction() as session:
        org = services.create_organization(session, "Acme")
    actor = Actor("person", "admin@example.com", org.id, "192.0.2.7")
    args = {"grantor": OPERATOR, "actor": actor, "org_id": org.id, "name": "calm"}
    args |= {"scopes": ["vaults:read"], "vault_ids": [], "lifespan": 300, "cap": 1}
    with db.transaction() as session:
        account, _secret = services.create_service_account(session, HASHER, **args)  # type: ignore[arg-type]
    with pytest.raises(LimitReached) as refused, db.transaction() as session:
        services.create_service_account(session, HASHER, **args)  # type: ignore[arg-type]
    with db.sessions() as session:
        rows = session.scalars(select(AuditEvent)).all()
    assert [(r.action, r.outcome, r.target_id, r.details) for r in rows] == [
        (
            "service_account.create",
            "success",
            account.client_id,
            {"scopes": ["vaults:read"], "vault_ids": []},
        )
    ]
    assert (rows[0].actor_id, rows[0].source_ip) == ("admin@example.com", "192.0.2.7")
    refusal = refused.value.refusal
    assert refusal is not None and refusal.target_id is None
    assert (refusal.action, refusal.outcome) == ("service_account.create", "failure")
    assert (
        refusal.reason
        == "limit-reached: the organization already has 1 service accounts (the limit)"
    )
