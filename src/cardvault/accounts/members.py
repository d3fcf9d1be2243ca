"""Organization members: people and service accounts, with read or write access."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.accounts.errors import NotFound, ValidationFailed
from cardvault.accounts.services import delete_service_account
from cardvault.store.models import Member, Person, ServiceAccount
from cardvault.sync.changes import publish_change


@dataclass(frozen=True)
class MemberView:
    """A member as shown to users: ``<client_id>@<domain>`` for service accounts."""

    id: str
    name: str
    kind: str  # person | service_account
    access: str
    created_at: dt.datetime
    last_active_at: dt.datetime | None
    client_id: str | None


def list_members(session: Session, org_id: str, domain: str) -> list[MemberView]:
    rows = session.execute(
        select(Member, Person.email, ServiceAccount.client_id, ServiceAccount.last_used_at)
        .outerjoin(Person, Member.person_id == Person.id)
        .outerjoin(ServiceAccount, Member.service_account_id == ServiceAccount.id)
        .where(Member.org_id == org_id)
        .order_by(Member.created_at, Member.id)
    ).all()
    return [_view(m, email, cid, used, domain) for m, email, cid, used in rows]


def _view(
    member: Member,
    email: str | None,
    client_id: str | None,
    used: dt.datetime | None,
    domain: str,
) -> MemberView:
    name = f"{client_id}@{domain}" if client_id else str(email)
    return MemberView(
        id=member.id,
        name=name,
        kind=member.kind,
        access=member.access,
        created_at=member.created_at,
        last_active_at=member.last_active_at or used,
        client_id=client_id,
    )


def find_member(session: Session, org_id: str, name: str, domain: str) -> MemberView:
    """The member called ``name`` (``client_id@domain``, an email, or a member id)."""
    for member in list_members(session, org_id, domain):
        if name in (member.name, member.id):
            return member
    raise NotFound(f"member {name} not found")


def set_member_access(
    session: Session, org_id: str, name: str, access: str, domain: str
) -> MemberView:
    """Change access; a service account lowered to ``read`` can no longer get tokens."""
    if access not in ("read", "write"):
        raise ValidationFailed("access", "must be 'read' or 'write'")
    view = find_member(session, org_id, name, domain)
    member = session.get(Member, view.id)
    assert member is not None
    member.access = access
    if view.client_id:
        publish_change(session, "client", view.client_id)
    return find_member(session, org_id, view.id, domain)


def remove_member(
    session: Session, org_id: str, name: str, domain: str, now: dt.datetime
) -> MemberView:
    """Remove a member; removing a service account's member revokes the account."""
    view = find_member(session, org_id, name, domain)
    if view.client_id:
        delete_service_account(session, org_id, view.client_id, now)
    else:
        member = session.get(Member, view.id)
        session.delete(member)
    return view
