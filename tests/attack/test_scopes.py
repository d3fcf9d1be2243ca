"""A genuine token used beyond its scopes: refused with 403 ``insufficient-scope`` on the
FastAPI routes and the raw fast path alike, and audited with the caller as actor."""

from __future__ import annotations

import pytest

from tests.attack.helpers import client_from, error_code, fresh_address, wait_for_audit
from tests.factories import Factory
from tests.functional.oauth.helpers import access_token
from tests.servers import Server

CARD = {"pan": "4111111111111111", "exp_month": 12, "exp_year": 2031}
BEYOND = [
    ("POST", "/cards", CARD, "cards:write"),  # the fast path
    ("GET", "/network-tokens?limit=1", None, "network-tokens:read"),
    ("GET", "/webhooks", None, "webhooks:read"),
    ("POST", "/network-tokens", {**CARD, "cvc": "123"}, "network-tokens:write"),
]


@pytest.mark.parametrize(("method", "path", "body", "scope"), BEYOND)
def test_a_scope_the_token_lacks_is_refused_and_audited(
    server: Server, factory: Factory, method: str, path: str, body: object, scope: str
) -> None:
    client = factory.client(scopes=("cards:read",))
    token = access_token(server, client)
    address = fresh_address()
    with client_from(address, server.url) as http:
        response = http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )

    assert response.status_code == 403, response.text
    assert error_code(response) == "insufficient-scope"
    assert f'scope="{scope}"' in response.headers["www-authenticate"]
    (row,) = wait_for_audit(factory, action="scope.check", source_ip=address)
    assert (row.outcome, row.actor_id) == ("failure", client.client_id)
    assert row.reason == f"insufficient-scope: {scope}"
    assert "4111111111111111" not in str(row.details)
