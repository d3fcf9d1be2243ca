"""Service accounts in Organization Settings: create, rotate the secret, delete."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from cardvault.accounts import service_accounts as sa
from cardvault.accounts.errors import AccountsError, ValidationFailed
from cardvault.accounts.grants import person_holding
from cardvault.accounts.scopes import CARD_SCOPES, MANAGEMENT_SCOPES
from cardvault.accounts.services import (
    create_service_account,
    delete_service_account,
    get_service_account,
)
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
from cardvault.dashboard.organization import page_status
from cardvault.dashboard.sessions import SignedIn
from cardvault.store.models import Vault
from cardvault.store.types import utcnow

router = APIRouter(prefix="/service-accounts")
Viewer = Annotated[SignedIn, Depends(viewer)]
SCOPE_HELP = {
    "cards:write": "enroll and manage cards",
    "cards:read": "read card details",
    "network-tokens:write": "enroll and manage network tokens",
    "network-tokens:read": "read network tokens",
    "organization:admin": "every management scope below",
}


def _form_context(request: Request, signed: SignedIn) -> dict[str, Any]:
    runtime = runtime_of(request)
    with runtime.db.sessions() as session:
        vaults = session.execute(
            select(Vault.id, Vault.name)
            .where(Vault.org_id == signed.who.org_id)
            .order_by(Vault.created_at)
        ).all()
    return {
        "vaults": vaults,
        "card_scopes": CARD_SCOPES,
        "management_scopes": MANAGEMENT_SCOPES,
        "scope_help": SCOPE_HELP,
        "default_lifespan": runtime.settings.access_token_lifespan,
    }


@router.get("/new")
def new_account(request: Request, signed: Viewer) -> Response:
    require_write(signed)
    values = {"scopes": ["cards:write", "network-tokens:write"], "name": "", "vault": ""}
    return render(
        request, "sa_new.html", signed=signed, values=values, **_form_context(request, signed)
    )


def seconds(text: str) -> int | None:
    """Whole seconds typed in a form (ASCII digits, at most ten), or ``None``.

    ``str.isdigit`` is not enough: it accepts digits that ``int`` refuses, like ``²``."""
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    return int(text)


def _lifespan(text: str, default: int) -> int:
    if not text:
        return default
    value = seconds(text)
    if value is None:
        raise ValidationFailed("access_token_lifespan", "must be a whole number of seconds")
    return value


@router.post("")
async def create(request: Request) -> Response:
    # The domain decides what this person may grant (and refuses read-only people).
    signed, form = await signed_form(request, write=False)
    runtime = runtime_of(request)
    settings = runtime.settings
    scopes, vault = form.get("scopes", []), field(form, "vault")
    try:
        with runtime.db.transaction() as session:
            account, secret = create_service_account(
                session,
                runtime.hasher,
                grantor=person_holding(signed.who.access),
                actor=actor(signed, request),
                org_id=signed.who.org_id,
                name=field(form, "name"),
                scopes=scopes,
                vault_ids=[vault] if vault else [],
                lifespan=_lifespan(field(form, "lifespan"), settings.access_token_lifespan),
                cap=settings.max_service_accounts_per_org,
            )
            shown = {
                "client_id": account.client_id,
                "name": account.name,
                "scopes": list(account.scopes),
                "lifespan": account.access_token_lifespan,
                "member": f"{account.client_id}@{settings.members_domain}",
            }
    except AccountsError as error:
        audit_refusal(request, error)
        values = {
            "scopes": scopes,
            "name": field(form, "name"),
            "vault": vault,
            "lifespan": field(form, "lifespan"),
        }
        return render(
            request,
            "sa_new.html",
            status=page_status(error),
            signed=signed,
            values=values,
            error=str(error),
            **_form_context(request, signed),
        )
    return render(
        request, "secret.html", signed=signed, account=shown, secret=secret.reveal(), created=True
    )


def _account_name(request: Request, signed: SignedIn, client_id: str) -> str:
    runtime = runtime_of(request)
    with runtime.db.sessions() as session:
        return get_service_account(session, signed.who.org_id, client_id).name


@router.get("/{client_id}/rotate")
def confirm_rotate(client_id: str, request: Request, signed: Viewer) -> Response:
    require_write(signed)
    name = _account_name(request, signed, client_id)
    return render(
        request,
        "confirm.html",
        signed=signed,
        title=f"Rotate the secret of {name} ({client_id})?",
        message="A new secret is shown once. The current one keeps working for the grace "
        "period you choose, so clients can switch over.",
        action=f"/dashboard/service-accounts/{client_id}/rotate",
        fields={},
        grace=True,
        button="Rotate secret",
        danger=False,
    )


@router.post("/{client_id}/rotate")
async def rotate(client_id: str, request: Request) -> Response:
    signed, form = await signed_form(request, write=False)
    runtime = runtime_of(request)
    grace_seconds = seconds(field(form, "grace_period", "86400"))
    grace = dt.timedelta(seconds=-1 if grace_seconds is None else grace_seconds)  # -1: refused
    try:
        with runtime.db.transaction() as session:
            account, secret = sa.rotate_secret(
                session,
                runtime.hasher,
                signed.who.org_id,
                client_id,
                grantor=person_holding(signed.who.access),
                actor=actor(signed, request),
                grace=grace,
                now=utcnow(),
            )
            shown = {
                "client_id": client_id,
                "name": account.name,
                "scopes": list(account.scopes),
                "lifespan": account.access_token_lifespan,
                "previous_until": account.previous_secret_expires_at,
            }
    except AccountsError as error:
        audit_refusal(request, error)
        raise Refusal(page_status(error), "Not possible", str(error)) from error
    return render(
        request, "secret.html", signed=signed, account=shown, secret=secret.reveal(), created=False
    )


@router.get("/{client_id}/delete")
def confirm_delete(client_id: str, request: Request, signed: Viewer) -> Response:
    require_write(signed)
    name = _account_name(request, signed, client_id)
    return render(
        request,
        "confirm.html",
        signed=signed,
        title=f"Delete {name} ({client_id})?",
        message="The token endpoint refuses it from now on and its issued tokens stop working.",
        action=f"/dashboard/service-accounts/{client_id}/delete",
        fields={},
        button="Delete service account",
        danger=True,
    )


@router.post("/{client_id}/delete")
async def delete(client_id: str, request: Request) -> Response:
    signed, _form = await signed_form(request)
    runtime = runtime_of(request)
    with runtime.db.transaction() as session:
        delete_service_account(
            session, signed.who.org_id, client_id, utcnow(), actor=actor(signed, request)
        )
    return redirect("/dashboard/settings#service-accounts")
