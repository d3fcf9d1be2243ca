"""Helpers shared by the management API routes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from cardvault.accounts.errors import AccountsError
from cardvault.accounts.grants import caller_holding
from cardvault.accounts.scopes import Holding
from cardvault.audit import AuditRecord
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


def record(
    principal: Principal,
    request: Request,
    action: str,
    *,
    target_type: str,
    target_id: str | None,
    outcome: str = "success",
    reason: str | None = None,
    vault_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    return AuditRecord(
        actor_type=principal.actor_type,
        actor_id=principal.actor_id,
        action=action,
        outcome=outcome,
        reason=reason,
        org_id=principal.org_id,
        vault_id=vault_id,
        target_type=target_type,
        target_id=target_id,
        source_ip=source_ip(request),
        details=details,
    )


@contextmanager
def audit_failures(
    principal: Principal,
    request: Request,
    action: str,
    *,
    target_type: str,
    target_id: str | None,
) -> Iterator[None]:
    """Record a refused change (the change's own transaction was rolled back)."""
    try:
        yield
    except AccountsError as error:
        runtime_of(request).audit.add(
            record(
                principal,
                request,
                action,
                target_type=target_type,
                target_id=target_id,
                outcome="failure",
                reason=f"{error.code}: {error}"[:128],
                details=error.source,
            )
        )
        raise
