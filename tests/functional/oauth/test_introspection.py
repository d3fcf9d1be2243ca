"""POST …/protocol/openid-connect/token/introspect (RFC 7662)."""

from __future__ import annotations

import time

import httpx

from tests.factories import Client, Factory
from tests.functional.oauth.helpers import access_token, unverified
from tests.servers import Server


def introspect(server: Server, caller: Client, token: str, basic: bool = False) -> httpx.Response:
    url = f"{server.issuer}/protocol/openid-connect/token/introspect"
    if basic:
        return httpx.post(url, data={"token": token}, auth=(caller.client_id, caller.client_secret))
    return httpx.post(
        url,
        data={"token": token, "client_id": caller.client_id, "client_secret": caller.client_secret},
    )


def test_active_token_shows_its_claims(server: Server, factory: Factory) -> None:
    client = factory.client()
    token = access_token(server, client)
    claims = unverified(token)[1]
    response = introspect(server, client, token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "active": True,
        "token_type": "Bearer",
        "scope": "cards:write network-tokens:write",
        "client_id": client.client_id,
        "sub": client.service_account_id,
        "aud": server.url,
        "iss": server.issuer,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "nbf": claims["nbf"],
        "jti": claims["jti"],
        "org_id": client.org_id,
        "vault_id": client.vault_ids[0],
    }


def test_another_account_of_the_same_organization_may_introspect(
    server: Server, factory: Factory
) -> None:
    client = factory.client()
    colleague = factory.client(org_id=client.org_id, scopes=["cards:read"])
    response = introspect(server, colleague, access_token(server, client), basic=True)
    assert response.json()["active"] is True


def test_foreign_organization_token_is_inactive(server: Server, factory: Factory) -> None:
    token = access_token(server, factory.client())
    stranger = factory.client()
    assert introspect(server, stranger, token).json() == {"active": False}


def test_garbage_expired_and_forged_tokens_are_inactive(server: Server, factory: Factory) -> None:
    client = factory.client()
    now = int(time.time())
    expired = factory.forge(factory.claims(client, iat=now - 900, nbf=now - 900, exp=now - 600))
    wrong_audience = factory.forge(factory.claims(client, aud="https://elsewhere.example"))
    for token in ("not-a-token", "a.b.c", expired, wrong_audience):
        assert introspect(server, client, token).json() == {"active": False}


def test_introspection_requires_client_authentication(server: Server, factory: Factory) -> None:
    client = factory.client()
    token = access_token(server, client)
    url = f"{server.issuer}/protocol/openid-connect/token/introspect"
    response = httpx.post(url, data={"token": token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_missing_token_parameter_is_invalid_request(server: Server, factory: Factory) -> None:
    client = factory.client()
    url = f"{server.issuer}/protocol/openid-connect/token/introspect"
    response = httpx.post(url, data={}, auth=(client.client_id, client.client_secret))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Missing parameter: token",
    }
