"""Another vault's and another organization's ids on every route.

The answer to a foreign id is the answer to an id that never existed: 404
``not-found`` (never a 403 that would confirm it exists), with none of its data, and
the foreign resource is left exactly as it was.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.factories import Client, Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token
from tests.servers import Server

CARD_SCOPES = (
    "cards:write",
    "network-tokens:write",
    "webhooks:write",
)


@dataclass
class Tenant:
    """A vault with one of everything, and callers for its vault and its organization."""

    server: Server
    org_id: str
    vault_id: str
    api: dict[str, str]
    admin: dict[str, str]
    client: Client
    card: dict[str, Any]
    token: dict[str, Any]
    endpoint_id: str
    job_id: str
    event_id: str
    member_id: str

    def call(self, method: str, path: str, body: object = None, *, admin: bool = False) -> Any:
        headers = self.admin if admin else self.api
        return httpx.request(
            method, f"{self.server.url}{path}", json=body, headers=headers, timeout=30
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything an attacker could have changed, read by the owner."""
        webhooks = self.call("GET", "/webhooks").json()
        return {
            "card": self.call("GET", f"/cards/{self.card['id']}").json(),
            "token": self.call("GET", f"/network-tokens/{self.card['pan_alias']}").json(),
            "webhooks": webhooks,
            "job": self.call("GET", f"/network-tokens/bulk/{self.job_id}").json()["id"],
            "vaults": self.call("GET", f"/organizations/{self.org_id}/vaults", admin=True).json(),
            "members": self.call("GET", f"/organizations/{self.org_id}/members", admin=True).json(),
            "accounts": self.call(
                "GET", f"/organizations/{self.org_id}/service-accounts", admin=True
            ).json(),
        }


def _bearer(server: Server, client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token(server, client)}"}


def make_tenant(server: Server, factory: Factory, org_id: str | None = None) -> Tenant:
    org_id = org_id or factory.organization("Victim")
    client = factory.client(org_id=org_id, scopes=CARD_SCOPES)
    manager = factory.client(org_id=org_id, scopes=("organization:admin",), vaults=0)
    api, admin = _bearer(server, client), _bearer(server, manager)
    url = server.url

    def call(method: str, path: str, body: object = None, **kw: Any) -> httpx.Response:
        return httpx.request(method, url + path, json=body, headers=api, timeout=30, **kw)

    card = call("POST", "/cards", {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR})
    assert card.status_code == 201, card.text
    token = call("POST", "/network-tokens", {"pan_alias": card.json()["pan_alias"]})
    assert token.status_code == 201, token.text
    job = httpx.post(
        f"{url}/network-tokens/bulk",
        content=f"pan_alias,exp_month,exp_year\n{card.json()['pan_alias']},7,{NEXT_YEAR}\n",
        headers={**api, "Content-Type": "text/csv"},
    )
    assert job.status_code == 202, job.text
    # Subscribed to an event that will not happen: no delivery leaves for the Internet.
    endpoint = call(
        "POST",
        "/webhooks",
        {"url": "https://93.184.215.14/hooks", "events": ["network_token.deleted"]},
    )
    assert endpoint.status_code == 201, endpoint.text
    events = call("GET", "/events").json()["data"]
    members = httpx.get(f"{url}/organizations/{org_id}/members", headers=admin).json()["data"]
    member = next(m for m in members if m["name"].startswith(client.client_id + "@"))
    return Tenant(
        server,
        org_id,
        client.vault_ids[0],
        api,
        admin,
        client,
        card.json(),
        token.json(),
        endpoint.json()["id"],
        job.json()["id"],
        events[0]["id"],
        member["id"],
    )


@pytest.fixture(scope="module")
def tenants(server: Server, factory: Factory) -> tuple[Tenant, Tenant, Tenant]:
    """The attacker, a victim in another vault of the same organization, and a victim
    in another organization."""
    attacker = make_tenant(server, factory)
    same_org = make_tenant(server, factory, attacker.org_id)
    other_org = make_tenant(server, factory)
    return attacker, same_org, other_org


def vault_routes(v: Tenant) -> list[tuple[str, str, object]]:
    alias, card_id = v.card["pan_alias"], v.card["id"]
    hook, job = v.endpoint_id, v.job_id
    return [
        ("GET", f"/cards/{card_id}", None),
        ("GET", f"/cards/{alias}", None),
        ("PATCH", f"/cards/{card_id}", {"holder_info": {"name": "Mallory"}}),
        ("PATCH", f"/cards/{card_id}", {"exp_month": 1, "exp_year": NEXT_YEAR + 1}),
        ("DELETE", f"/cards/{card_id}", None),
        ("GET", f"/network-tokens/{alias}", None),
        ("POST", f"/network-tokens/{alias}/suspend", None),
        ("POST", f"/network-tokens/{alias}/resume", None),
        ("POST", f"/network-tokens/{alias}/cryptogram", {}),
        ("DELETE", f"/network-tokens/{alias}", None),
        ("POST", "/network-tokens", {"pan_alias": alias}),
        ("POST", "/network-tokens", {"card_id": card_id}),
        ("GET", f"/webhooks/{hook}", None),
        ("GET", f"/webhooks/{hook}/deliveries", None),
        ("POST", f"/webhooks/{hook}/rotate-secret", None),
        ("POST", f"/webhooks/{hook}/deliveries/whd_x/retry", None),
        ("DELETE", f"/webhooks/{hook}", None),
        ("GET", f"/network-tokens/bulk/{job}", None),
        ("GET", f"/network-tokens/bulk/{job}/results", None),
        ("POST", f"/network-tokens/bulk/{job}/cancel", None),
    ]


def org_routes(a: Tenant, v: Tenant) -> list[tuple[str, str, object]]:
    """Management routes: the victim's organization in the path, or the attacker's own
    organization in the path with the victim's objects."""
    client, member = v.client.client_id, v.member_id
    return [
        ("GET", f"/organizations/{v.org_id}/vaults", None),
        ("POST", f"/organizations/{v.org_id}/vaults", {"name": "mine now"}),
        ("GET", f"/organizations/{v.org_id}/service-accounts", None),
        (
            "POST",
            f"/organizations/{v.org_id}/service-accounts",
            {"name": "x", "scopes": ["cards:write"], "vault_ids": [v.vault_id]},
        ),
        ("GET", f"/organizations/{v.org_id}/service-accounts/{client}", None),
        ("POST", f"/organizations/{v.org_id}/service-accounts/{client}/rotate-secret", None),
        ("DELETE", f"/organizations/{v.org_id}/service-accounts/{client}", None),
        ("GET", f"/organizations/{v.org_id}/members", None),
        ("PATCH", f"/organizations/{v.org_id}/members/{member}", {"access": "read"}),
        ("DELETE", f"/organizations/{v.org_id}/members/{member}", None),
        ("GET", f"/organizations/{a.org_id}/service-accounts/{client}", None),
        ("POST", f"/organizations/{a.org_id}/service-accounts/{client}/rotate-secret", None),
        ("DELETE", f"/organizations/{a.org_id}/service-accounts/{client}", None),
        ("PATCH", f"/organizations/{a.org_id}/members/{member}", {"access": "read"}),
        ("DELETE", f"/organizations/{a.org_id}/members/{member}", None),
        (
            "POST",
            f"/organizations/{a.org_id}/service-accounts",
            {"name": "x", "scopes": ["cards:write"], "vault_ids": [v.vault_id]},
        ),
    ]


def _ids(v: Tenant) -> tuple[str, ...]:
    return (
        v.card["id"],
        v.card["pan_alias"],
        v.endpoint_id,
        v.job_id,
        v.client.client_id,
        v.member_id,
        v.org_id,
        v.vault_id,
    )


def _never_existed(path: str, v: Tenant) -> str:
    """The same path with every id of the victim replaced by one that never existed."""
    for real in _ids(v):
        prefix = re.match(r"[a-z]+_", real)
        # Letters only: a run of digits could look like a card number (a 422 instead).
        letters = secrets.token_hex(8).translate(str.maketrans("0123456789", "ghijklmnop"))
        made_up = (prefix.group(0) if prefix else "") + letters
        path = path.replace(real, made_up)
    return path


def _swap(body: object, v: Tenant) -> object:
    """The body with the victim's ids replaced by ids that never existed."""
    if body is None:
        return None
    return json.loads(_never_existed(json.dumps(body), v))


def _refused_like_nothing(
    attempt: httpx.Response, baseline: httpx.Response, body: object, v: Tenant
) -> None:
    """404 ``not-found`` for an id in the path; an id in the body may be refused as
    unprocessable (422), exactly as one that never existed."""
    where = f"{attempt.request.method} {attempt.request.url}: {attempt.text}"
    path = attempt.request.url.path
    in_path = any(real in path for real in _ids(v))
    got = (attempt.status_code, attempt.json()["errors"][0]["code"])
    assert got == (baseline.status_code, baseline.json()["errors"][0]["code"]), where
    if in_path or attempt.request.url.path == "/network-tokens":
        assert got == (404, "not-found"), where
    else:
        assert got[0] in (404, 422), where
    sent = str(attempt.request.url) + attempt.request.content.decode()
    for value in (v.card["id"], v.card["pan_alias"], v.card["last4"], v.token["id"], v.vault_id):
        assert value not in attempt.text or value in sent, f"{value} leaked by {where}"


@pytest.mark.parametrize("victim", ["same-org", "other-org"])
def test_foreign_vault_ids_are_not_found_and_nothing_changes(
    tenants: tuple[Tenant, Tenant, Tenant], victim: str
) -> None:
    attacker, same_org, other_org = tenants
    v = same_org if victim == "same-org" else other_org
    before = v.snapshot()
    for method, path, body in vault_routes(v):
        attempt = attacker.call(method, path, body)
        baseline = attacker.call(method, _never_existed(path, v), _swap(body, v))
        _refused_like_nothing(attempt, baseline, body, v)
    assert v.snapshot() == before


def test_foreign_organization_ids_are_not_found_and_nothing_changes(
    tenants: tuple[Tenant, Tenant, Tenant],
) -> None:
    attacker, _same_org, v = tenants
    before = v.snapshot()
    for method, path, body in org_routes(attacker, v):
        attempt = attacker.call(method, path, body, admin=True)
        baseline = attacker.call(method, _never_existed(path, v), _swap(body, v), admin=True)
        _refused_like_nothing(attempt, baseline, body, v)
    assert v.snapshot() == before
    assert (
        httpx.post(
            v.server.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": v.client.client_id,
                "client_secret": v.client.client_secret,
            },
        ).status_code
        == 200
    )


@pytest.mark.parametrize("victim", ["same-org", "other-org"])
def test_listings_show_only_the_callers_vault(
    tenants: tuple[Tenant, Tenant, Tenant], victim: str
) -> None:
    attacker, same_org, other_org = tenants
    v = same_org if victim == "same-org" else other_org
    for path in ("/cards", "/network-tokens", "/webhooks", "/events"):
        listing = attacker.call("GET", path)
        assert listing.status_code == 200, listing.text
        for foreign in (v.card["id"], v.card["pan_alias"], v.endpoint_id, v.event_id):
            assert foreign not in listing.text
    # A foreign event as the cursor is answered as an unknown one.
    attempt = attacker.call("GET", f"/events?after={v.event_id}")
    baseline = attacker.call("GET", "/events?after=evt_neverexisted")
    assert (attempt.status_code, attempt.json()["errors"][0]["code"]) == (
        baseline.status_code,
        baseline.json()["errors"][0]["code"],
    )
