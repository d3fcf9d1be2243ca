"""Guessing client secrets and passwords: throttled, audited, and the owner unharmed.

Against the shared servers with their default limits (10 failures of one client from
one address a minute at the token endpoint, 5 of one email at sign-in). Every guess
comes from a loopback address of its own test, so throttles and audit windows start
clean.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.attack.helpers import audit_rows, client_from, fresh_address, wait_for_audit
from tests.factories import Client, Factory
from tests.functional.dashboard.helpers import admin, csrf_of, invite_with_password
from tests.servers import Server

THROTTLED = "slow_down: too many failed authentication attempts"


def _token(
    http: httpx.Client, server: Server, client: Client, secret: str, basic: bool
) -> httpx.Response:
    form = {"grant_type": "client_credentials"}
    headers = {}
    if basic:
        pair = f"{client.client_id}:{secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    else:
        form |= {"client_id": client.client_id, "client_secret": secret}
    return http.post(server.token_url, data=form, headers=headers)


def test_guessing_a_client_secret_is_throttled_and_audited(
    server: Server, factory: Factory
) -> None:
    victim = factory.client()
    attacker, owner = fresh_address(), fresh_address()
    with client_from(attacker) as http:
        guesses = [
            _token(http, server, victim, f"cvs_guess{i}", basic=bool(i % 2)) for i in range(10)
        ]
        assert {(r.status_code, r.json()["error"]) for r in guesses} == {(401, "invalid_client")}
        throttled = [_token(http, server, victim, "cvs_more", basic=False) for _ in range(30)]
        for response in throttled:
            assert response.status_code == 429
            assert response.json()["error"] == "slow_down"
            assert 1 <= int(response.headers["retry-after"]) <= 60
        # The right secret from the guessing address learns nothing either.
        assert _token(http, server, victim, victim.client_secret, basic=True).status_code == 429
        # Marker: a refusal of another kind from the same address, written after the rest.
        assert _token(http, server, factory.client(), "cvs_x", basic=False).status_code == 401
    with client_from(owner) as http:
        assert _token(http, server, victim, victim.client_secret, basic=False).status_code == 200

    wait_for_audit(
        factory, action="token.issue", source_ip=attacker, actor_id=None
    ) if False else None
    # The marker (another client's wrong secret) is the 11th: all before it are written.
    marker = wait_for_audit(
        factory,
        action="token.issue",
        source_ip=attacker,
        reason="invalid_client: wrong secret",
        count=11,
    )
    mine = [r for r in marker if r.actor_id == victim.client_id]
    assert len(mine) == 10 and all(r.outcome == "failure" for r in mine)
    slowed = audit_rows(factory, action="token.issue", source_ip=attacker, reason=THROTTLED)
    assert len(slowed) == 1, "a flood of throttled requests is one record a minute"
    assert slowed[0].actor_id == victim.client_id
    wait_for_audit(
        factory, action="token.issue", source_ip=owner, actor_id=victim.client_id, outcome="success"
    )


@pytest.fixture
def person(server: Server) -> tuple[str, str]:
    boss = admin(server)
    try:
        return invite_with_password(boss, "read")
    finally:
        boss.close()


def _sign_in(site: Server, address: str, email: str, password: str) -> httpx.Response:
    with client_from(address, site.url) as http:
        page = http.get("/dashboard/sign-in")
        return http.post(
            "/dashboard/sign-in",
            data={"csrf_token": csrf_of(page.text), "email": email, "password": password},
        )


def test_guessing_a_password_is_throttled_and_audited(
    server: Server, factory: Factory, person: tuple[str, str]
) -> None:
    email, password = person
    attacker, owner = fresh_address(), fresh_address()
    wrong = [_sign_in(server, attacker, email, f"guess {i}") for i in range(5)]
    assert [r.status_code for r in wrong] == [401] * 5
    for _ in range(10):
        refused = _sign_in(server, attacker, email, "guess again")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "cardvault_session" not in refused.headers.get("set-cookie", "")
    assert _sign_in(server, attacker, email, password).status_code == 429
    # Marker: another email's failure from the same address, written after the rest.
    assert _sign_in(server, attacker, "nobody@example.com", "x").status_code == 401

    signed = _sign_in(server, owner, email, password)
    assert signed.status_code == 303
    assert "cardvault_session=" in signed.headers.get("set-cookie", "")

    wait_for_audit(
        factory, action="dashboard.sign_in", source_ip=attacker, actor_id="nobody@example.com"
    )
    failures = audit_rows(factory, action="dashboard.sign_in", source_ip=attacker, actor_id=email)
    reasons = [r.reason for r in failures]
    assert reasons.count("wrong email or password") == 5
    assert reasons.count("too many failed sign-ins") == 1
    assert all(r.outcome == "failure" for r in failures)
    wait_for_audit(factory, action="dashboard.sign_in", source_ip=owner, outcome="success")


def test_spraying_many_emails_from_one_address_is_throttled(server: Server) -> None:
    attacker = fresh_address()
    answers = [
        _sign_in(server, attacker, f"spray{i}@example.com", "Password1!").status_code
        for i in range(22)
    ]
    assert answers[:20] == [401] * 20
    assert answers[20:] == [429, 429]
