"""The bearer-token dependency every API route uses (RFC 6750, RFC 9068 §4)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from fastapi import Request

from cardvault.accounts.people import identity, person_scopes
from cardvault.accounts.scopes import satisfies
from cardvault.crypto import TokenInvalid
from cardvault.oauth.access_tokens import VerifiedToken
from cardvault.oauth.device import PUBLIC_CLIENTS
from cardvault.runtime import Runtime
from cardvault.web.errors import InsufficientScope, InvalidToken


@dataclass(frozen=True)
class Principal:
    """Who is calling: the service account (or person signed in with ``cardvault login``),
    its organization, vault and scopes."""

    client_id: str
    service_account_id: str
    org_id: str
    vault_id: str | None
    scopes: tuple[str, ...]
    person_email: str | None = None

    @classmethod
    def from_token(cls, token: VerifiedToken) -> Principal:
        person = token.client_id in PUBLIC_CLIENTS
        return cls(
            client_id=token.client_id,
            service_account_id=str(token.claims["sub"]),
            org_id=token.org_id,
            vault_id=token.vault_id,
            scopes=token.scopes,
            person_email=str(token.claims.get("email")) if person else None,
        )

    @property
    def actor_type(self) -> str:
        return "service_account" if self.person_email is None else "person"

    @property
    def actor_id(self) -> str:
        return self.client_id if self.person_email is None else self.person_email


def current_person(runtime: Runtime, principal: Principal) -> Principal:
    """A person's token counts only while they are a member, with their current access:
    removing the person or lowering them to ``read`` takes effect at once."""
    with runtime.db.sessions() as session:
        who = identity(session, principal.service_account_id)
    if who is None or who.org_id != principal.org_id:
        raise InvalidToken("person is no longer a member")
    if who.access == "write":
        return principal
    return replace(principal, scopes=tuple(person_scopes(who.access)))


async def verified(request: Request) -> Principal:
    """The verified caller; a person's membership is looked up on every request."""
    principal = authenticate(request)
    if principal.person_email is None:
        return principal
    runtime: Runtime = request.app.state.runtime
    return await runtime.run_db(current_person, runtime, principal)


async def bearer(request: Request) -> Principal:
    """The dependency: the verified caller of this request."""
    return await verified(request)


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
    """Raise :class:`InsufficientScope` (audited where it is rendered) unless the
    caller's scopes cover ``scope``."""
    if not satisfies(principal.scopes, scope):
        raise InsufficientScope(scope, actor=(principal.actor_type, principal.actor_id))


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only tokens whose scopes cover ``scope``."""

    async def dependency(request: Request) -> Principal:
        principal = await verified(request)
        check_scope(principal, scope)
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_').replace('-', '_')}"
    return dependency
