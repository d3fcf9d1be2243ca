"""Interoperability: a third-party OAuth client gets tokens, a third-party JOSE library
verifies them knowing only the issuer URL."""

from __future__ import annotations

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session as OAuth2Client
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from tests.factories import Factory
from tests.servers import Server


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials(server: Server, factory: Factory, method: str) -> None:
    client = factory.client()
    meta = httpx.get(f"{server.issuer}/.well-known/openid-configuration").json()
    with OAuth2Client(
        client.client_id, client.client_secret, token_endpoint_auth_method=method
    ) as oauth:
        token = oauth.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 300
    assert token["scope"] == "cards:write network-tokens:write"
    # The token it obtained is accepted by the API.
    response = httpx.get(
        f"{server.url}/whoami", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert response.status_code == 200


def test_joserfc_verifies_with_discovery_and_jwks_only(server: Server, factory: Factory) -> None:
    client = factory.client()
    with OAuth2Client(client.client_id, client.client_secret) as oauth:
        access = oauth.fetch_token(server.token_url, grant_type="client_credentials")[
            "access_token"
        ]
    meta = httpx.get(f"{server.issuer}/.well-known/openid-configuration").json()
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    token = jwt.decode(access, keys, algorithms=meta["access_token_signing_alg_values_supported"])
    assert token.header["typ"] == "at+jwt"
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": meta["issuer"]},
        aud={"essential": True, "value": server.url},
        client_id={"essential": True, "value": client.client_id},
        exp={"essential": True},
        jti={"essential": True},
    )
    registry.validate(token.claims)
    assert token.claims["vault_id"] == client.vault_ids[0]

    # And it notices tampering.
    head, body, signature = access.split(".")
    forged = ".".join([head, body, signature[::-1]])
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, keys, algorithms=["ES256"])
