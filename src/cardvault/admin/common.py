"""Helpers shared by the management API routes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from cardvault.accounts.errors import AccountsError
from cardvault.accounts.grants import caller_holding
from cardvault.accounts.scopes import Holding
from cardvault.audit import Actor
from cardvault.web.auth import Principal
from cardvault.web.errors import ResourceNotFound
from cardvault.web.http import Call


def own_org(call: Call) -> tuple[str, Principal]:
    """The path's organization and the caller, if it is the caller's: another
    organization's resources do not exist for the caller (404, never 403)."""
    org_id = call.params["org_id"]
    principal: Principal = call.principal
    if org_id != principal.org_id:
        raise ResourceNotFound(f"organization {org_id} not found")
    return org_id, principal


def grantor(session: Session, principal: Principal) -> Holding:
    """What the caller holds, for the domain's grant checks."""
    return caller_holding(
        session,
        org_id=principal.org_id,
        scopes=principal.scopes,
        service_account_id=None if principal.person_email else principal.service_account_id,
    )


def actor(call: Call) -> Actor:
    """The caller as the author of the audit records the services write."""
    principal: Principal = call.principal
    return Actor(principal.actor_type, principal.actor_id, principal.org_id, call.source_ip)


@contextmanager
def audit_refusals(call: Call) -> Iterator[None]:
    """Write the record of a change the domain refused, once its transaction has rolled
    back (the service built it: ``AccountsError.refusal``)."""
    try:
        yield
    except AccountsError as error:
        if error.refusal is not None:
            call.runtime.audit.add(error.refusal)
        raise
