"""Errors of the resource and admin APIs, rendered as ``{"errors": [{status, code, detail}]}``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from cardvault.accounts.errors import AccountsError
from cardvault.audit import AuditRecord
from cardvault.bulk.errors import BulkError
from cardvault.cards.errors import CardError
from cardvault.crypto import mask_pans
from cardvault.events.errors import UnknownEvent
from cardvault.network_tokens.errors import TokenNotFound
from cardvault.networks.provider import ProviderError
from cardvault.store.paging import InvalidCursor
from cardvault.webhooks.errors import WebhookError


class ApiError(Exception):
    """Base class: one subclass per wire error."""

    status = 400
    code = "bad-request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class InvalidToken(ApiError):
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


class InsufficientScope(ApiError):
    """RFC 6750 §3.1 ``insufficient_scope``."""

    status = 403
    code = "insufficient-scope"

    def __init__(self, scope: str, *, actor: tuple[str, str] | None = None) -> None:
        super().__init__(
            f"This request requires the scope {scope}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
        self.scope = scope
        self.actor = actor  # (actor type, actor id) of the caller, for the audit record


class ResourceNotFound(ApiError):
    status = 404
    code = "not-found"


class Unprocessable(ApiError):
    status = 422
    code = "invalid-format"


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    error: dict[str, Any] = {"status": status, "code": code, "detail": detail, **extra}
    return Response(
        orjson.dumps({"errors": [error]}), status, headers, media_type="application/json"
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if isinstance(exc, InvalidToken):
        audit_refused_token(request, exc)
    elif isinstance(exc, InsufficientScope):
        audit_refused_scope(request, exc)
    return error_response(exc.status, exc.code, exc.detail, exc.headers)


def audit_refused_token(request: Request, exc: InvalidToken) -> None:
    """Every refused bearer token is audited (DESIGN §3), through the buffer that folds a
    flood from one source into one record a minute (``AuditBuffer.add_repeated``)."""
    _audit_refusal(request, "token.verify", exc.detail, ("anonymous", None))


def audit_refused_scope(request: Request, exc: InsufficientScope) -> None:
    """A valid token used beyond its scopes is audited too, with the caller as actor."""
    _audit_refusal(request, "scope.check", f"insufficient-scope: {exc.scope}", exc.actor)


def _audit_refusal(
    request: Request, action: str, reason: str, actor: tuple[str, str | None] | None
) -> None:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return
    actor_type, actor_id = actor or ("anonymous", None)
    runtime.audit.add_repeated(
        AuditRecord(
            actor_type=actor_type,
            actor_id=actor_id,
            action=action,
            outcome="failure",
            reason=reason[:128],
            source_ip=request.client.host if request.client else None,
            details={"request": f"{request.method} {mask_pans(request.url.path)[:200]}"},
        )
    )


async def accounts_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccountsError)
    extra = {"source": exc.source} if exc.source else {}
    return error_response(exc.status, exc.code, str(exc), **extra)


async def card_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CardError)
    extra = {"source": {"field": exc.field}} if exc.field else {}
    return error_response(exc.status, exc.code, exc.detail, **extra)


async def bulk_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BulkError)
    extra = {"source": {"field": exc.field}} if exc.field else {}
    return error_response(exc.status, exc.code, exc.detail, **extra)


async def provider_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProviderError)
    return provider_error_response(exc)


def provider_error_response(exc: ProviderError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return error_response(exc.status, exc.code, exc.detail, headers)


async def token_not_found_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TokenNotFound)
    return error_response(exc.status, exc.code, exc.detail)


async def validation_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"
    missing = first.get("type") == "missing"
    code = "required-fields-missing" if missing else "invalid-format"
    detail = f"{field}: {'field required' if missing else first.get('msg', 'invalid value')}"
    return error_response(422, code, detail, source={"field": field})


async def http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "bad-request")
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


async def webhook_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebhookError | UnknownEvent)
    return error_response(exc.status, exc.code, exc.detail)


async def invalid_cursor_handler(_request: Request, exc: Exception) -> Response:
    """Any cursor this service did not make for this listing: 400 ``invalid-cursor``."""
    assert isinstance(exc, InvalidCursor)
    return error_response(400, "invalid-cursor", f"cursor: {exc}", source={"parameter": "cursor"})
