"""The dashboard under attack: CSRF, XSS, open redirects, session cookies, tenancy.

Driven over HTTP against a server of its own, as a browser would be; the HTML is
checked as it arrives.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import Databases
from tests.factories import Factory
from tests.functional.dashboard.helpers import Browser, admin, csrf_of, invite_with_password
from tests.servers import Server, free_port

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '" autofocus onfocus="alert(1)'
SINGLE = "' onmouseover='alert(1)"
PAYLOADS = [SCRIPT, ATTRIBUTE, SINGLE, "</textarea><svg onload=alert(1)>"]
FOREIGN = "https://evil.example"
SNAPSHOT = {
    "vaults": "SELECT id, name FROM vaults",
    "members": "SELECT id, access, person_id, service_account_id FROM members",
    "service_accounts": "SELECT * FROM service_accounts",
    "invitations": "SELECT * FROM invitations",
    "people": "SELECT id, email FROM people",
}


@pytest.fixture(scope="module")
def site(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own: the payloads stored here stay here."""
    srv = Server(
        data_dir=tmp_path_factory.mktemp("dashboard-attacks"),
        database_url=databases.url("sqlite"),
        port=free_port(),
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def site_factory(site: Server) -> Iterator[Factory]:
    f = Factory(site)
    yield f
    f.close()


@pytest.fixture
def browser(site: Server) -> Iterator[Browser]:
    b = admin(site)
    yield b
    b.close()


def snapshot(factory: Factory) -> dict[str, Any]:
    """The rows a change through the dashboard could touch (no last-seen times)."""
    found: dict[str, Any] = {}
    with factory.db.engine.connect() as conn:
        for name, query in SNAPSHOT.items():
            rows = conn.execute(text(query)).mappings().all()
            found[name] = sorted(
                (
                    tuple((k, str(v)) for k, v in row.items() if not k.startswith("last_"))
                    for row in rows
                ),
            )
    return found


def member_ids(page: str) -> list[str]:
    return re.findall(r"/dashboard/members/(mem_[a-z0-9]+)/remove", page)


def client_ids(page: str) -> list[str]:
    return re.findall(r'data-client-id="([^"]+)"', page)


# --- CSRF -------------------------------------------------------------------------


def _changes(browser: Browser, factory: Factory) -> list[tuple[str, dict[str, str]]]:
    settings = browser.open("/dashboard/settings").text
    person = invite_with_password(browser, "read")[0]
    settings = browser.open("/dashboard/settings").text
    member = next(m for m in member_ids(settings) if m)
    client = factory.client(org_id=browser.server.init["organization_id"])
    del person
    return [
        ("/dashboard/vaults", {"name": "csrf-vault"}),
        ("/dashboard/invitations", {"email": "csrf@example.com", "access": "write"}),
        ("/dashboard/service-accounts", {"name": "csrf", "scopes": "cards:write"}),
        (f"/dashboard/members/{member}/access", {"to": "write"}),
        (f"/dashboard/members/{member}/remove", {}),
        (f"/dashboard/service-accounts/{client.client_id}/rotate", {}),
        (f"/dashboard/service-accounts/{client.client_id}/delete", {}),
        ("/dashboard/device", {"user_code": "ABCD-EFGH", "decision": "approve"}),
        ("/dashboard/sign-out", {}),
    ]


@pytest.mark.parametrize(
    "forgery",
    ["no token", "wrong token", "another session's token", "foreign origin", "token in query"],
)
def test_forged_posts_are_refused_and_change_nothing(
    site: Server, site_factory: Factory, browser: Browser, forgery: str
) -> None:
    other = admin(site)
    changes = _changes(browser, site_factory)
    before = snapshot(site_factory)
    for path, data in changes:
        headers: dict[str, str] = {}
        form = dict(data)
        if forgery == "wrong token":
            form["csrf_token"] = secrets.token_urlsafe(32)
        elif forgery == "another session's token":
            form["csrf_token"] = other.csrf
        elif forgery == "foreign origin":
            form["csrf_token"] = browser.csrf
            headers["Origin"] = FOREIGN
        url = path + (f"?csrf_token={browser.csrf}" if forgery == "token in query" else "")
        response = browser.http.post(url, data=form, headers=headers)
        assert response.status_code == 403, (path, response.status_code)
        assert "Content-Security-Policy" in response.headers
    assert snapshot(site_factory) == before
    assert browser.open("/dashboard/settings").status_code == 200  # still signed in
    other.close()


def test_sign_in_needs_the_form_cookie_it_was_shown_with(site: Server) -> None:
    """Login CSRF: a foreign page cannot sign the victim's browser into its account."""
    page = httpx.get(f"{site.url}/dashboard/sign-in")
    creds = {"email": site.init["admin"]["email"], "password": site.init["admin"]["password"]}
    no_cookie = httpx.post(
        f"{site.url}/dashboard/sign-in", data={"csrf_token": csrf_of(page.text), **creds}
    )
    foreign = httpx.post(
        f"{site.url}/dashboard/sign-in",
        data={"csrf_token": "a" * 32, **creds},
        cookies={"cardvault_form": "b" * 32},
    )
    for response in (no_cookie, foreign):
        assert response.status_code == 403
        assert "cardvault_session" not in response.headers.get("set-cookie", "")


# --- XSS --------------------------------------------------------------------------


def assert_escaped(page: httpx.Response, payload: str) -> None:
    body = page.text
    assert payload not in body, f"{payload!r} rendered raw on {page.request.url}"
    if any(c in payload for c in "<>\"'"):
        assert html.escape(payload, quote=True).replace("&#x27;", "&#39;") in body or (
            payload.replace("<", "&lt;") not in body
        )


def test_stored_names_are_escaped_on_every_page(
    site: Server, site_factory: Factory, browser: Browser
) -> None:
    org = site.init["organization_id"]
    for payload in PAYLOADS:
        browser.open("/dashboard/vaults")
        assert browser.post("/dashboard/vaults", {"name": f"v {payload}"}).status_code == 303
    # Service account names are restricted to A-Z a-z 0-9 . _ -; their vaults' names are not.
    site_factory.client(org_id=org)
    pages = ["/dashboard/settings", "/dashboard/vaults", "/dashboard/audit"]
    pages += ["/dashboard/service-accounts/new"]
    for path in pages:
        page = browser.open(path)
        assert page.status_code == 200, path
        for payload in PAYLOADS:
            assert_escaped(page, payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_reflected_input_is_escaped(site: Server, browser: Browser, payload: str) -> None:
    reflected = [
        browser.http.get("/dashboard/audit", params={"actor": payload, "action": payload}),
        browser.http.get("/dashboard/audit", params={"since": payload, "outcome": payload}),
        browser.http.get("/dashboard/device", params={"user_code": payload}),
        browser.http.get("/dashboard/sign-in", params={"next": f"/dashboard/{payload}"}),
        browser.post("/dashboard/invitations", {"email": payload, "access": "read"}),
        browser.post("/dashboard/vaults", {"name": payload * 30}),  # too long: shown again
        browser.post("/dashboard/service-accounts", {"name": payload, "scopes": payload}),
        browser.http.get(f"/dashboard/members/{payload}/remove"),
    ]
    page = httpx.get(f"{site.url}/dashboard/sign-in")
    reflected.append(
        httpx.post(
            f"{site.url}/dashboard/sign-in",
            data={"csrf_token": csrf_of(page.text), "email": payload, "password": "x"},
            cookies=page.cookies,
        )
    )
    for response in reflected:
        assert response.status_code < 500, response.request.url
        assert_escaped(response, payload)


def test_every_page_has_a_strict_content_security_policy(site: Server, browser: Browser) -> None:
    pages = [
        browser.open(p)
        for p in (
            "/dashboard/settings",
            "/dashboard/vaults",
            "/dashboard/audit",
            "/dashboard/device",
        )
    ]
    pages.append(httpx.get(f"{site.url}/dashboard/sign-in"))
    pages.append(browser.open("/dashboard/no-such-page"))
    for page in pages:
        csp = page.headers.get("content-security-policy", "")
        directives = {
            name: value
            for name, _, value in (d.strip().partition(" ") for d in csp.split(";") if d.strip())
        }
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
        assert directives.get("script-src") == "'self'"
        assert directives.get("frame-ancestors") == "'none'"
        assert directives.get("form-action") == "'self'"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["content-type"].startswith("text/html")
        assert not re.search(r"<script(?![^>]*\bsrc=\"/dashboard/static/)", page.text)
        assert not re.search(r"<[^>]+\son[a-z]+=", page.text)  # no inline handlers


# --- open redirects -----------------------------------------------------------------

NEXTS = [
    "//evil.example",
    "//evil.example/dashboard",
    "https://evil.example",
    "https://evil.example/dashboard",
    "/\\evil.example",
    "\\\\evil.example",
    "/dashboard/../\\evil.example",
    "/dashboard/../..//evil.example",
    "/dashboard/%2e%2e/%5Cevil.example",
    "/dashboard/%2E%2E/%2e%2e//evil.example",
    "/dashboardevil",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/dashboard\r\nSet-Cookie: x=1",
    " //evil.example",
    "\t//evil.example",
    "/%2F%2Fevil.example",
    "http:evil.example",
]


def _lands_locally(site: Server, location: str) -> None:
    assert "\n" not in location and "\r" not in location
    resolved = urlsplit(urljoin(site.url + "/dashboard/sign-in", location.replace("\\", "/")))
    assert (resolved.scheme, resolved.netloc) == ("http", urlsplit(site.url).netloc), location
    assert resolved.path.startswith("/dashboard"), location


@pytest.mark.parametrize("target", NEXTS)
def test_next_never_leaves_the_dashboard(site: Server, target: str) -> None:
    form = httpx.get(f"{site.url}/dashboard/sign-in", params={"next": target})
    if any(ord(c) < 0x20 for c in target):
        # The input layer refuses control characters before any page sees them.
        assert form.status_code == 400, form.text
        assert form.json()["errors"][0]["code"] == "invalid-encoding"
        return
    shown = re.search(r'name="next" value="([^"]*)"', form.text)
    assert shown is not None
    _lands_locally(site, html.unescape(shown.group(1)))
    response = httpx.post(
        f"{site.url}/dashboard/sign-in",
        data={
            "csrf_token": csrf_of(form.text),
            "email": site.init["admin"]["email"],
            "password": site.init["admin"]["password"],
            "next": target,
        },
        cookies=form.cookies,
    )
    assert response.status_code == 303
    _lands_locally(site, response.headers["location"])


def test_the_sign_in_redirect_keeps_a_local_target(site: Server) -> None:
    response = httpx.get(f"{site.url}/dashboard/audit?actor=x")
    assert response.status_code == 303
    _lands_locally(site, response.headers["location"])


# --- session cookies ------------------------------------------------------------------


def test_session_cookie_flags_and_no_fixation(site: Server) -> None:
    planted = secrets.token_urlsafe(32)
    browser = Browser(site)
    browser.http.cookies.set("cardvault_session", planted, path="/dashboard")
    response = browser.sign_in(site.init["admin"]["email"], site.init["admin"]["password"])
    cookie = next(c for c in response.headers.get_list("set-cookie") if "cardvault_session=" in c)
    value = cookie.split(";")[0].split("=", 1)[1]
    assert value != planted and len(value) >= 32
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    other = httpx.get(f"{site.url}/dashboard/settings", cookies={"cardvault_session": planted})
    assert other.status_code == 303  # the planted value signs nobody in
    browser.close()


# --- another organization's ids -------------------------------------------------------


def test_another_organizations_members_and_accounts_are_not_found(
    site: Server, site_factory: Factory, browser: Browser
) -> None:
    victim = site_factory.client()  # its own new organization
    with site_factory.db.engine.connect() as conn:
        member: str = conn.execute(
            text(
                "SELECT m.id FROM members m JOIN service_accounts s "
                "ON s.id = m.service_account_id WHERE s.client_id = :c"
            ),
            {"c": victim.client_id},
        ).scalar_one()
    before = snapshot(site_factory)
    browser.open("/dashboard/settings")
    attempts = [
        browser.http.get(f"/dashboard/members/{member}/remove"),
        browser.http.get(f"/dashboard/members/{member}/access", params={"to": "read"}),
        browser.post(f"/dashboard/members/{member}/remove", {}),
        browser.post(f"/dashboard/members/{member}/access", {"to": "read"}),
        browser.http.get(f"/dashboard/service-accounts/{victim.client_id}/rotate"),
        browser.http.get(f"/dashboard/service-accounts/{victim.client_id}/delete"),
        browser.post(f"/dashboard/service-accounts/{victim.client_id}/rotate", {}),
        browser.post(f"/dashboard/service-accounts/{victim.client_id}/delete", {}),
    ]
    for response in attempts:
        assert response.status_code == 404, (response.request.url, response.status_code)
        assert victim.client_id not in response.text or victim.client_id in str(
            response.request.url
        )
    assert snapshot(site_factory) == before
    audit = browser.open("/dashboard/audit").text
    assert victim.org_id not in audit and victim.client_id not in audit


# --- no input makes a page fail ---------------------------------------------------------

ODD_QUERIES = [
    "/dashboard/audit?before=99999999999999999999999",
    "/dashboard/audit?before=-99999999999999999999999",
    "/dashboard/audit?before=abc",
    "/dashboard/audit?since=0001-01-01T00:00&until=9999-12-31T23:59",
    "/dashboard/audit?since=9999-99-99&until=%00",
    "/dashboard/audit?actor=%00%ff&action=" + "a" * 5000,
    "/dashboard/device?user_code=" + "Z" * 5000,
    "/dashboard/device?user_code=%00",
    "/dashboard/sign-in?next=%00",
    "/dashboard/members/%00/remove",
    "/dashboard/service-accounts/" + "x" * 3000 + "/rotate",
]


@pytest.mark.parametrize("path", ODD_QUERIES)
def test_odd_queries_never_fail_a_page(server: Server, path: str) -> None:
    browser = admin(server)
    response = browser.http.get(path)
    browser.close()
    assert response.status_code < 500, (path, response.text[:300])
