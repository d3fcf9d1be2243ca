"""The authorization server's part of the OpenAPI document.

Its routes are answered by the raw ASGI front of :mod:`cardvault.api.oauth`, which
FastAPI never sees; their operations are written here, from that module's own route
table, so the document lists exactly the paths the front answers. Bodies are forms
(RFC 6749 Appendix B); every refusal is RFC 6749 §5.2's ``{"error",
"error_description"}``, except a path of another realm, which answers Keycloak's
``{"error": "Realm does not exist"}``.
"""

from __future__ import annotations

from typing import Any

from cardvault.accounts.scopes import ALL_SCOPES
from cardvault.api.oauth import PREFIXES, RFC8414_PREFIX, SUFFIXES
from cardvault.oauth.device import CLI_CLIENT_ID, DEVICE_GRANT
from cardvault.oauth.forms import FORM_TYPE, MAX_VALUE
from cardvault.oauth.token_endpoint import CLIENT_CREDENTIALS

__all__ = ["CLIENT_AUTH", "add_oauth", "components", "paths"]

TAG = "oauth"
CLIENT_AUTH = "clientBasic"  # RFC 6749 §2.3.1 client_secret_basic
_SCHEMAS = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS + name}


def _text(description: str = "", max_length: int = MAX_VALUE) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if description:
        schema["description"] = description
    return schema


def _error(codes: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["error", "error_description"],
        "additionalProperties": False,
        "properties": {
            "error": {"type": "string", "enum": codes},
            "error_description": {"type": "string"},
        },
    }


# Client authentication in the body (client_secret_post); Basic is the other way.
_CLIENT_FIELDS = {
    "client_id": _text("With client_secret, unless the Authorization header is used", 255),
    "client_secret": _text(max_length=255),
}
_TOKEN_FORM = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": [CLIENT_CREDENTIALS, DEVICE_GRANT]},
        "scope": _text("Space-separated subset of the client's scopes (default: all)"),
        "device_code": _text("The device code (device_code grant)"),
        **_CLIENT_FIELDS,
    },
}
_TOKEN_FORM_OF = {"token": _text("An access token"), **_CLIENT_FIELDS}
_TOKEN_HINT = {"token_type_hint": {"type": "string", "enum": ["access_token"]}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "OAuthError": {
        "type": "object",
        "description": "RFC 6749 §5.2: every refusal of the authorization server",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {"type": "string"},
            "error_description": {"type": "string"},
        },
    },
    "OAuthRequestError": _error(
        [
            "invalid_request",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "unsupported_token_type",
            "authorization_pending",
            "slow_down",
            "access_denied",
            "expired_token",
        ],
        "RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8628 §3.5. Every input the service "
        "refuses (encoding, size, a card number) is invalid_request.",
    ),
    "OAuthInvalidClient": _error(["invalid_client"], "RFC 6749 §5.2: client authentication"),
    "OAuthSlowDown": _error(["slow_down"], "Too many failed client authentications"),
    "OAuthUnavailable": _error(["temporarily_unavailable"], "The database is out of reach"),
    "TokenRequest": _TOKEN_FORM,
    "IntrospectionRequest": {
        "type": "object",
        "required": ["token"],
        "properties": {**_TOKEN_FORM_OF, **_TOKEN_HINT},
    },
    "RevocationRequest": {
        "type": "object",
        "required": ["token"],
        "properties": {**_TOKEN_FORM_OF, **_TOKEN_HINT},
    },
    "DeviceAuthorizationRequest": {
        "type": "object",
        "required": ["client_id"],
        "properties": {
            "client_id": {"type": "string", "enum": [CLI_CLIENT_ID]},
            "scope": _text(),
        },
    },
    "TokenResponse": {
        "type": "object",
        "description": "RFC 6749 §5.1, with Keycloak's extra fields",
        "required": [
            "access_token",
            "expires_in",
            "refresh_expires_in",
            "token_type",
            "not-before-policy",
            "scope",
        ],
        "properties": {
            "access_token": {"type": "string", "description": "An RFC 9068 JWT"},
            "expires_in": {"type": "integer", "minimum": 1},
            "refresh_expires_in": {"type": "integer", "enum": [0]},
            "token_type": {"type": "string", "enum": ["bearer"]},
            "not-before-policy": {"type": "integer"},
            "scope": {"type": "string"},
        },
    },
    "IntrospectionResponse": {
        "type": "object",
        "description": "RFC 7662 §2.2: {active: false} for any token not active for the "
        "caller's organization",
        "required": ["active"],
        "properties": {
            "active": {"type": "boolean"},
            "token_type": {"type": "string"},
            "scope": {"type": "string"},
            "client_id": {"type": "string"},
            "sub": {"type": "string"},
            "aud": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "iss": {"type": "string"},
            "exp": {"type": "integer"},
            "iat": {"type": "integer"},
            "nbf": {"type": "integer"},
            "jti": {"type": "string"},
            "org_id": {"type": "string"},
            "vault_id": {"type": ["string", "null"]},
            "vault_ids": {"type": "array", "items": {"type": "string"}},
        },
    },
    "DeviceAuthorizationResponse": {
        "type": "object",
        "description": "RFC 8628 §3.2",
        "required": [
            "device_code",
            "user_code",
            "verification_uri",
            "verification_uri_complete",
            "expires_in",
            "interval",
        ],
        "properties": {
            "device_code": {"type": "string"},
            "user_code": {"type": "string"},
            "verification_uri": {"type": "string"},
            "verification_uri_complete": {"type": "string"},
            "expires_in": {"type": "integer"},
            "interval": {"type": "integer"},
        },
    },
    "JsonWebKeySet": {
        "type": "object",
        "description": "RFC 7517 §5: the public keys that verify access tokens",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "kid"],
                    "properties": {"kty": {"type": "string"}, "kid": {"type": "string"}},
                },
            }
        },
    },
    "ServerMetadata": {
        "type": "object",
        "description": "OpenID Connect Discovery 1.0 §3 and RFC 8414 §2",
        "required": ["issuer", "token_endpoint", "jwks_uri", "grant_types_supported"],
        "properties": {
            "issuer": {"type": "string"},
            "token_endpoint": {"type": "string"},
            "jwks_uri": {"type": "string"},
            "introspection_endpoint": {"type": "string"},
            "revocation_endpoint": {"type": "string"},
            "device_authorization_endpoint": {"type": "string"},
            "grant_types_supported": {"type": "array", "items": {"type": "string"}},
            "scopes_supported": {
                "type": "array",
                "items": {"type": "string", "enum": list(ALL_SCOPES)},
            },
        },
    },
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _json(schema: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if headers:
        answer["headers"] = headers
    return answer


# The realm's path, but another realm: Keycloak's answer. A path the front does not
# take for the realm's at all reaches the application's 404 (the API envelope).
_NOT_FOUND = {
    "description": "No such realm",
    "content": {"application/json": {"schema": {"anyOf": [_ref("OAuthError"), _ref("Errors")]}}},
}
_BAD_REQUEST = _json("OAuthRequestError", "Refused request (RFC 6749 §5.2)")
_INVALID_CLIENT = _json(
    "OAuthInvalidClient",
    "Client authentication failed",
    {
        "WWW-Authenticate": {
            "description": "Basic challenge, when the client authenticated with Basic",
            "schema": {"type": "string", "pattern": "^Basic "},
        }
    },
)
_THROTTLED = _json("OAuthSlowDown", "Throttled after repeated failures", _RETRY_AFTER)
_UNAVAILABLE = _json("OAuthUnavailable", "The database is out of reach", _RETRY_AFTER)


def _form(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {FORM_TYPE: {"schema": _ref(schema)}}}


def _authenticated(summary: str, form: str, ok: dict[str, Any]) -> dict[str, Any]:
    """An endpoint where the client authenticates (RFC 6749 §2.3.1), by Basic or in
    the form: no security requirement stands for the latter."""
    return {
        "summary": summary,
        "requestBody": _form(form),
        "security": [{CLIENT_AUTH: []}, {}],
        "responses": {
            "200": ok,
            "400": _BAD_REQUEST,
            "401": _INVALID_CLIENT,
            "404": _NOT_FOUND,
            "429": _THROTTLED,
            "503": _UNAVAILABLE,
        },
    }


def _operations() -> dict[str, dict[str, Any]]:
    """One operation per handler name of :data:`cardvault.api.oauth.SUFFIXES`."""
    token = _authenticated(
        "Token endpoint (RFC 6749 §4.4 client credentials, RFC 8628 §3.4 device code)",
        "TokenRequest",
        _json("TokenResponse", "An access token"),
    )
    introspect = _authenticated(
        "Token introspection (RFC 7662)",
        "IntrospectionRequest",
        _json("IntrospectionResponse", "The token's state and claims"),
    )
    revoke = _authenticated(
        "Token revocation (RFC 7009); 200 whether or not the token was known",
        "RevocationRequest",
        {"description": "Revoked (or unknown): an empty body"},
    )
    device = {
        "summary": "Device authorization (RFC 8628 §3.1), for the cardvault CLI",
        "requestBody": _form("DeviceAuthorizationRequest"),
        "security": [],
        "responses": {
            "200": _json("DeviceAuthorizationResponse", "A device code and a user code"),
            "400": _BAD_REQUEST,
            "404": _NOT_FOUND,
            "503": _UNAVAILABLE,
        },
    }
    certs = {
        "summary": "The JSON Web Key Set of the signing keys",
        "security": [],
        "responses": {
            "200": _json("JsonWebKeySet", "The current public keys"),
            "400": _BAD_REQUEST,
            "404": _NOT_FOUND,
        },
    }
    discovery = {
        "summary": "Authorization server metadata",
        "security": [],
        "responses": {
            "200": _json("ServerMetadata", "The metadata"),
            "400": _BAD_REQUEST,
            "404": _NOT_FOUND,
        },
    }
    return {
        "token": token,
        "introspect": introspect,
        "revoke": revoke,
        "device": device,
        "certs": certs,
        "discovery": discovery,
    }


def paths(realm: str) -> dict[str, dict[str, Any]]:
    """The OAuth paths of the front's table, ``{realm}`` a parameter that has one value."""
    operations = _operations()
    parameter = {
        "name": "realm",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [realm]},
    }
    table = [
        (prefix + suffix, method, name)
        for prefix in PREFIXES
        for suffix, (method, name) in SUFFIXES.items()
    ]
    table.append((RFC8414_PREFIX + "/auth/realms/{realm}", "GET", "discovery"))
    found: dict[str, dict[str, Any]] = {}
    for path, method, name in table:
        operation = {
            "tags": [TAG],
            "operationId": _operation_id(path, method),
            "parameters": [parameter],
            **operations[name],
        }
        found.setdefault(path, {})[method.lower()] = operation
    return found


def _operation_id(path: str, method: str) -> str:
    words = "".join(ch if ch.isalnum() else "_" for ch in path.replace("{realm}", ""))
    return f"oauth_{method.lower()}{'_'.join(filter(None, words.split('_')))}"


def components() -> dict[str, Any]:
    """The schemas and the Basic security scheme the OAuth paths refer to."""
    return {
        "schemas": SCHEMAS,
        "securitySchemes": {
            CLIENT_AUTH: {
                "type": "http",
                "scheme": "basic",
                "description": "client_secret_basic: the client id and secret (RFC 6749 "
                "§2.3.1); or send them as client_id and client_secret in the form",
            }
        },
    }


def add_oauth(document: dict[str, Any], realm: str) -> dict[str, Any]:
    """The authorization server's paths, after the API's (their errors are RFC 6749's)."""
    document["paths"].update(paths(realm))
    sections = document.setdefault("components", {})
    for section, entries in components().items():
        sections.setdefault(section, {}).update(entries)
    return document
