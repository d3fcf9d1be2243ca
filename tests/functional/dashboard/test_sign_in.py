"""Signing in: cookie flags, CSRF on the sign-in form, throttling, sign-out, invitations."""

from __future__ import annotations

import re
import secrets

import httpx

from tests.conftest import MakeServer
from tests.functional.dashboard.helpers import Browser, admin, csrf_of, invite_with_password
from tests.servers import Server


def test_session_cookie_is_http_only_lax_and_scoped(server: Server) -> None:
    browser = Browser(server)
    response = browser.sign_in(server.init["admin"]["email"], server.init["admin"]["password"])
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/settings"
    cookie = next(c for c in response.headers.get_list("set-cookie") if "cardvault_session=" in c)
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= flags
    assert "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    assert "secure" not in flags  # served over plain HTTP here
    assert browser.open("/dashboard/settings").status_code == 200


def test_cookies_are_secure_when_the_public_url_is_https(make_server: MakeServer) -> None:
    srv = make_server("sqlite", url="https://vault.example.com")
    form = httpx.get(f"{srv.url}/dashboard/sign-in")
    form_cookie = form.headers["set-cookie"]
    assert "Secure" in form_cookie
    # A browser sends Secure cookies only over HTTPS; here the test hands it over itself.
    token = form_cookie.split(";")[0].split("=", 1)[1]
    response = httpx.post(
        f"{srv.url}/dashboard/sign-in",
        data={
            "csrf_token": csrf_of(form.text),
            "email": srv.init["admin"]["email"],
            "password": srv.init["admin"]["password"],
        },
        cookies={"cardvault_form": token},
    )
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if "cardvault_session=" in c)
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_pages_need_a_session(server: Server) -> None:
    for path in ("/dashboard/settings", "/dashboard/vaults", "/dashboard/audit"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/sign-in?next=")


def test_sign_in_form_without_its_csrf_token_is_refused(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/dashboard/sign-in",
        data={"email": server.init["admin"]["email"], "password": server.init["admin"]["password"]},
    )
    assert response.status_code == 403
    assert "CSRF check failed" in response.text
    assert "cardvault_session" not in response.headers.get("set-cookie", "")


def test_wrong_passwords_are_throttled_then_even_the_right_one_waits(server: Server) -> None:
    email, password = invite_with_password(admin(server), "read")
    browser = Browser(server)
    for _ in range(5):
        assert browser.sign_in(email, "not the password").status_code == 401
    refused = browser.sign_in(email, password)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in refused.text
    assert browser.open("/dashboard/settings").status_code == 303  # still signed out


def test_sign_out_ends_the_session_on_the_server(server: Server) -> None:
    browser = admin(server)
    cookie = browser.http.cookies.get("cardvault_session")
    assert browser.post("/dashboard/sign-out", {}).status_code == 303
    replay = httpx.get(
        f"{server.url}/dashboard/settings", cookies={"cardvault_session": str(cookie)}
    )
    assert replay.status_code == 303  # the old cookie no longer opens anything


def test_invitation_link_sets_a_password_once(server: Server) -> None:
    browser = admin(server)
    browser.open("/dashboard/settings")
    email = f"linked-{secrets.token_hex(4)}@example.com"
    page = browser.post(
        "/dashboard/invitations", {"email": email, "access": "write", "method": "link"}
    )
    link = re.search(r'value="(http://[^"]+/dashboard/invitations/[^"]+)"', page.text)
    assert link, page.text
    invitee = Browser(server).http
    form = invitee.get(link.group(1))
    assert form.status_code == 200 and email in form.text
    new_password = "correct horse battery staple"
    done = invitee.post(
        link.group(1),
        data={"csrf_token": csrf_of(form.text), "password": new_password, "confirm": new_password},
    )
    assert done.status_code == 303
    assert Browser(server).sign_in(email, new_password).status_code == 303
    assert invitee.get(link.group(1)).status_code == 404  # used up
