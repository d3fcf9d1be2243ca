"""Vaults, the audit log and the device sign-in page of the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from cardvault.accounts.services import create_vault
from cardvault.dashboard import queries
from cardvault.dashboard.common import (
    actor,
    field,
    redirect,
    render,
    runtime_of,
    signed_form,
    viewer,
)
from cardvault.dashboard.sessions import SignedIn
from cardvault.oauth.device import decide, display_user_code, normalize_user_code, pending_request
from cardvault.oauth.errors import InvalidGrant
from cardvault.store.types import utcnow

router = APIRouter()
Viewer = Annotated[SignedIn, Depends(viewer)]


@router.get("/vaults")
def vaults_page(request: Request, signed: Viewer) -> Response:
    runtime = runtime_of(request)
    with runtime.db.sessions() as session:
        summaries = queries.vault_summaries(session, signed.who.org_id)
    return render(
        request, "vaults.html", signed=signed, vaults=summaries, states=queries.TOKEN_STATES
    )


@router.post("/vaults")
async def create(request: Request) -> Response:
    signed, form = await signed_form(request)
    name = field(form, "name")
    if not 1 <= len(name) <= 128:
        runtime = runtime_of(request)
        with runtime.db.sessions() as session:
            summaries = queries.vault_summaries(session, signed.who.org_id)
        return render(
            request,
            "vaults.html",
            status=400,
            signed=signed,
            vaults=summaries,
            states=queries.TOKEN_STATES,
            error="name: must be 1-128 characters",
        )
    runtime = runtime_of(request)
    with runtime.db.transaction() as session:
        create_vault(session, signed.who.org_id, name, actor=actor(signed, request))
    return redirect("/dashboard/vaults")


def _time(text: str | None) -> dt.datetime | None:
    """A ``datetime-local`` value (taken as UTC), or ``None`` when empty or malformed."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _text(value: str, limit: int) -> str:
    """A filter as the column can hold it: no NUL (PostgreSQL refuses it in text),
    no longer than the column."""
    return value.replace("\x00", "")[:limit]


@router.get("/audit")
def audit_page(
    request: Request,
    signed: Viewer,
    actor: Annotated[str, Query(max_length=255)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[str, Query(max_length=32)] = "",
    until: Annotated[str, Query(max_length=32)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    wanted = queries.AuditFilter(
        _text(actor, 128), _text(action, 64), _text(outcome, 16), _time(since), _time(until)
    )
    runtime = runtime_of(request)
    with runtime.db.sessions() as session:
        events, following = queries.audit_page(session, signed.who.org_id, wanted, before)
        actions, actors = queries.audit_choices(session, signed.who.org_id)
    filters = {"actor": actor, "action": action, "outcome": outcome, "since": since, "until": until}
    older = None
    if following is not None:
        older = "/dashboard/audit?" + urlencode({**filters, "before": following})
    return render(
        request,
        "audit.html",
        signed=signed,
        events=events,
        filters=filters,
        actions=actions,
        actors=actors,
        older=older,
        first_page=before is None,
    )


@router.get("/device")
def device_page(
    request: Request, signed: Viewer, user_code: Annotated[str, Query(max_length=32)] = ""
) -> Response:
    pending: str | None = None
    error = None
    if user_code:
        runtime = runtime_of(request)
        try:
            with runtime.db.sessions() as session:
                row = pending_request(session, user_code, utcnow())
                pending = display_user_code(row.user_code)
        except InvalidGrant:
            error = "This code is unknown, expired or already used. Run cardvault login again."
    return render(request, "device.html", signed=signed, code=pending, error=error, typed=user_code)


@router.post("/device")
async def device_decision(request: Request) -> Response:
    signed, form = await signed_form(request, write=False)
    runtime = runtime_of(request)
    code = normalize_user_code(field(form, "user_code"))
    approve = field(form, "decision") == "approve"
    try:
        with runtime.db.transaction() as session:
            status = decide(
                session, code, signed.who, approve, utcnow(), actor=actor(signed, request)
            )
    except InvalidGrant:
        return render(
            request,
            "device.html",
            status=400,
            signed=signed,
            code=None,
            typed=field(form, "user_code"),
            error="This code is unknown, expired or already used. Run cardvault login again.",
        )
    return render(request, "device_done.html", signed=signed, status_text=status)
