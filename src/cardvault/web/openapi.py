"""The OpenAPI document: one source, the routes themselves.

The HTTP layer's routes (``web/http.py``'s table: method, path, scope, body, query and
answer models) are described here; the management API's come from FastAPI, which
serves them; the authorization server's from :mod:`cardvault.api.oauth_openapi`. FastAPI
describes its own validation error (``HTTPValidationError``), which this API never
sends. Every refusal is the envelope ``{"errors": [{status, code, detail,
source?}]}``; this module adds it as the ``Errors`` component and attaches it to each
operation's answers that can happen there, so that generated clients and fuzzers can
check every response against the document. Every API operation takes a bearer token
(the ``bearer`` security scheme, with the ``WWW-Authenticate`` challenges of RFC 6750
§3 on its 401 and 403); the authorization server's paths, which its own ASGI front
answers, come from :mod:`cardvault.api.oauth_openapi`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from cardvault.web.http import Route

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


def install(app: FastAPI, routes: list[Route], extend: Callable[[dict[str, Any]], object]) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) describe the HTTP layer's
    routes and the management API, with the real errors and the bearer scheme; then
    ``extend`` adds what is described elsewhere (the OAuth paths)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            add_routes(document, [r for r in routes if r.document])
            describe_errors(document)
            describe_security(document)
            extend(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_SCHEMAS = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{([a-z_]+)\}")


def add_routes(document: dict[str, Any], routes: list[Route]) -> dict[str, Any]:
    """An operation per route, its models among the components' schemas."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for route in routes:
        if route.body is not None:
            models.append((route.body, "validation"))
        if route.response is not None:
            models.append((route.response, "serialization"))
    refs, defs = models_json_schema(models, ref_template=_SCHEMAS)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(defs.get("$defs", {}))
    paths = document.setdefault("paths", {})
    for route in routes:
        operation: dict[str, Any] = {
            "tags": list(route.tags),
            "summary": route.summary,
            "description": route.description,
            "operationId": route.handler.__name__,
            "parameters": _parameters(route),
            "responses": _answers(route, refs),
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": route.body_required,
                "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
            }
        for key, value in route.openapi.items():
            if key == "responses":
                for status, answer in value.items():
                    operation["responses"].setdefault(status, {}).update(answer)
            else:
                operation[key] = value
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return document


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    if route.query is not None:
        schema = route.query.model_json_schema()
        required = set(schema.get("required", ()))
        for name, field in schema.get("properties", {}).items():
            parameter = {"name": name, "in": "query", "required": name in required}
            if "description" in field:
                parameter["description"] = field.pop("description")
            parameters.append({**parameter, "schema": field})
    if route.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Replays the first answer to the same request for 24 hours",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    return parameters


def _answers(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    if route.status == 204:
        return {"204": {"description": "Done"}}
    schema = refs[(route.response, "serialization")] if route.response is not None else {}
    content = {"application/json": {"schema": schema}}
    answers = {str(route.status): {"description": "Successful Response", "content": content}}
    for status, description in route.responses.items():
        answers[str(status)] = {"description": description, "content": content}
    return answers


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
    """Every operation of the API takes a bearer token (``web/auth.py``)."""
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
