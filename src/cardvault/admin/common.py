"""Helpers shared by the management API routes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from sqlalchemy.orm import Session

from cardvault.accounts.errors import AccountsError
from cardvault.accounts.grants import caller_holding
from cardvault.accounts.scopes import Holding
from cardvault.audit import Actor
from cardvault.runtime import Runtime
from cardvault.web.auth import Principal
from cardvault.web.errors import ResourceNotFound


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def source_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def own_org(org_id: str, principal: Principal) -> None:
    """Another organization's resources do not exist for the caller (404, never 403)."""
    if org_id != principal.org_id:
        raise ResourceNotFound(f"organization {org_id} not found")


def grantor(session: Session, principal: Principal) -> Holding:
    """What the caller holds, for the domain's grant checks."""
    return caller_holding(
        session,
        org_id=principal.org_id,
        scopes=principal.scopes,
        service_account_id=None if principal.person_email else principal.service_account_id,
    )


def actor(principal: Principal, request: Request) -> Actor:
    """The caller as the author of the audit records the services write."""
    return Actor(principal.actor_type, principal.actor_id, principal.org_id, source_ip(request))


@contextmanager
def audit_refusals(request: Request) -> Iterator[None]:
    """Write the record of a change the domain refused, once its transaction has rolled
    back (the service built it: ``AccountsError.refusal``)."""
    try:
        yield
    except AccountsError as error:
        if error.refusal is not None:
            runtime_of(request).audit.add(error.refusal)
        raise
