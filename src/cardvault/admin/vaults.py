"""``/organizations/{org}/vaults``: create and list vaults."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field
from sqlalchemy import select

from cardvault.accounts.services import create_vault
from cardvault.admin.common import actor, own_org
from cardvault.store.models import Vault
from cardvault.web.http import Call, Route


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


def list_vaults(call: Call) -> VaultList:
    """The organization's vaults, oldest first."""
    org_id, _ = own_org(call)
    with call.runtime.db.sessions() as session:
        vaults = session.scalars(
            select(Vault).where(Vault.org_id == org_id).order_by(Vault.created_at, Vault.id)
        ).all()
        return VaultList(data=[_out(v) for v in vaults])


def create(call: Call) -> VaultOut:
    """Create a vault in the organization."""
    org_id, _ = own_org(call)
    body: VaultIn = call.body
    with call.runtime.db.transaction() as session:
        vault = create_vault(session, org_id, body.name, actor=actor(call))
        return _out(vault)


PATH, TAGS = "/organizations/{org_id}/vaults", ("vaults",)
ROUTES = [
    Route(
        "GET", PATH, list_vaults, scope="vaults:read", vault=False, response=VaultList, tags=TAGS
    ),
    Route(
        "POST",
        PATH,
        create,
        scope="vaults:write",
        vault=False,
        body=VaultIn,
        status=201,
        response=VaultOut,
        tags=TAGS,
    ),
]
