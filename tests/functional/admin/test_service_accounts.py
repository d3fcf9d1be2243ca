"""/organizations/{org}/service-accounts over HTTP."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select

from cardvault.store.models import AuditEvent
from tests.conftest import MakeServer
from tests.factories import Client, Factory
from tests.functional.oauth.helpers import access_token
from tests.servers import Server


class Admin:
    """A management client of one organization."""

    def __init__(self, server: Server, client: Client) -> None:
        self.server, self.client = server, client
        self.headers = {"Authorization": f"Bearer {access_token(server, client)}"}
        self.base = f"{server.url}/organizations/{client.org_id}/service-accounts"

    def create(self, **body: object) -> httpx.Response:
        payload = {
            "name": "calm",
            "scopes": ["cards:write"],
            "vault_ids": list(self.client.vault_ids),
            **body,
        }
        return httpx.post(self.base, json=payload, headers=self.headers)

    def get(self, path: str = "", **params: object) -> httpx.Response:
        return httpx.get(self.base + path, params=params, headers=self.headers)


@pytest.fixture
def admin(server: Server, factory: Factory) -> Admin:
    return Admin(server, factory.client(scopes=["organization:admin"], vaults=1))


def test_create_returns_the_secret_once(server: Server, admin: Admin) -> None:
    created = admin.create(access_token_lifespan=600)
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {
        "id",
        "client_id",
        "client_secret",
        "name",
        "member",
        "scopes",
        "vault_ids",
        "access_token_lifespan",
        "created_at",
        "last_used_at",
        "secret_created_at",
        "previous_secret_expires_at",
    }
    assert body["member"] == f"{body['client_id']}@cardvault.local"
    assert (body["scopes"], body["vault_ids"], body["access_token_lifespan"]) == (
        ["cards:write"],
        list(admin.client.vault_ids),
        600,
    )
    fetched = admin.get(f"/{body['client_id']}").json()
    assert "client_secret" not in fetched
    assert fetched == {k: v for k, v in body.items() if k != "client_secret"}


def test_annotation_names_the_vault(admin: Admin) -> None:
    vault = admin.client.vault_ids[0]
    created = admin.create(vault_ids=None, annotations={"vgs.io/vault-id": vault})
    assert created.status_code == 201 and created.json()["vault_ids"] == [vault]
    alias = admin.create(vault_ids=None, annotations={"cardvault.io/vault-id": vault})
    assert alias.status_code == 201 and alias.json()["vault_ids"] == [vault]
    missing = admin.create(vault_ids=None, annotations={})
    assert missing.status_code == 422
    assert missing.json()["errors"][0] == {
        "status": 422,
        "code": "invalid-format",
        "detail": "annotations: missing vault annotation vgs.io/vault-id",
        "source": {"field": "annotations"},
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["cards:fly"]}, "scopes"),
        ({"vault_ids": ["vlt_elsewhere"]}, "vault_ids"),
        ({"name": ""}, "name"),
        ({"name": "a" * 65}, "name"),
        ({"name": "no spaces"}, "name"),
        ({"access_token_lifespan": 59}, "access_token_lifespan"),
        ({"access_token_lifespan": 3601}, "access_token_lifespan"),
    ],
)
def test_invalid_accounts_are_422_naming_the_field(
    admin: Admin, body: dict[str, object], field: str
) -> None:
    response = admin.create(**body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["source"] == {"field": field}
    listed = [a["client_id"] for a in admin.get().json()["data"]]
    assert listed == [admin.client.client_id]  # nothing was created


def test_pages_newest_first_with_an_opaque_cursor(admin: Admin) -> None:
    ids = [admin.create(name=f"a{i}").json()["client_id"] for i in range(5)]
    first = admin.get(limit=2).json()
    second = admin.get(limit=2, cursor=first["next_cursor"]).json()
    third = admin.get(limit=2, cursor=second["next_cursor"]).json()
    seen = [a["client_id"] for page in (first, second, third) for a in page["data"]]
    # The admin's own account is the oldest and comes last.
    assert seen[:5] == list(reversed(ids))
    assert (
        third["next_cursor"] is None
        or admin.get(limit=2, cursor=third["next_cursor"]).json()["data"] == []
    )
    bad = admin.get(cursor="not-a-cursor")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "invalid-cursor"


def test_delete_then_404(admin: Admin) -> None:
    client_id = admin.create().json()["client_id"]
    assert httpx.delete(f"{admin.base}/{client_id}", headers=admin.headers).status_code == 204
    assert admin.get(f"/{client_id}").status_code == 404
    again = httpx.delete(f"{admin.base}/{client_id}", headers=admin.headers)
    assert again.status_code == 404


def test_rotate_secret_validates_grace(admin: Admin) -> None:
    client_id = admin.create().json()["client_id"]
    url = f"{admin.base}/{client_id}/rotate-secret"
    too_long = httpx.post(url, json={"grace_period": 8 * 86400}, headers=admin.headers)
    assert too_long.status_code == 422
    rotated = httpx.post(url, headers=admin.headers)  # default grace: 24 h
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["client_secret"].startswith("cvs_")
    fetched = admin.get(f"/{client_id}").json()
    assert fetched["previous_secret_expires_at"] == body["previous_secret_expires_at"]


@pytest.mark.parametrize(
    ("scopes", "read", "write_held", "write_cards"),
    [
        (["service-accounts:read"], 200, 403, 403),
        # It may grant what it holds, not card scopes it does not hold (the grant rule).
        (["service-accounts:write"], 200, 201, 403),
        (["members:write"], 403, 403, 403),
    ],
)
def test_finer_management_scopes(
    server: Server,
    factory: Factory,
    scopes: list[str],
    read: int,
    write_held: int,
    write_cards: int,
) -> None:
    holder = Admin(server, factory.client(scopes=scopes, vaults=0))
    vault = factory.vault(holder.client.org_id)
    assert holder.get().status_code == read
    assert holder.create(scopes=["service-accounts:read"], vault_ids=[]).status_code == write_held
    assert holder.create(vault_ids=[vault]).status_code == write_cards


def test_other_organizations_accounts_are_404(
    server: Server, factory: Factory, admin: Admin
) -> None:
    client_id = admin.create().json()["client_id"]
    stranger = Admin(server, factory.client(scopes=["organization:admin"], vaults=0))
    assert stranger.get(f"/{client_id}").status_code == 404
    foreign = httpx.get(admin.base, headers=stranger.headers)
    assert foreign.status_code == 404


def test_changes_are_audited(server: Server, factory: Factory, admin: Admin) -> None:
    client_id = admin.create().json()["client_id"]
    httpx.delete(f"{admin.base}/{client_id}", headers=admin.headers)
    admin.create(scopes=["nope"])
    deadline = time.monotonic() + 3
    while True:
        with factory.db.sessions() as session:
            rows = session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.actor_id == admin.client.client_id,
                    AuditEvent.action.like("service_account.%"),
                )
                .order_by(AuditEvent.id)
            ).all()
        if len(rows) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    outcomes = [(r.action, r.outcome, r.target_id) for r in rows]
    assert ("service_account.create", "success", client_id) in outcomes
    assert ("service_account.delete", "success", client_id) in outcomes
    failed = [r for r in rows if r.outcome == "failure"]
    assert failed and failed[0].reason == "invalid-format: scopes: unknown scope 'nope'"
    assert all(r.source_ip == "127.0.0.1" and r.org_id == admin.client.org_id for r in rows)


def test_accounts_per_organization_are_capped(make_server: MakeServer) -> None:
    server = make_server("sqlite", max_service_accounts_per_org=3)
    factory = Factory(server)
    try:
        admin = Admin(server, factory.client(scopes=["organization:admin"], vaults=1))
        assert [admin.create(name=f"a{i}").status_code for i in range(3)] == [201, 201, 409]
        assert admin.create().json()["errors"][0]["code"] == "limit-reached"
    finally:
        factory.close()
