"""The device authorization grant (RFC 8628) and the person's token on the admin API."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.functional.dashboard.helpers import Browser, admin, invite_with_password
from tests.servers import Server

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _start(server: Server) -> dict[str, Any]:
    response = httpx.post(
        f"{server.issuer}/protocol/openid-connect/auth/device", data={"client_id": "cardvault-cli"}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def _poll(server: Server, device_code: str) -> httpx.Response:
    return httpx.post(
        server.token_url,
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": "cardvault-cli"},
    )


def _decide(browser: Browser, user_code: str, decision: str) -> httpx.Response:
    page = browser.open(f"/dashboard/device?user_code={user_code}")
    assert user_code in page.text
    return browser.post("/dashboard/device", {"user_code": user_code, "decision": decision})


def test_device_authorization_response(server: Server) -> None:
    body = _start(server)
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", body["user_code"])
    assert body["verification_uri"] == f"{server.url}/dashboard/device"
    assert body["verification_uri_complete"].endswith(f"?user_code={body['user_code']}")
    assert body["expires_in"] == 600 and body["interval"] == 5


def test_unknown_client_may_not_use_the_grant(server: Server) -> None:
    response = httpx.post(
        f"{server.issuer}/protocol/openid-connect/auth/device", data={"client_id": "someone"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_pending_then_slow_down_then_approved_once(server: Server) -> None:
    body = _start(server)
    first = _poll(server, body["device_code"])
    assert first.status_code == 400 and first.json()["error"] == "authorization_pending"
    second = _poll(server, body["device_code"])  # at once, well inside the 5 s interval
    assert second.json()["error"] == "slow_down"
    browser = admin(server)
    done = _decide(browser, body["user_code"], "approve")
    assert done.status_code == 200 and "Approved" in done.text
    time.sleep(1)
    issued = _poll(server, body["device_code"])
    assert issued.status_code == 200, issued.text
    token = issued.json()
    assert token["token_type"] == "bearer" and token["scope"] == "organization:admin"
    again = _poll(server, body["device_code"])
    assert again.json()["error"] == "invalid_grant"  # a device code is good for one token
    org = server.init["organization_id"]
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    members = httpx.get(f"{server.url}/organizations/{org}/members", headers=headers)
    assert members.status_code == 200
    created = httpx.post(
        f"{server.url}/organizations/{org}/vaults", json={"name": "by-person"}, headers=headers
    )
    assert created.status_code == 201
    audit = browser.open("/dashboard/audit?action=vault.create").text
    assert created.json()["id"] in audit and "person" in audit


def test_denied_request_gets_access_denied(server: Server) -> None:
    body = _start(server)
    page = _decide(admin(server), body["user_code"], "deny")
    assert "Denied" in page.text
    assert _poll(server, body["device_code"]).json()["error"] == "access_denied"


def test_read_only_person_token_reads_but_cannot_change(server: Server) -> None:
    email, password = invite_with_password(admin(server), "read")
    reader = Browser(server)
    assert reader.sign_in(email, password).status_code == 303
    body = _start(server)
    _decide(reader, body["user_code"], "approve")
    time.sleep(1)
    token = _poll(server, body["device_code"]).json()
    assert "organization:admin" not in token["scope"]
    org = server.init["organization_id"]
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{server.url}/organizations/{org}/vaults", headers=headers).status_code == 200
    refused = httpx.post(
        f"{server.url}/organizations/{org}/vaults", json={"name": "nope"}, headers=headers
    )
    assert refused.status_code == 403


def test_removed_person_token_stops_working(server: Server) -> None:
    boss = admin(server)
    email, password = invite_with_password(boss, "write")
    person = Browser(server)
    assert person.sign_in(email, password).status_code == 303
    body = _start(server)
    _decide(person, body["user_code"], "approve")
    time.sleep(1)
    token = _poll(server, body["device_code"]).json()["access_token"]
    org = server.init["organization_id"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/organizations/{org}/vaults", headers=headers).status_code == 200
    settings = boss.open("/dashboard/settings").text
    member = re.search(
        rf'data-member="{re.escape(email)}".*?/dashboard/members/(mem_\w+)/', settings, re.S
    )
    assert member
    boss.open(f"/dashboard/members/{member.group(1)}/remove")
    assert boss.post(f"/dashboard/members/{member.group(1)}/remove", {}).status_code == 303
    assert httpx.get(f"{server.url}/organizations/{org}/vaults", headers=headers).status_code == 401
    assert person.open("/dashboard/settings").status_code == 303  # signed out too
