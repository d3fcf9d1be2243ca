"""The dashboard in headless Chromium: the issue's proof, scenario by scenario."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, screenshot, sign_in, sign_in_admin
from tests.servers import CARDVAULT, Server

pytestmark = pytest.mark.xdist_group("browser")

MAIN_PAGES = {
    "settings": "/dashboard/settings",
    "vaults": "/dashboard/vaults",
    "audit": "/dashboard/audit",
    "new-service-account": "/dashboard/service-accounts/new",
    "device": "/dashboard/device",
}


def _backend(site: Server) -> str:
    return "sqlite" if site.database_url.startswith("sqlite") else "postgresql"


def _token(site: Server, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        site.token_url,
        data={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
    )


def _invite(page: Page, email: str, access: str) -> str:
    """Invite ``email`` with a generated password from Organization Settings; returns it."""
    page.goto("/dashboard/settings")
    page.get_by_label("Email").fill(email)
    page.locator("#invite-access").select_option(access)
    page.get_by_label("Sign-in").select_option("password")
    page.get_by_role("button", name="Invite").click()
    return page.get_by_label("Generated password").input_value()


def test_main_pages_at_desktop_and_phone_width(page: Page, site: Server) -> None:
    backend = _backend(site)
    page.set_viewport_size(DESKTOP)
    page.goto("/dashboard/sign-in")
    screenshot(page, "sign-in-desktop", backend)
    sign_in_admin(page, site)
    for name, path in MAIN_PAGES.items():
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            page.goto(path)
            expect(page.locator("h1")).to_be_visible()
            nav = page.get_by_role("navigation", name="Main")
            expect(nav).to_be_visible()
            expect(nav.get_by_role("link", name="Audit log")).to_be_in_viewport()
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} overflows horizontally by {overflow}px at {width}"
            screenshot(page, f"{name}-{width}", backend)
    page.set_viewport_size(PHONE)
    page.goto("/dashboard/settings")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_create_copy_use_and_revoke_a_service_account(
    page: Page, context: BrowserContext, site: Server
) -> None:
    sign_in_admin(page, site)
    page.get_by_role("link", name="Create service account").click()
    page.get_by_label("Name").fill("checkout")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("It is shown only once")).to_be_visible()
    client_id = page.locator("#client-id").inner_text()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret.startswith("cvs_") and secret == page.locator("#client-secret").input_value()
    issued = _token(site, client_id, secret)
    assert issued.status_code == 200
    assert issued.json()["scope"] == "cards:write network-tokens:write"

    page.goto("/dashboard/settings")
    row = page.locator(f'tr[data-member="{client_id}@cardvault.local"]')
    row.get_by_role("link", name="Remove").click()
    page.get_by_role("button", name="Remove member").click()
    page.wait_for_url("**/dashboard/settings#members")
    expect(page.locator(f'tr[data-member="{client_id}@cardvault.local"]')).to_have_count(0)
    refused = _token(site, client_id, secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_member_made_read_only_loses_the_change_buttons(
    page: Page, context: BrowserContext, site: Server
) -> None:
    sign_in_admin(page, site)
    email = f"ops-{secrets.token_hex(4)}@example.com"  # no digit run a PAN check would catch
    password = _invite(page, email, "write")
    other = context.browser.new_context(base_url=site.url) if context.browser else None
    assert other is not None
    person = other.new_page()
    sign_in(person, email, password)
    expect(person.get_by_role("link", name="Create service account")).to_be_visible()
    expect(person.get_by_role("link", name="Remove").first).to_be_visible()

    page.goto("/dashboard/settings")
    page.locator(f'tr[data-member="{email}"]').get_by_role("link", name="Make read-only").click()
    page.get_by_role("button", name="Change to read").click()
    expect(page.locator(f'tr[data-member="{email}"] .badge')).to_have_text("read")

    person.reload()
    expect(person.get_by_text("Organization Settings").first).to_be_visible()
    expect(person.get_by_role("link", name="Create service account")).to_have_count(0)
    expect(person.get_by_role("link", name="Remove")).to_have_count(0)
    expect(person.get_by_role("link", name="Make read-only")).to_have_count(0)
    person.goto("/dashboard/vaults")
    expect(person.get_by_role("button", name="Create vault")).to_have_count(0)
    other.close()


def test_form_posted_without_csrf_token_is_refused(page: Page, site: Server) -> None:
    sign_in_admin(page, site)
    page.goto("/dashboard/vaults")
    page.get_by_label("Name").fill("no-token")
    page.locator("form[action='/dashboard/vaults'] input[name=csrf_token]").evaluate(
        "field => field.remove()"
    )
    page.get_by_role("button", name="Create vault").click()
    expect(page.get_by_role("heading", name="Request refused")).to_be_visible()
    expect(page.get_by_text("CSRF check failed")).to_be_visible()
    page.goto("/dashboard/vaults")
    expect(page.get_by_text("no-token")).to_have_count(0)


def test_wrong_password_is_throttled(page: Page, site: Server) -> None:
    sign_in_admin(page, site)
    email = f"slow-{secrets.token_hex(4)}@example.com"
    password = _invite(page, email, "read")
    page.context.clear_cookies()
    for _ in range(5):
        sign_in(page, email, "wrong password")
        expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    sign_in(page, email, password)
    expect(page.get_by_text("Too many failed sign-ins")).to_be_visible()
    page.goto("/dashboard/settings")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def _approve_printed_code(page: Page, site: Server, login: subprocess.Popen[str]) -> None:
    """Read the link `cardvault login` prints, sign in there and approve the code."""
    assert login.stderr is not None
    link = ""
    for _ in range(10):
        found = re.search(r"\(or open (\S+)\)", login.stderr.readline())
        if found:
            link = found.group(1)
            break
    assert link.startswith(f"{site.url}/dashboard/device?user_code=")
    page.goto(link)  # not signed in yet: the sign-in page brings the person back
    page.get_by_label("Email").fill(site.init["admin"]["email"])
    page.get_by_label("Password").fill(site.init["admin"]["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#user-code")).to_have_text(link.rsplit("=", 1)[1])
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Approved")).to_be_visible()


def test_device_login_approved_in_the_browser(page: Page, site: Server, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDVAULT_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    with subprocess.Popen(
        [CARDVAULT, "login", "--url", site.url],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as login:
        try:
            _approve_printed_code(page, site, login)
            assert login.wait(timeout=30) == 0
        finally:
            if login.poll() is None:
                login.kill()
    stored = tmp_path / "config" / "cardvault" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    members = subprocess.run(
        [CARDVAULT, "get", "members", "--url", site.url, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert members.returncode == 0, members.stderr
    assert site.init["admin"]["email"] in members.stdout
    out = subprocess.run(
        [CARDVAULT, "logout", "--url", site.url], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0
    after = subprocess.run(
        [CARDVAULT, "get", "members", "--url", site.url], env=env, capture_output=True, text=True
    )
    assert after.returncode == 1 and "cardvault login" in after.stderr
