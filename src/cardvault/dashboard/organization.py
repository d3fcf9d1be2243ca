"""Organization Settings: the organization, its members and invitations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from cardvault.accounts import members, people
from cardvault.accounts import service_accounts as sa
from cardvault.accounts.errors import AccountsError, InsufficientScope, LastAdmin, NotFound
from cardvault.accounts.grants import person_holding
from cardvault.dashboard.common import (
    Refusal,
    actor,
    audit_refusal,
    field,
    redirect,
    render,
    require_write,
    runtime_of,
    signed_form,
    viewer,
)
from cardvault.dashboard.sessions import SignedIn
from cardvault.store.models import Vault
from cardvault.store.types import utcnow

router = APIRouter()
Viewer = Annotated[SignedIn, Depends(viewer)]


def page_status(error: AccountsError) -> int:
    """A refusal keeps its status (403, 404, 409); a mistake in the form is a 400."""
    return error.status if isinstance(error, InsufficientScope | LastAdmin | NotFound) else 400


def _members_refusal(request: Request, signed: SignedIn, error: AccountsError) -> Response:
    """The settings page again, with the reason above the members."""
    audit_refusal(request, error)
    context = settings_context(request, signed)
    return render(
        request,
        "settings.html",
        status=page_status(error),
        signed=signed,
        members_error=str(error),
        **context,
    )


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
    # The domain decides who may change access (members:write, the grant rule, the
    # last person with write access), so read-only people are refused there, audited.
    signed, form = await signed_form(request, write=False)
    _member(request, signed, member_id)
    runtime = runtime_of(request)
    access = field(form, "access")
    try:
        with runtime.db.transaction() as session:
            members.set_member_access(
                session,
                signed.who.org_id,
                member_id,
                access,
                runtime.settings.members_domain,
                grantor=person_holding(signed.who.access),
                actor=actor(signed, request),
            )
    except AccountsError as error:
        return _members_refusal(request, signed, error)
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
    signed, _form = await signed_form(request, write=False)
    _member(request, signed, member_id)
    runtime = runtime_of(request)
    try:
        with runtime.db.transaction() as session:
            members.remove_member(
                session,
                signed.who.org_id,
                member_id,
                runtime.settings.members_domain,
                utcnow(),
                grantor=person_holding(signed.who.access),
                actor=actor(signed, request),
            )
    except AccountsError as error:
        return _members_refusal(request, signed, error)
    return redirect("/dashboard/settings#members")


@router.post("/invitations")
async def invite(request: Request) -> Response:
    signed, form = await signed_form(request, write=False)
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
                grantor=person_holding(signed.who.access),
                actor=actor(signed, request),
                now=utcnow(),
            )
    except AccountsError as error:
        audit_refusal(request, error)
        context = settings_context(request, signed)
        return render(
            request,
            "settings.html",
            status=page_status(error),
            signed=signed,
            invite_error=str(error),
            **context,
        )
    link = None
    if invited.link_token:
        link = f"{runtime.settings.url}/dashboard/invitations/{invited.link_token}"
    return render(request, "invited.html", signed=signed, invited=invited, link=link)
