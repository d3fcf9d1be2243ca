"""``/organizations/{org}/members``: people and service accounts, and their access."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from cardvault.accounts import members
from cardvault.admin.common import actor, audit_refusals, grantor, own_org, runtime_of
from cardvault.store.types import utcnow
from cardvault.web.auth import Principal, require_scope

router = APIRouter(prefix="/organizations/{org_id}/members", tags=["members"])

Reader = Annotated[Principal, Depends(require_scope("members:read"))]
Writer = Annotated[Principal, Depends(require_scope("members:write"))]


class MemberOut(BaseModel):
    id: str
    name: str
    kind: str
    access: str
    client_id: str | None
    created_at: dt.datetime
    last_active_at: dt.datetime | None


class MemberList(BaseModel):
    data: list[MemberOut]


class MemberPatch(BaseModel):
    access: Literal["read", "write"]


def _out(view: members.MemberView) -> MemberOut:
    return MemberOut(
        id=view.id,
        name=view.name,
        kind=view.kind,
        access=view.access,
        client_id=view.client_id,
        created_at=view.created_at,
        last_active_at=view.last_active_at,
    )


@router.get("", response_model=MemberList)
def list_members(org_id: str, request: Request, principal: Reader) -> MemberList:
    own_org(org_id, principal)
    runtime = runtime_of(request)
    with runtime.db.sessions() as session:
        views = members.list_members(session, org_id, runtime.settings.members_domain)
        return MemberList(data=[_out(v) for v in views])


@router.patch("/{member}", response_model=MemberOut)
def change_access(
    org_id: str, member: str, body: MemberPatch, request: Request, principal: Writer
) -> MemberOut:
    """Change a member's access.

    Giving ``write`` grants what the member holds with it (a service account's scopes
    on its vaults, a person's ``organization:admin``): 403 ``insufficient-scope`` with
    ``source: {"field": "access", "scope": …}`` if the caller may not grant that.
    Lowering the last person with write access: 409 ``last-admin``.
    """
    own_org(org_id, principal)
    runtime = runtime_of(request)
    with audit_refusals(request), runtime.db.transaction() as session:
        view = members.set_member_access(
            session,
            org_id,
            member,
            body.access,
            runtime.settings.members_domain,
            grantor=grantor(session, principal),
            actor=actor(principal, request),
        )
        return _out(view)


@router.delete("/{member}", status_code=204)
def remove(org_id: str, member: str, request: Request, principal: Writer) -> Response:
    """Remove a member (a service account's removal revokes it); removing the last
    person with write access is 409 ``last-admin``."""
    own_org(org_id, principal)
    runtime = runtime_of(request)
    with audit_refusals(request), runtime.db.transaction() as session:
        members.remove_member(
            session,
            org_id,
            member,
            runtime.settings.members_domain,
            utcnow(),
            grantor=grantor(session, principal),
            actor=actor(principal, request),
        )
    return Response(status_code=204)
