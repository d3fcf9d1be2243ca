"""Key set (RFC 7517) and server metadata (OIDC Discovery §3, RFC 8414 §3)."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import Server


@pytest.mark.parametrize("prefix", ["/auth/realms/cardvault", "/realms/cardvault"])
def test_certs_publish_public_keys_only(server: Server, prefix: str) -> None:
    response = httpx.get(f"{server.url}{prefix}/protocol/openid-connect/certs")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    keys = response.json()["keys"]
    assert len(keys) == 1
    (key,) = keys
    assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")


@pytest.mark.parametrize(
    "path",
    [
        "/auth/realms/cardvault/.well-known/openid-configuration",
        "/realms/cardvault/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/auth/realms/cardvault",
    ],
)
def test_discovery_documents(server: Server, path: str) -> None:
    response = httpx.get(f"{server.url}{path}")
    assert response.status_code == 200
    meta = response.json()
    base = f"{server.issuer}/protocol/openid-connect"
    assert meta["issuer"] == server.issuer
    assert meta["token_endpoint"] == f"{base}/token"
    assert meta["jwks_uri"] == f"{base}/certs"
    assert meta["introspection_endpoint"] == f"{base}/token/introspect"
    assert meta["revocation_endpoint"] == f"{base}/revoke"
    assert meta["grant_types_supported"] == [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    ]
    assert meta["device_authorization_endpoint"] == f"{base}/auth/device"
    assert meta["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert meta["access_token_signing_alg_values_supported"] == ["ES256"]
    assert {"cards:write", "cards:read", "network-tokens:write", "network-tokens:read"} <= set(
        meta["scopes_supported"]
    )


def test_metadata_urls_resolve(server: Server) -> None:
    meta = httpx.get(f"{server.issuer}/.well-known/openid-configuration").json()
    assert httpx.get(meta["jwks_uri"]).status_code == 200


def test_unknown_realm_metadata_is_404(server: Server) -> None:
    response = httpx.get(f"{server.url}/realms/nope/.well-known/openid-configuration")
    assert response.status_code == 404
