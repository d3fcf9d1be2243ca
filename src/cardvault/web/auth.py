"""Who is calling (step 4 of the HTTP layer): the bearer token (RFC 6750, RFC 9068 §4),
the scope a route needs, and the vault the token is bound to."""

from __future__ import annotations

from dataclasses import replace

from cardvault.accounts.people import identity, person_scopes
from cardvault.callers import Principal, VaultCaller
from cardvault.crypto import TokenInvalid
from cardvault.oauth.access_tokens import VerifiedToken
from cardvault.oauth.device import PUBLIC_CLIENTS
from cardvault.problems import Problem
from cardvault.runtime import Runtime
from cardvault.web.errors import InvalidToken
from cardvault.web.http import Call

__all__ = [
    "NotBoundToVault",
    "Principal",
    "VaultCaller",
    "authenticate",
    "check_scope",
    "current_person",
    "verify_bearer",
]


class NotBoundToVault(Problem):
    status = 403
    code = "forbidden"


async def authenticate(call: Call) -> None:
    """The layer's step 4 for ``call``: its principal (a person's membership looked up
    now), the scope its route needs and, for vault routes, the bound vault."""
    runtime = call.runtime
    principal = verify_bearer(runtime, call.authorization or "")
    if principal.person_email is not None:
        principal = await runtime.run_db(current_person, runtime, principal)
    route = call.route
    if route.scope is not None:
        check_scope(principal, route.scope)
    call.principal = principal
    if route.vault:
        call.caller = bind_vault(principal, call.source_ip, runtime)


def bind_vault(principal: Principal, source_ip: str | None, runtime: Runtime) -> VaultCaller:
    """The caller, if its token is bound to a vault."""
    if principal.vault_id is None:
        raise NotBoundToVault("This token is not bound to a vault")
    return VaultCaller(principal, principal.vault_id, source_ip, runtime)


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


def verify_bearer(runtime: Runtime, header: str) -> Principal:
    """The caller named by an ``Authorization`` header's bearer token."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Bearer token required")
    try:
        verified = runtime.verifier.verify(token.strip())
    except TokenInvalid as invalid:
        raise InvalidToken(invalid.reason) from invalid
    return principal_of(verified)


def principal_of(token: VerifiedToken) -> Principal:
    """The caller a verified access token names (a person, for the CLI's tokens)."""
    person = token.client_id in PUBLIC_CLIENTS
    return Principal(
        client_id=token.client_id,
        service_account_id=str(token.claims["sub"]),
        org_id=token.org_id,
        vault_id=token.vault_id,
        scopes=token.scopes,
        person_email=str(token.claims.get("email")) if person else None,
    )


def check_scope(principal: Principal, scope: str) -> None:
    """Raise :class:`InsufficientScope` (audited where it is rendered) unless the
    caller's scopes cover ``scope``."""
    principal.require(scope)
