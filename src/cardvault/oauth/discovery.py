"""Server metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2."""

from __future__ import annotations

from typing import Any

from cardvault.accounts.scopes import ALL_SCOPES
from cardvault.oauth.client_auth import AUTH_METHODS
from cardvault.oauth.device import DEVICE_GRANT


def metadata(issuer: str, signing_algs: list[str]) -> dict[str, Any]:
    base = f"{issuer}/protocol/openid-connect"
    return {
        "issuer": issuer,
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/certs",
        "introspection_endpoint": f"{base}/token/introspect",
        "revocation_endpoint": f"{base}/revoke",
        "device_authorization_endpoint": f"{base}/auth/device",
        "grant_types_supported": ["client_credentials", DEVICE_GRANT],
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(ALL_SCOPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algs,
        "token_endpoint_auth_signing_alg_values_supported": signing_algs,
        "access_token_signing_alg_values_supported": signing_algs,
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "client_id",
            "azp",
            "scope",
            "org_id",
            "vault_id",
        ],
    }
