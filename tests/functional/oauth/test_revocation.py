"""POST …/protocol/openid-connect/revoke (RFC 7009)."""

from __future__ import annotations

import httpx

from tests.factories import Client, Factory
from tests.functional.oauth.helpers import access_token, eventually, whoami
from tests.functional.oauth.test_introspection import introspect
from tests.servers import Server


def revoke(server: Server, caller: Client | tuple[str, str], token: str) -> httpx.Response:
    auth = (caller.client_id, caller.client_secret) if isinstance(caller, Client) else caller
    return httpx.post(
        f"{server.issuer}/protocol/openid-connect/revoke", data={"token": token}, auth=auth
    )


def test_revoked_token_stops_working_everywhere(server: Server, factory: Factory) -> None:
    client = factory.client()
    token, other = access_token(server, client), access_token(server, client)
    assert whoami(server, token).status_code == 200
    response = revoke(server, client, token)
    assert response.status_code == 200
    assert response.content == b""
    eventually(lambda: whoami(server, token).status_code == 401)
    assert introspect(server, client, token).json() == {"active": False}
    # Only that token: the client's other tokens still work.
    assert whoami(server, other).status_code == 200


def test_unknown_tokens_answer_200(server: Server, factory: Factory) -> None:
    client = factory.client()
    assert revoke(server, client, "not-a-token").status_code == 200


def test_other_clients_token_needs_organization_admin(server: Server, factory: Factory) -> None:
    client = factory.client()
    colleague = factory.client(org_id=client.org_id)
    token = access_token(server, client)
    refused = revoke(server, colleague, token)
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "unauthorized_client",
        "error_description": "The token was issued to another client",
    }
    assert whoami(server, token).status_code == 200
    admin = factory.client(org_id=client.org_id, scopes=["organization:admin"], vaults=0)
    assert revoke(server, admin, token).status_code == 200
    eventually(lambda: whoami(server, token).status_code == 401)


def test_foreign_organization_cannot_revoke(server: Server, factory: Factory) -> None:
    client = factory.client()
    token = access_token(server, client)
    stranger = factory.client(scopes=["organization:admin"], vaults=0)
    assert revoke(server, stranger, token).status_code == 200
    assert whoami(server, token).status_code == 200


def test_revocation_requires_client_authentication(server: Server, factory: Factory) -> None:
    token = access_token(server, factory.client())
    response = httpx.post(f"{server.issuer}/protocol/openid-connect/revoke", data={"token": token})
    assert response.status_code == 401
    assert whoami(server, token).status_code == 200
