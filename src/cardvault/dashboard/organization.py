"""Organization Settings: the organization, its members and invitations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from cardvault.accounts import members, people
from cardvault.accounts import service_accounts as sa
from cardvault.accounts.errors import AccountsError
from cardvault.audit import write_audit
from cardvault.dashboard.sessions import SignedIn
from cardvault.dashboard.web import (
    Refusal,
    field,
    person_record,
    redirect,
    render,
    require_write,
    runtime_of,
    signed_form,
    viewer,
)
from cardvault.store.models import Vault
from cardvault.store.types import utcnow

router = APIRouter()
Viewer = Annotated[SignedIn, Depends(viewer)]


def settings_context(request: Request, signed: SignedIn) -> dict[str, Any]:
    runtime = runtime_of(request)
    org_id = signed.who.org_id
    with runtime.db.sessions() as session:
        member_list = members.list_members(session, org_id, runtime.settings.members_domain)
        accounts, _next = sa.list_service_accounts(session, org_id, limit=100, cursor=None)
        rows = session.execute(select(Vault.id, Vault.name).where(Vault.org_id == org_id))
        vault_names = {row.id: row.name for row in rows}
        return {
            "members": member_list,
            "accounts": list(accounts),
            "vault_names": vault_names,
            "members_domain": runtime.settings.members_domain,
        }


@router.get("/settings")
def settings_page(request: Request, signed: Viewer) -> Response:
    context = settings_context(request, signed)
    return render(request, "settings.html", signed=signed, **context)


def _member(request: Request, signed: SignedIn, member_id: str) -> members.MemberView:
    """Another member of the organization; one's own membership is not changed here,
    so nobody locks themselves out by accident."""
    runtime = runtime_of(request)
    with runtime.db.sessions() as session:
        view = members.find_member(
            session, signed.who.org_id, member_id, runtime.settings.members_domain
        )
    if view.kind == "person" and view.name == signed.who.email:
        raise Refusal(400, "Not possible", "You cannot change or remove your own membership.")
    return view


@router.get("/members/{member_id}/access")
def confirm_access(member_id: str, to: str, request: Request, signed: Viewer) -> Response:
    require_write(signed)
    member = _member(request, signed, member_id)
    level = "read" if to == "read" else "write"
    return render(
        request,
        "confirm.html",
        signed=signed,
        title=f"Change {member.name} to {level} access?",
        message=(
            "With read access they can look but not change anything."
            if level == "read"
            else "With write access they can change members, credentials and vaults."
        )
        + (
            " A service account with read access can no longer get tokens."
            if member.client_id
            else ""
        ),
        action=f"/dashboard/members/{member.id}/access",
        fields={"access": level},
        button=f"Change to {level}",
        danger=level == "read",
    )


@router.post("/members/{member_id}/access")
async def change_access(member_id: str, request: Request) -> Response:
    signed, form = await signed_form(request)
    _member(request, signed, member_id)
    runtime = runtime_of(request)
    access = field(form, "access")
    with runtime.db.transaction() as session:
        view = members.set_member_access(
            session, signed.who.org_id, member_id, access, runtime.settings.members_domain
        )
        write_audit(
            session,
            person_record(
                signed,
                request,
                "member.update",
                target_type="member",
                target_id=view.name,
                details={"access": access},
            ),
        )
    return redirect("/dashboard/settings#members")


@router.get("/members/{member_id}/remove")
def confirm_remove(member_id: str, request: Request, signed: Viewer) -> Response:
    require_write(signed)
    member = _member(request, signed, member_id)
    return render(
        request,
        "confirm.html",
        signed=signed,
        title=f"Remove {member.name}?",
        message=(
            "Its credentials stop working at once: the token endpoint refuses them and "
            "tokens already issued are rejected."
            if member.client_id
            else "They are signed out and lose access to this organization."
        ),
        action=f"/dashboard/members/{member.id}/remove",
        fields={},
        button="Remove member",
        danger=True,
    )


@router.post("/members/{member_id}/remove")
async def remove_member(member_id: str, request: Request) -> Response:
    signed, _form = await signed_form(request)
    _member(request, signed, member_id)
    runtime = runtime_of(request)
    with runtime.db.transaction() as session:
        view = members.remove_member(
            session, signed.who.org_id, member_id, runtime.settings.members_domain, utcnow()
        )
        write_audit(
            session,
            person_record(
                signed, request, "member.remove", target_type="member", target_id=view.name
            ),
        )
    return redirect("/dashboard/settings#members")


@router.post("/invitations")
async def invite(request: Request) -> Response:
    signed, form = await signed_form(request)
    runtime = runtime_of(request)
    email = field(form, "email")
    try:
        with runtime.db.transaction() as session:
            invited = people.invite(
                session,
                runtime.hasher,
                org_id=signed.who.org_id,
                email=email,
                access=field(form, "access", "read"),
                with_password=field(form, "method") == "password",
                invited_by=signed.who.email,
                now=utcnow(),
            )
            write_audit(
                session,
                person_record(
                    signed,
                    request,
                    "member.invite",
                    target_type="member",
                    target_id=invited.email,
                    details={"access": field(form, "access", "read")},
                ),
            )
    except AccountsError as error:
        context = settings_context(request, signed)
        return render(
            request, "settings.html", status=400, signed=signed, invite_error=str(error), **context
        )
    link = None
    if invited.link_token:
        link = f"{runtime.settings.url}/dashboard/invitations/{invited.link_token}"
    return render(request, "invited.html", signed=signed, invited=invited, link=link)
