"""The OpenAPI document, made truthful about errors, credentials and OAuth.

FastAPI describes its own validation error (``HTTPValidationError``), which this API
never sends. Every refusal is the envelope ``{"errors": [{status, code, detail,
source?}]}``; this module adds it as the ``Errors`` component and attaches it to each
operation's answers that can happen there, so that generated clients and fuzzers can
check every response against the document. Every API operation takes a bearer token
(the ``bearer`` security scheme, with the ``WWW-Authenticate`` challenges of RFC 6750
§3 on its 401 and 403); the authorization server's paths, which its own ASGI front
answers, come from :mod:`cardvault.oauth.openapi`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cardvault.oauth import openapi as oauth_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every refusal of the API: one or more errors.",
    "required": ["errors"],
    "additionalProperties": False,
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["status", "code", "detail"],
                "properties": {
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                    "code": {
                        "type": "string",
                        "description": "Machine-readable, e.g. invalid-format, not-found, "
                        "invalid-cursor, duplicate-key, invalid-encoding, invalid-token",
                    },
                    "detail": {"type": "string"},
                    "source": {
                        "type": "object",
                        "description": "Where the error is: field (a body field), pointer "
                        "(RFC 6901, into the JSON body), parameter (query or path) or header",
                        "additionalProperties": {"type": "string"},
                    },
                },
            },
        }
    },
}

_DESCRIPTIONS = {
    "400": "Malformed input: invalid-encoding, invalid-json, duplicate-key, invalid-cursor",
    "401": "Missing, malformed, expired or revoked bearer token (invalid-token)",
    "403": "The token lacks the scope or vault this needs",
    "404": "No such resource, or not the caller's",
    "409": "Conflict with the resource's state or a limit",
    "413": "Request body too large",
    "414": "Path or query too long",
    "415": "Unsupported media type",
    "422": "Well-formed input that is refused: invalid-format (a card number where none "
    "belongs, a number out of range...), required-fields-missing, ...",
    "503": "Temporarily unavailable (a network or the database); see Retry-After",
}
# Every operation: the input layer, the bearer check, a missing resource (or a card a
# network declines) and an outage can refuse any.
_ALWAYS = ("400", "401", "403", "404", "414", "422", "503")
_CHANGES = ("409", "413")  # POST, PUT, PATCH, DELETE: a state or limit conflict, a body
_WRITES = frozenset({"post", "put", "patch", "delete"})
_BY_OPERATION: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/network-tokens/bulk"): ("415",),
}
_ERROR_REF = {"$ref": "#/components/schemas/Errors"}
_UNUSED = ("HTTPValidationError", "ValidationError")
BEARER = "bearer"
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token of the token endpoint (RFC 9068 JWT)",
}
_CHALLENGES = {
    "401": 'Bearer error="invalid_token", error_description="…"',
    "403": 'Bearer error="insufficient_scope", scope="…" (a scope refusal)',
}
_RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 1},
}


def install(app: FastAPI, realm: str) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) describe the real errors, the
    bearer scheme, and the OAuth paths of ``realm``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            describe_errors(document)
            describe_security(document)
            add_oauth(document, realm)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def describe_errors(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _UNUSED:
        schemas.pop(name, None)
    schemas["Errors"] = ERROR_SCHEMA
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = [*_ALWAYS, *_BY_OPERATION.get((method, path), ())]
            if method in _WRITES:
                statuses += _CHANGES
            responses = operation["responses"]
            for status in statuses:
                responses[status] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": _ERROR_REF}},
                }
            responses["503"]["headers"] = {"Retry-After": _RETRY_AFTER}
    return document


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for item in document.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]


def describe_security(document: dict[str, Any]) -> dict[str, Any]:
    """Every operation FastAPI serves takes a bearer token (``api/auth.py``)."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = BEARER_SCHEME
    for operation in _operations(document):
        operation["security"] = [{BEARER: []}]
        for status, challenge in _CHALLENGES.items():
            operation["responses"][status]["headers"] = {
                "WWW-Authenticate": {
                    "description": f"RFC 6750 §3: {challenge}",
                    "schema": {"type": "string", "pattern": "^Bearer "},
                }
            }
    return document


def add_oauth(document: dict[str, Any], realm: str) -> dict[str, Any]:
    """The authorization server's paths, after the API's (their errors are RFC 6749's)."""
    document["paths"].update(oauth_openapi.paths(realm))
    components = document.setdefault("components", {})
    for section, entries in oauth_openapi.components().items():
        components.setdefault(section, {}).update(entries)
    return document
