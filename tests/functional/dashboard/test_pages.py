"""Dashboard pages over HTTP: CSRF, read-only access, assets, credentials and revocation."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import httpx

from tests.functional.dashboard.helpers import Browser, admin, invite_with_password, member_id
from tests.servers import Server

PAGES = (
    "/dashboard/settings",
    "/dashboard/vaults",
    "/dashboard/audit",
    "/dashboard/device",
    "/dashboard/service-accounts/new",
)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value:
                self.urls.append(value)


def _vault_names(browser: Browser) -> list[str]:
    return re.findall(
        r'<tr data-vault="[^"]+">\s*<td>([^<]+)</td>', browser.open("/dashboard/vaults").text
    )


def test_no_page_references_another_host(server: Server) -> None:
    browser = admin(server)
    pages = [browser.open(path) for path in PAGES]
    pages.append(httpx.get(f"{server.url}/dashboard/sign-in"))
    for page in pages:
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        parser = _References()
        parser.feed(page.text)
        assert parser.urls
        for url in parser.urls:
            assert url.startswith(("/", "#")) and not url.startswith("//"), url
    css = httpx.get(f"{server.url}/dashboard/static/dashboard.css")
    assert css.status_code == 200 and "prefers-color-scheme: dark" in css.text
    assert "http" not in css.text and "@import" not in css.text


def test_posts_without_the_csrf_token_change_nothing(server: Server) -> None:
    browser = admin(server)
    before = _vault_names(browser)
    no_token = browser.http.post("/dashboard/vaults", data={"name": "sneaky"})
    wrong = browser.http.post("/dashboard/vaults", data={"name": "sneaky", "csrf_token": "x" * 43})
    for response in (no_token, wrong):
        assert response.status_code == 403
        assert "CSRF check failed" in response.text
    assert _vault_names(browser) == before


def test_posts_from_another_origin_are_refused(server: Server) -> None:
    browser = admin(server)
    response = browser.post(
        "/dashboard/vaults", {"name": "cross-site"}, Origin="https://evil.example"
    )
    assert response.status_code == 403
    assert "another site" in response.text
    assert "cross-site" not in _vault_names(browser)
    same = browser.post("/dashboard/vaults", {"name": "same-site"}, Origin=server.url)
    assert same.status_code == 303
    assert "same-site" in _vault_names(browser)


def test_read_only_people_see_no_change_controls_and_cannot_post(server: Server) -> None:
    email, password = invite_with_password(admin(server), "read")
    reader = Browser(server)
    assert reader.sign_in(email, password).status_code == 303
    settings = reader.open("/dashboard/settings").text
    assert "Organization Settings" in settings and email in settings
    for control in ("Remove", "Rotate secret", "Create service account", "Invite"):
        assert control not in settings
    assert "Create vault" not in reader.open("/dashboard/vaults").text
    refused = reader.post("/dashboard/vaults", {"name": "by-reader"})
    assert refused.status_code == 403 and "read-only" in refused.text
    sa_form = reader.open("/dashboard/service-accounts/new")
    assert sa_form.status_code == 403
    assert "by-reader" not in _vault_names(reader)


def _create_account(browser: Browser, vault_id: str, name: str = "calm") -> tuple[str, str]:
    browser.open("/dashboard/service-accounts/new")
    page = browser.post(
        "/dashboard/service-accounts",
        {"name": name, "scopes": ["cards:write", "network-tokens:write"], "vault": vault_id},
    )
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    client_id = re.search(r'<code id="client-id">([^<]+)</code>', page.text)
    secret = re.search(r'id="client-secret" class="mono" readonly value="([^"]+)"', page.text)
    assert client_id and secret
    return client_id.group(1), secret.group(1)


def _token(server: Server, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        server.token_url,
        data={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
    )


def test_created_credentials_work_until_their_member_is_removed(server: Server) -> None:
    browser = admin(server)
    client_id, secret = _create_account(browser, server.init["vault_id"])
    issued = _token(server, client_id, secret)
    assert issued.status_code == 200
    access_token = issued.json()["access_token"]
    settings = browser.open("/dashboard/settings").text
    assert client_id in settings
    member = member_id(settings, f"{client_id}@cardvault.local")
    confirm = browser.open(f"/dashboard/members/{member}/remove")
    assert "stop working at once" in confirm.text
    assert browser.post(f"/dashboard/members/{member}/remove", {}).status_code == 303
    refused = _token(server, client_id, secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        whoami = httpx.get(
            f"{server.url}/whoami", headers={"Authorization": f"Bearer {access_token}"}
        )
        if whoami.status_code == 401:
            break
        time.sleep(0.05)
    assert whoami.status_code == 401
    audit = browser.open("/dashboard/audit?action=member.remove").text
    assert f"{client_id}@cardvault.local" in audit and server.init["admin"]["email"] in audit


def test_rotate_and_delete_service_account(server: Server) -> None:
    browser = admin(server)
    client_id, old = _create_account(browser, server.init["vault_id"], "rotating")
    browser.open(f"/dashboard/service-accounts/{client_id}/rotate")
    page = browser.post(f"/dashboard/service-accounts/{client_id}/rotate", {"grace_period": "0"})
    new = re.search(r'id="client-secret" class="mono" readonly value="([^"]+)"', page.text)
    assert new and new.group(1) != old
    assert _token(server, client_id, old).status_code == 401
    assert _token(server, client_id, new.group(1)).status_code == 200
    browser.open(f"/dashboard/service-accounts/{client_id}/delete")
    assert browser.post(f"/dashboard/service-accounts/{client_id}/delete", {}).status_code == 303
    assert _token(server, client_id, new.group(1)).status_code == 401
    assert client_id not in browser.open("/dashboard/settings").text


def test_invalid_service_account_form_is_shown_again_with_the_reason(server: Server) -> None:
    browser = admin(server)
    browser.open("/dashboard/service-accounts/new")
    page = browser.post(
        "/dashboard/service-accounts", {"name": "bad name!", "scopes": ["cards:write"], "vault": ""}
    )
    assert page.status_code == 400
    assert "name: must be 1-64 characters" in page.text
    assert 'value="bad name!"' in page.text


def test_vault_counts_and_audit_filters(server: Server) -> None:
    browser = admin(server)
    assert browser.post("/dashboard/vaults", {"name": "counted"}).status_code == 303
    page = browser.open("/dashboard/vaults").text
    row = re.search(r'<tr data-vault="(vlt_[a-z2-7]+)">\s*<td>counted</td>(.*?)</tr>', page, re.S)
    assert row, page
    assert re.search(r'data-count="cards">0<', row.group(2))
    assert re.search(r'data-count="ACTIVE">0<', row.group(2))
    audit = browser.open("/dashboard/audit?action=vault.create&outcome=success").text
    assert row.group(1) in audit
    none = browser.open("/dashboard/audit?action=vault.create&outcome=failure").text
    assert "No events match." in none
    future = browser.open("/dashboard/audit?since=2999-01-01T00:00").text
    assert "No events match." in future


def test_nobody_removes_or_demotes_themselves(server: Server) -> None:
    creds = server.init["cli_credentials"]
    token = httpx.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
    ).json()["access_token"]
    listed = httpx.get(
        f"{server.url}/organizations/{server.init['organization_id']}/members",
        headers={"Authorization": f"Bearer {token}"},
    ).json()["data"]
    own = next(m["id"] for m in listed if m["name"] == server.init["admin"]["email"])
    browser = admin(server)
    row = re.search(
        r'data-member="admin@cardvault.local">(.*?)</tr>',
        browser.open("/dashboard/settings").text,
        re.S,
    )
    assert row and "Remove" not in row.group(1)
    for path, data in (
        (f"/dashboard/members/{own}/remove", {}),
        (f"/dashboard/members/{own}/access", {"access": "read"}),
    ):
        refused = browser.post(path, data)
        assert refused.status_code == 400 and "your own membership" in refused.text
    assert browser.open("/dashboard/settings").status_code == 200  # still signed in, still write
    assert "Create service account" in browser.open("/dashboard/settings").text
