"""The bearer-token dependency every API route uses (RFC 6750, RFC 9068 §4)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from cardvault.accounts.scopes import satisfies
from cardvault.crypto import TokenInvalid
from cardvault.oauth.access_tokens import VerifiedToken
from cardvault.runtime import Runtime
from cardvault.web.errors import InsufficientScope, InvalidToken


@dataclass(frozen=True)
class Principal:
    """Who is calling: the service account, its organization, vault and scopes."""

    client_id: str
    service_account_id: str
    org_id: str
    vault_id: str | None
    scopes: tuple[str, ...]

    @classmethod
    def from_token(cls, token: VerifiedToken) -> Principal:
        return cls(
            client_id=token.client_id,
            service_account_id=str(token.claims["sub"]),
            org_id=token.org_id,
            vault_id=token.vault_id,
            scopes=token.scopes,
        )


async def bearer(request: Request) -> Principal:
    """The dependency: the verified caller of this request."""
    return authenticate(request)


def authenticate(request: Request) -> Principal:
    """Verify the bearer token of ``request``; raises :class:`InvalidToken`."""
    return verify_bearer(request.app.state.runtime, request.headers.get("authorization", ""))


def verify_bearer(runtime: Runtime, header: str) -> Principal:
    """The caller named by an ``Authorization`` header's bearer token."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Bearer token required")
    try:
        verified = runtime.verifier.verify(token.strip())
    except TokenInvalid as invalid:
        raise InvalidToken(invalid.reason) from invalid
    return Principal.from_token(verified)


def check_scope(principal: Principal, scope: str) -> None:
    if not satisfies(principal.scopes, scope):
        raise InsufficientScope(scope)


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only tokens whose scopes cover ``scope``."""

    async def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        check_scope(principal, scope)
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_').replace('-', '_')}"
    return dependency
