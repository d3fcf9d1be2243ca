"""/organizations/{org}/members over HTTP."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import select

from cardvault.store.models import AuditEvent
from tests.factories import Factory
from tests.functional.oauth.helpers import access_token, eventually, whoami
from tests.servers import Server


def test_members_list_change_and_remove(server: Server, factory: Factory) -> None:
    admin = factory.client(scopes=["organization:admin"], vaults=0)
    worker = factory.client(org_id=admin.org_id)
    headers = {"Authorization": f"Bearer {access_token(server, admin)}"}
    base = f"{server.url}/organizations/{admin.org_id}/members"
    listed = httpx.get(base, headers=headers).json()["data"]
    name = f"{worker.client_id}@cardvault.local"
    (entry,) = [m for m in listed if m["name"] == name]
    assert entry["kind"] == "service_account" and entry["access"] == "write"
    assert entry["client_id"] == worker.client_id

    token = access_token(server, worker)
    lowered = httpx.patch(f"{base}/{name}", json={"access": "read"}, headers=headers)
    assert lowered.status_code == 200 and lowered.json()["access"] == "read"
    eventually(lambda: whoami(server, token).status_code == 401)
    bad = httpx.patch(f"{base}/{name}", json={"access": "admin"}, headers=headers)
    assert bad.status_code == 422

    raised = httpx.patch(f"{base}/{name}", json={"access": "write"}, headers=headers)
    assert raised.status_code == 200
    token = access_token(server, worker)
    assert httpx.delete(f"{base}/{name}", headers=headers).status_code == 204
    eventually(lambda: whoami(server, token).status_code == 401)
    assert httpx.delete(f"{base}/{name}", headers=headers).status_code == 404
    assert name not in {m["name"] for m in httpx.get(base, headers=headers).json()["data"]}


def test_members_need_members_scopes(server: Server, factory: Factory) -> None:
    holder = factory.client(scopes=["vaults:write"], vaults=0)
    headers = {"Authorization": f"Bearer {access_token(server, holder)}"}
    response = httpx.get(f"{server.url}/organizations/{holder.org_id}/members", headers=headers)
    assert response.status_code == 403


def test_member_and_vault_changes_are_audited(server: Server, factory: Factory) -> None:
    admin = factory.client(scopes=["organization:admin"], vaults=0)
    worker = factory.client(org_id=admin.org_id)
    headers = {"Authorization": f"Bearer {access_token(server, admin)}"}
    base = f"{server.url}/organizations/{admin.org_id}"
    name = f"{worker.client_id}@cardvault.local"
    httpx.patch(f"{base}/members/{name}", json={"access": "read"}, headers=headers)
    httpx.delete(f"{base}/members/{name}", headers=headers)
    vault = httpx.post(f"{base}/vaults", json={"name": "audited"}, headers=headers).json()
    deadline = time.monotonic() + 3
    while True:
        with factory.db.sessions() as session:
            rows = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.actor_id == admin.client_id)
                .order_by(AuditEvent.id)
            ).all()
        done = [(r.action, r.target_id, r.outcome) for r in rows if r.action != "token.issue"]
        if len(done) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert done == [
        ("member.update", name, "success"),
        ("member.remove", name, "success"),
        ("vault.create", vault["id"], "success"),
    ]
    assert all(r.source_ip == "127.0.0.1" for r in rows)
