"""Every error, rendered once: the API's ``{"errors": [{status, code, detail, source?}]}``
or, on the OAuth endpoints, RFC 6749 §5.2's ``{"error", "error_description"}``.

:func:`render_error` is the one place an exception becomes an answer, for every route
of the HTTP layer; :func:`install` gives the management API and dashboard (FastAPI)
the same rendering for what they raise. Refused bearer tokens and missing scopes are
audited here (DESIGN §3), wherever they were raised.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from cardvault.audit import AuditRecord
from cardvault.crypto import mask_pans
from cardvault.oauth.errors import OAuthError
from cardvault.problems import InsufficientScope, NotFound, Problem, Unprocessable
from cardvault.store.unavailable import DATABASE_ERRORS, is_unavailable
from cardvault.web.inputs import InvalidInput, MissingBody, Refused
from cardvault.web.reply import Reply
from cardvault.web.unavailable import (
    API_BODY,
    HEADERS,
    OAUTH_BODY,
    log_unavailable,
)

if TYPE_CHECKING:
    from cardvault.runtime import Runtime

__all__ = [
    "ApiError",
    "InsufficientScope",
    "InvalidToken",
    "MethodNotAllowed",
    "ResourceNotFound",
    "Unprocessable",
    "UnsupportedMediaType",
    "install",
    "render_error",
]

log = logging.getLogger("cardvault.web")

ApiError = Problem  # the base of every error of the API


class InvalidToken(Problem):
    """RFC 6750 §3.1 ``invalid_token``: missing, malformed, expired or revoked."""

    status = 401
    code = "invalid-token"

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{detail}"'
            },
        )


ResourceNotFound = NotFound


class MethodNotAllowed(Problem):
    status = 405
    code = "method-not-allowed"

    def __init__(self, allowed: list[str]) -> None:
        super().__init__("Method Not Allowed", headers={"Allow": ", ".join(allowed)})


class UnsupportedMediaType(Problem):
    status = 415
    code = "unsupported-media-type"


JSON = (b"content-type", b"application/json")
NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
_DATABASE = "unavailable"  # the database is out of reach (web/unavailable.py)


def envelope(
    status: int, code: str, detail: str, source: dict[str, str] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "code": code, "detail": detail}
    if source:
        error["source"] = source
    return {"errors": [error]}


def render_error(
    error: BaseException,
    style: Literal["api", "oauth"],
    method: str,
    path: str,
    runtime: Runtime | None,
    scope: Scope,
) -> Reply:
    """The answer to ``error`` on the route of ``method path``: its status and body in
    the route's style, its headers; unexpected errors are logged and answer 500."""
    if isinstance(error, InvalidToken | InsufficientScope) and runtime is not None:
        _audit_refusal(runtime, error, method, path, scope)
    status, code, detail, source, headers = _parts(error, method, path)
    header_list = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    database = code == _DATABASE
    if style == "oauth":
        if isinstance(error, OAuthError):
            body = error.body()
        elif database:
            return Reply(503, OAUTH_BODY, [JSON, *header_list])
        elif status == 405:
            body = {"error": "method_not_allowed"}
        elif status >= 500:
            body = {"error": "server_error", "error_description": "Internal error"}
        else:  # an input the gate refused: RFC 6749 §5.2 knows it as invalid_request
            if status == 413:
                detail = "Request body too large"
            status, body = 400, {"error": "invalid_request", "error_description": detail}
        return Reply(status, orjson.dumps(body), [JSON, *NO_STORE, *header_list])
    if database:
        return Reply(503, API_BODY, [JSON, *header_list])
    if isinstance(error, Refused):
        header_list.append((b"cache-control", b"no-store"))
    return Reply(status, orjson.dumps(envelope(status, code, detail, source)), [JSON, *header_list])


def _parts(
    error: BaseException, method: str, path: str
) -> tuple[int, str, str, dict[str, str] | None, dict[str, str]]:
    """Status, code, detail, source and headers of ``error``."""
    if isinstance(error, Problem):
        return error.status, error.code, error.detail, error.source, error.headers
    if isinstance(error, Refused):
        return error.status, error.code, error.detail, error.source or None, {}
    if isinstance(error, OAuthError):
        return error.status, error.error, error.description, None, error.headers()
    if isinstance(error, InvalidInput):
        return (422, *_invalid(error.error.errors()), {})
    if isinstance(error, MissingBody):
        return 422, "required-fields-missing", "body: field required", {"field": "body"}, {}
    if is_unavailable(error):
        log_unavailable(method, path, error)
        return 503, _DATABASE, "", None, HEADERS
    log.exception("unhandled error on %s %s", method, mask_pans(path))
    return 500, "internal-error", "Internal error", None, {}


def _invalid(errors: list[Any]) -> tuple[str, str, dict[str, str]]:
    """Code, detail and source of a validation failure (its first error)."""
    first = errors[0] if errors else {}
    field = ".".join(str(p) for p in first.get("loc", ())) or "body"
    missing = first.get("type") == "missing"
    code = "required-fields-missing" if missing else "invalid-format"
    detail = f"{field}: {'field required' if missing else first.get('msg', 'invalid value')}"
    return code, detail, {"field": field}


def _audit_refusal(
    runtime: Runtime, error: InvalidToken | InsufficientScope, method: str, path: str, scope: Scope
) -> None:
    """Every refused bearer token is audited (DESIGN §3), and every valid token used
    beyond its scopes, through the buffer that folds a flood from one source into one
    record a minute (``AuditBuffer.add_repeated``)."""
    if isinstance(error, InvalidToken):
        action, reason, actor = "token.verify", error.detail, None
    else:
        action, reason = "scope.check", f"insufficient-scope: {error.scope}"
        actor = error.actor
    actor_type, actor_id = actor or ("anonymous", None)
    client = scope.get("client")
    runtime.audit.add_repeated(
        AuditRecord(
            actor_type=actor_type,
            actor_id=actor_id,
            action=action,
            outcome="failure",
            reason=reason[:128],
            source_ip=client[0] if client else None,
            details={"request": f"{method} {mask_pans(path)[:200]}"},
        )
    )


# ---------------------------------------------------------------------- FastAPI


def install(app: FastAPI) -> None:
    """Give the management API (FastAPI) the same rendering: its own refusals
    (validation, unknown paths) and whatever its routes raise."""
    app.add_exception_handler(Problem, problem_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    for database_error in DATABASE_ERRORS:  # 503 when the database is out of reach
        app.add_exception_handler(database_error, database_handler)
    app.add_exception_handler(Exception, internal_handler)  # a bug: 500, logged once


async def internal_handler(request: Request, exc: Exception) -> Response:
    return _response(request, exc, "api")


async def problem_handler(request: Request, exc: Exception) -> Response:
    return _response(request, exc, "api")


async def validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{**e, "loc": tuple(e.get("loc", ()))[1:]} for e in exc.errors()]
    code, detail, source = _invalid(errors)
    return _json(422, envelope(422, code, detail, source))


async def http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "bad-request")
    body = envelope(exc.status_code, code, str(exc.detail))
    return _json(exc.status_code, body, dict(exc.headers or {}))


async def database_handler(request: Request, exc: Exception) -> Response:
    """A database error: 503 when the database is out of reach; a bug is re-raised
    (a 500, with its traceback)."""
    if not is_unavailable(exc):
        raise exc
    return _response(request, exc, "api")


def _response(request: Request, exc: Exception, style: Literal["api", "oauth"]) -> Response:
    runtime = getattr(request.app.state, "runtime", None)
    reply = render_error(exc, style, request.method, request.url.path, runtime, request.scope)
    return Response(reply.body, reply.status, {k.decode(): v.decode() for k, v in reply.headers})


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")
