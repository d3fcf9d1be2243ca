"""A person's browser session, driven over plain HTTP."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx

from tests.servers import Server

OPEN: list[httpx.Client] = []  # closed after each test by the package's conftest
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


class Browser:
    """Cookies kept like a browser's; ``post`` sends the page's CSRF token."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=15)
        OPEN.append(self.http)
        self.csrf = ""

    def sign_in(self, email: str, password: str) -> httpx.Response:
        page = self.http.get("/dashboard/sign-in")
        return self.http.post(
            "/dashboard/sign-in",
            data={"csrf_token": csrf_of(page.text), "email": email, "password": password},
        )

    def open(self, path: str) -> httpx.Response:
        response = self.http.get(path)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any], **headers: str) -> httpx.Response:
        return self.http.post(path, data={"csrf_token": self.csrf, **data}, headers=headers)

    def close(self) -> None:
        self.http.close()


def admin(server: Server) -> Browser:
    browser = Browser(server)
    response = browser.sign_in(server.init["admin"]["email"], server.init["admin"]["password"])
    assert response.status_code == 303, response.text
    browser.open("/dashboard/settings")
    return browser


def invite_with_password(admin_browser: Browser, access: str) -> tuple[str, str]:
    """Invite a new person with a generated password; returns (email, password)."""
    email = f"p{secrets.token_hex(4)}@example.com"
    admin_browser.open("/dashboard/settings")
    page = admin_browser.post(
        "/dashboard/invitations", {"email": email, "access": access, "method": "password"}
    )
    assert page.status_code == 200, page.text
    found = re.search(
        r'id="shown-value" class="mono" readonly value="([^"]+)" aria-label="Generated password"',
        page.text,
    )
    assert found and found.group(1)
    return email, found.group(1)


def member_id(page_html: str, name: str) -> str:
    found = re.search(
        rf'data-member="{re.escape(name)}".*?/dashboard/members/(mem_[a-z2-7]+)/', page_html, re.S
    )
    assert found, f"no actions for member {name}"
    return found.group(1)
