"""``/organizations/{org}/vaults``: create and list vaults."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from cardvault.accounts.services import create_vault
from cardvault.admin.common import actor, own_org, runtime_of
from cardvault.store.models import Vault
from cardvault.web.auth import Principal, require_scope

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


def _out(vault: Vault) -> VaultOut:
    return VaultOut(id=vault.id, org_id=vault.org_id, name=vault.name, created_at=vault.created_at)


@router.get("", response_model=VaultList)
def list_vaults(
    org_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("vaults:read"))],
) -> VaultList:
    own_org(org_id, principal)
    runtime = runtime_of(request)
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
    own_org(org_id, principal)
    runtime = runtime_of(request)
    with runtime.db.transaction() as session:
        vault = create_vault(session, org_id, body.name, actor=actor(principal, request))
        return _out(vault)
