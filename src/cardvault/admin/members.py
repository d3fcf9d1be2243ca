"""``/organizations/{org}/members``: people and service accounts, and their access."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel

from cardvault.accounts import members
from cardvault.admin.common import actor, audit_refusals, grantor, own_org
from cardvault.store.types import utcnow
from cardvault.web.http import Call, Route


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


def list_members(call: Call) -> MemberList:
    """The organization's people and service accounts, with their access."""
    org_id, _ = own_org(call)
    runtime = call.runtime
    with runtime.db.sessions() as session:
        views = members.list_members(session, org_id, runtime.settings.members_domain)
        return MemberList(data=[_out(v) for v in views])


def change_access(call: Call) -> MemberOut:
    """Change a member's access.

    Giving ``write`` grants what the member holds with it (a service account's scopes
    on its vaults, a person's ``organization:admin``): 403 ``insufficient-scope`` with
    ``source: {"field": "access", "scope": …}`` if the caller may not grant that.
    Lowering the last person with write access: 409 ``last-admin``.
    """
    org_id, principal = own_org(call)
    body: MemberPatch = call.body
    runtime = call.runtime
    with audit_refusals(call), runtime.db.transaction() as session:
        view = members.set_member_access(
            session,
            org_id,
            call.params["member"],
            body.access,
            runtime.settings.members_domain,
            grantor=grantor(session, principal),
            actor=actor(call),
        )
        return _out(view)


def remove(call: Call) -> None:
    """Remove a member (a service account's removal revokes it); removing the last
    person with write access is 409 ``last-admin``."""
    org_id, principal = own_org(call)
    runtime = call.runtime
    with audit_refusals(call), runtime.db.transaction() as session:
        members.remove_member(
            session,
            org_id,
            call.params["member"],
            runtime.settings.members_domain,
            utcnow(),
            grantor=grantor(session, principal),
            actor=actor(call),
        )


PATH, TAGS = "/organizations/{org_id}/members", ("members",)
ROUTES = [
    Route(
        "GET", PATH, list_members, scope="members:read", vault=False, response=MemberList, tags=TAGS
    ),
    Route(
        "PATCH",
        PATH + "/{member}",
        change_access,
        scope="members:write",
        vault=False,
        body=MemberPatch,
        response=MemberOut,
        tags=TAGS,
    ),
    Route(
        "DELETE",
        PATH + "/{member}",
        remove,
        scope="members:write",
        vault=False,
        status=204,
        tags=TAGS,
    ),
]
