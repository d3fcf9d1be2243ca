"""Organization members: people and service accounts, with read or write access."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardvault.accounts.auditing import record, refusals
from cardvault.accounts.errors import LastAdmin, NotFound, ValidationFailed
from cardvault.accounts.grants import account_holding, check_grant, person_holding, require
from cardvault.accounts.scopes import Holding
from cardvault.accounts.services import revoke_service_account
from cardvault.audit import Actor
from cardvault.store.changes import publish_change
from cardvault.store.models import Member, Organization, Person, ServiceAccount


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


def _lock_organization(session: Session, org_id: str) -> None:
    """Serialize the membership changes of one organization until the transaction ends.

    PostgreSQL: a row lock on the organization, so a concurrent change waits and then
    reads what this one committed. SQLite: transactions already begin with ``BEGIN
    IMMEDIATE`` and run one at a time (SQLAlchemy renders no ``FOR UPDATE`` there).
    """
    session.execute(select(Organization.id).where(Organization.id == org_id).with_for_update())


def _keep_a_person_with_write(session: Session, org_id: str, member: Member, name: str) -> None:
    """Raise :class:`LastAdmin` if ``member`` is the organization's last person with
    write access (the organization must be locked, see :func:`_lock_organization`)."""
    if member.kind != "person" or member.access != "write":
        return
    others = session.scalar(
        select(func.count())
        .select_from(Member)
        .where(
            Member.org_id == org_id,
            Member.kind == "person",
            Member.access == "write",
            Member.id != member.id,
        )
    )
    if not others:
        raise LastAdmin(name)


def _write_holding(session: Session, member: Member) -> Holding:
    """What ``member`` holds with write access: a service account its scopes on its
    vaults, a person the scopes of write access."""
    if member.service_account_id is None:
        return person_holding("write")
    account = session.get(ServiceAccount, member.service_account_id)
    assert account is not None
    return account_holding(account)


def set_member_access(
    session: Session,
    org_id: str,
    name: str,
    access: str,
    domain: str,
    *,
    grantor: Holding,
    actor: Actor | None,
) -> MemberView:
    """Change access; a service account lowered to ``read`` can no longer get tokens.

    Giving ``write`` grants what the member holds with it, so ``grantor`` must be
    allowed to grant that (:class:`InsufficientScope`); the last person with write
    access cannot be lowered (:class:`LastAdmin`). Recorded as ``member.update`` by
    ``actor``, refusals included.
    """
    with refusals(actor, "member.update", target_type="member", target_id=name):
        require(grantor, "members:write", parameter="member")
        if access not in ("read", "write"):
            raise ValidationFailed("access", "must be 'read' or 'write'")
        _lock_organization(session, org_id)
        view = find_member(session, org_id, name, domain)
        member = session.get(Member, view.id)
        assert member is not None
        if access == "write":
            check_grant(grantor, _write_holding(session, member), field="access")
        else:
            _keep_a_person_with_write(session, org_id, member, view.name)
    member.access = access
    if view.client_id:
        publish_change(session, "client", view.client_id)
    details = {"access": access}
    record(
        session, actor, "member.update", target_type="member", target_id=view.name, details=details
    )
    return find_member(session, org_id, view.id, domain)


def remove_member(
    session: Session,
    org_id: str,
    name: str,
    domain: str,
    now: dt.datetime,
    *,
    grantor: Holding,
    actor: Actor | None,
) -> MemberView:
    """Remove a member; removing a service account's member revokes the account.

    The last person with write access cannot be removed (:class:`LastAdmin`).
    Recorded as ``member.remove`` by ``actor``, refusals included.
    """
    with refusals(actor, "member.remove", target_type="member", target_id=name):
        require(grantor, "members:write", parameter="member")
        _lock_organization(session, org_id)
        view = find_member(session, org_id, name, domain)
        if view.client_id:
            revoke_service_account(session, org_id, view.client_id, now)
        else:
            member = session.get(Member, view.id)
            assert member is not None
            _keep_a_person_with_write(session, org_id, member, view.name)
            session.delete(member)
    record(session, actor, "member.remove", target_type="member", target_id=view.name)
    return view
