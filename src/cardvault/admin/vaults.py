"""``/organizations/{org}/vaults``: create and list vaults."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from cardvault.accounts.services import create_vault
from cardvault.api.auth import Principal, require_scope
from cardvault.audit import AuditRecord, write_audit
from cardvault.runtime import Runtime
from cardvault.store.models import Vault
from cardvault.web.errors import ResourceNotFound

router = APIRouter(prefix="/organizations/{org_id}/vaults", tags=["vaults"])


class VaultIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)


class VaultOut(BaseModel):
    id: str
    org_id: str
    name: str
    created_at: dt.datetime


class VaultList(BaseModel):
    data: list[VaultOut]


def _own_org(org_id: str, principal: Principal) -> None:
    if org_id != principal.org_id:
        raise ResourceNotFound(f"organization {org_id} not found")


def _out(vault: Vault) -> VaultOut:
    return VaultOut(id=vault.id, org_id=vault.org_id, name=vault.name, created_at=vault.created_at)


@router.get("", response_model=VaultList)
def list_vaults(
    org_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("vaults:read"))],
) -> VaultList:
    _own_org(org_id, principal)
    runtime: Runtime = request.app.state.runtime
    with runtime.db.sessions() as session:
        vaults = session.scalars(
            select(Vault).where(Vault.org_id == org_id).order_by(Vault.created_at, Vault.id)
        ).all()
        return VaultList(data=[_out(v) for v in vaults])


@router.post("", response_model=VaultOut, status_code=201)
def create(
    org_id: str,
    body: VaultIn,
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("vaults:write"))],
) -> VaultOut:
    _own_org(org_id, principal)
    runtime: Runtime = request.app.state.runtime
    with runtime.db.transaction() as session:
        vault = create_vault(session, org_id, body.name)
        write_audit(
            session,
            AuditRecord(
                actor_type="service_account",
                actor_id=principal.client_id,
                action="vault.create",
                outcome="success",
                org_id=org_id,
                vault_id=vault.id,
                target_type="vault",
                target_id=vault.id,
                source_ip=request.client.host if request.client else None,
            ),
        )
        return _out(vault)
